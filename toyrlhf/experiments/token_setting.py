"""The toy language model the token experiments share: its gold reward, its human, its demonstrator.

Not an experiment: ``rlhf-vs-sft``, ``reward-proxy`` and ``overoptimization`` each nest a
:class:`TokenSetting` in their ``Config`` (``config.token``), and the two that start from
SFT also nest an :class:`SFTSetting` (``config.sft``), so the fields exist once.

- :class:`TokenSetting`: prompts, vocabulary (EOS and content tokens), the maximum
  response length, the hidden gold reward
  (:class:`~toyrlhf.envs.token_mdp.ConcaveQuality`: per-token quality minus
  ``c (L − L*)²``) and the simulated human who compares two responses by it
  (a Boltzmann labeller with temperature τ, :class:`~toyrlhf.algorithms.preferences.Labeller`).
  Small enough that every response is enumerated (:func:`~toyrlhf.envs.token_mdp.enumerate_tokens`),
  so gold returns and KLs are exact.
- :class:`SFTSetting`: the demonstrator (the exact tilted optimum of the uniform
  policy at a temperature: soft and imperfect) and how much SFT sees of it.

:func:`rlhf_config` turns both into the settings of the RLHF pipeline
(:mod:`toyrlhf.algorithms.rlhf`) that the experiments call, and :func:`gold_return`
is the exact gold return they all report.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from toyrlhf.algorithms import preferences as pref
from toyrlhf.algorithms import rlhf, tilted
from toyrlhf.envs import token_mdp as tm


def check_positive_int(name: str, value) -> None:
    """ValueError naming ``name`` unless ``value`` is an int (not a bool) of at least 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def check_positive(name: str, value) -> None:
    """ValueError naming ``name`` unless ``value`` is a number above 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")


def check_increasing_ints(name: str, values) -> None:
    """ValueError naming ``name`` unless ``values`` is a non-empty, strictly increasing tuple of positive ints."""
    if not isinstance(values, tuple) or not values:
        raise ValueError(f"{name} must be a non-empty tuple of positive ints, got {values!r}")
    for v in values:
        check_positive_int(name, v)
    if any(b <= a for a, b in zip(values[:-1], values[1:])):
        raise ValueError(f"{name} must be strictly increasing, got {values!r}")


@dataclasses.dataclass(frozen=True)
class TokenSetting:
    """The toy language model, its hidden gold reward and the simulated human (static: fixes the tree)."""

    vocab_size: int = 4
    """Tokens, EOS included."""
    length: int = 4
    """Maximum response length T."""
    quality: tuple[tuple[float, ...], ...] = ((0.0, 1.0, 0.3, -0.6), (0.0, -0.5, 0.8, 0.2))
    """Per-prompt token quality of the gold reward (a row per prompt, ``vocab_size`` entries; EOS's unused)."""
    target_length: float = 3.0
    """Preferred length L* of the gold reward."""
    length_penalty: float = 0.3
    """Curvature c of the gold reward's length term ``c (L − L*)²``."""
    label_temperature: float = 1.0
    """τ: the human's noise, ``Pr(y¹ ≻ y²) = σ((g¹ − g²)/τ)`` (no random answers)."""

    def __post_init__(self):
        check_positive_int("vocab_size", self.vocab_size)
        if self.vocab_size < 3:
            raise ValueError(f"vocab_size must be at least 3 (EOS and two content tokens), got {self.vocab_size}")
        check_positive_int("length", self.length)
        if not self.quality or any(len(row) != self.vocab_size for row in self.quality):
            raise ValueError(
                f"quality must hold a row of vocab_size = {self.vocab_size} numbers per prompt, got {self.quality!r}"
            )
        if not self.length_penalty >= 0:
            raise ValueError(f"length_penalty must be non-negative, got {self.length_penalty}")
        check_positive("label_temperature", self.label_temperature)

    @property
    def n_prompts(self) -> int:
        return len(self.quality)

    def task(self) -> tm.TokenTask:
        return tm.TokenTask(self.vocab_size, self.length, n_prompts=self.n_prompts)

    def gold_reward(self) -> tm.ConcaveQuality:
        return tm.ConcaveQuality(jnp.asarray(self.quality), self.target_length, self.length_penalty)

    def tree(self) -> tm.TokenTree:
        """Every response of every prompt, with its gold reward (:func:`~toyrlhf.envs.token_mdp.enumerate_tokens`)."""
        return tm.enumerate_tokens(self.task(), self.gold_reward())

    def labeller(self) -> pref.Labeller:
        return pref.Labeller(self.label_temperature)


@dataclasses.dataclass(frozen=True)
class SFTSetting:
    """The demonstrator and the demonstrations SFT learns from."""

    expert_temperature: float = 0.5
    """The demonstrator is the exact tilted optimum of the uniform policy at this temperature (soft, imperfect)."""
    n_demos: int = 20
    """Demonstrated responses for SFT."""
    sft_pseudo_count: float = 0.5
    """Added to every (state, token) count of SFT (keeps π_SFT > 0 for the KL leash)."""

    def __post_init__(self):
        check_positive("expert_temperature", self.expert_temperature)
        check_positive_int("n_demos", self.n_demos)
        check_positive("sft_pseudo_count", self.sft_pseudo_count)

    def expert(self, tree: tm.TokenTree) -> jax.Array:
        """The demonstrator's policy ``[S, A]``: ``π ∝ uniform · exp(g / expert_temperature)``, token by token."""
        S, A = tree.mdp.R.shape
        return tilted.tilted_policy(tree, jnp.full((S, A), 1.0 / A), tree.gold, self.expert_temperature)


def gold_return(tree: tm.TokenTree, probs: jax.Array) -> jax.Array:
    """Exact gold return ``E_x E_{y~π(·|x)} g(x, y)`` of response probabilities ``[P, N]`` (prompts uniform)."""
    return jnp.mean(jnp.sum(probs * tree.gold, -1))


def rlhf_config(token: TokenSetting, sft: SFTSetting, *, n_labels: int, beta: float, ppo_updates: int):
    """The RLHF pipeline's settings (:class:`~toyrlhf.algorithms.rlhf.RLHFConfig`'s defaults: tabular reward
    model, PPO with 16 envs x 16 steps, 4 epochs, 2 minibatches, lr 0.1) with this setting's SFT data and
    labeller, ``n_labels`` labels, the leash ``beta`` and ``ppo_updates`` PPO updates."""
    base = rlhf.RLHFConfig()
    hyper = dataclasses.replace(base.ppo.hyper, kl_coef=beta)
    return dataclasses.replace(
        base,
        n_demos=sft.n_demos,
        sft_pseudo_count=sft.sft_pseudo_count,
        n_labels=n_labels,
        label_temperature=token.label_temperature,
        ppo=dataclasses.replace(base.ppo, n_updates=ppo_updates, hyper=hyper),
    )
