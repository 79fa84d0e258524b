"""Reward-model over-optimisation, exactly (claim T3's caveat; Gao, Schulman & Hilton 2022).

A reward model is a proxy for the human. Optimising a proxy harder (moving
further from the reference policy, measured by ``d = sqrt(KL(π ‖ π_ref))``)
raises the proxy reward by construction, but the gold reward rises only while
the proxy is right where the policy goes (DESIGN.md pitfall 9: it needs a proxy
that is wrong somewhere). A proxy can be wrong in two ways, and this experiment
runs both:

- **structurally**: the model cannot represent the gold reward, however many
  labels it gets (the *misspecified* model below);
- **statistically**: the model can represent the gold reward, but it was fitted
  on finitely many labels, and the optimiser finds the responses whose reward the
  labels overestimated. This is Gao et al.'s Goodhart effect: it should appear
  with few labels and shrink as M grows (the *label sweep*).

Setting (:class:`~toyrlhf.experiments.token_setting.TokenSetting`, with its own
numbers): 2 prompts, EOS plus 3 content tokens, responses of up to 6 tokens (1,093
per prompt, all enumerated). The gold reward is
:class:`~toyrlhf.envs.token_mdp.ConcaveQuality`: per-token quality minus a concave
length penalty ``c (L − 3)²``. The reference policy ("SFT model") ends the response
with probability 0.3 at every step, so most reference answers are short and, on
them, longer is better. Labels: ``M`` pairs of reference responses to the same
prompt, judged by a Boltzmann-rational labeller (τ = 1, no random answers).
Bradley–Terry reward models (:mod:`toyrlhf.algorithms.preferences`), all on the
*same* label draws of a seed (budgets nested: the first M):

- **misspecified** (structural case, ``n_labels`` labels): linear in token counts
  (per prompt). It cannot express a preferred length: it learns "good tokens are
  good, so more of them is better";
- **well-specified, features** (10 parameters): token counts plus ``L`` and ``L²``;
  it can represent the gold reward exactly;
- **well-specified, tabular** (one reward per (prompt, response), 2,186
  parameters, L2 ``tabular_l2``; the RLHF pipeline's model): it can represent any
  reward, and must learn each response's from the labels that touch it.

The two well-specified models are the *capacity* axis of the label sweep
(``label_sweep``: M from 10 to 3,000, primary gold only); with ``n_labels`` labels
the features model is also the structural case's *control*.

Each reward model is optimised two ways, both exactly (no sampling error besides
the labels): the KL-tilted optimum ``π_β ∝ π_ref exp(r̂/β)`` over a grid of β, and
best-of-n over a grid of n (exact distribution).
:mod:`toyrlhf.algorithms.tilted` computes both. Every curve is drawn and fitted
against the *exact* KL of its policy; for best-of-n the usual formula
``log n − (n−1)/n`` is an upper bound on it (drawn as a reference only). Seeds
resample the labels (vmapped, one compiled call). Gold and proxy are reported as
gains over the reference policy (both are defined only up to a constant,
DESIGN.md pitfall 8).

Two gold rewards are run on the same label draws for the structural case: the
primary length penalty ``c = token.length_penalty`` (1.0) and the first-planned one
(``first_planned_length_penalty``, 0.35), and every structural criterion is
reported for both.

Gao et al.'s functional forms, least squares on the seed-mean gold gain against
``d = sqrt(exact KL)``: best-of-n ``R(d) = d (α − β d)``, KL-tilted (their RL form)
``R(d) = d (α − β log d)``; goodness of fit R² (on the grid points with ``d > 0``)
and RMSE are reported with every fit, and the coefficients per M with bootstrap
intervals.

Pre-registered criteria (95% intervals over seeds):

- structural findings: for the misspecified model, gold peaks at an interior KL
  and falls below its peak at the largest KL: per seed, ``min(gold[peak] −
  gold[first], gold[peak] − gold[last])`` (the peak stands above both ends; the peak
  is chosen on the other seeds, so that no seed's noise picks where it is
  measured), Student-t interval above 0; each optimiser, each gold reward;
- structural controls: for the well-specified (features) model with ``n_labels``
  labels, gold at the largest KL is at least 0.9 of its peak (gains over π_ref):
  BCa bootstrap interval of the ratio of seed-mean gains within [0.9, ∞);
- label-sweep findings (written before the sweep was first run), for each
  well-specified model and each optimiser, primary gold:
  (a) at ``M = small_labels`` (30) gold peaks at an interior KL and falls below its
  peak at the largest KL (the same prominence statistic);
  (b) the fall from the peak (chosen on the other seeds) to the largest KL is larger
  at ``M = small_labels`` than at the largest M of the sweep: per seed paired
  difference, Student-t interval above 0;
- Gao et al.'s forms (findings, external reference): for each well-specified model
  and optimiser, the smallest R² over the M of the sweep is at least ``min_r2``
  (0.9): BCa bootstrap interval (seeds resampled, every M's seed-mean curve refitted)
  within [0.9, 1].

Checks (they hold by construction, not findings): the proxy is non-decreasing in KL
for both optimisers and every reward model in every seed; the KL-tilted policy's KL
rises as β falls; best-of-n's exact KL is at most ``log n − (n−1)/n``; every seed
used ``n_labels`` labels, and each budget of the sweep its M.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from toyrlhf.algorithms import preferences as pref
from toyrlhf.algorithms import tilted
from toyrlhf.envs import token_mdp as tm
from toyrlhf.experiments.common import Clock, Criterion
from toyrlhf.experiments.token_setting import TokenSetting, check_increasing_ints, check_positive, check_positive_int
from toyrlhf.stats import bootstrap_interval, mean_and_interval

NAME = "overoptimization"
CLAIM = (
    "T3 caveat: optimising a learned reward model harder raises the proxy but, where the proxy is "
    "misspecified, the gold reward peaks and then falls (Gao et al. 2022); a well-specified one does not."
)
MODELS = ("misspecified", "well-specified")
METHODS = ("best-of-n", "KL-tilted")
FORMS = {"best-of-n": "bon", "KL-tilted": "rl"}
"""Gao et al.'s functional form of each optimiser (:func:`form`)."""
ABOVE_ZERO = (math.ulp(0.0), math.inf)
"""The region of "greater than 0": a flat curve is outside it."""
WELL_SPECIFIED_RATIO = 0.9
"""Control: gold at the largest KL must keep at least this fraction of its peak."""
CAPACITIES = ("features", "tabular")
"""The well-specified reward models of the label sweep: 10 parameters, or one per response."""

MOVED_PENALTY = (
    "The primary gold length penalty was moved from c = {first} (the first-planned setting) to c = {primary} "
    "after c = {first} showed no over-optimisation of the misspecified model (gold kept rising to the largest KL "
    "for both optimisers). Both are computed; at c = {first} this criterion is {verdict} (measured {measured:.4g}, "
    "95% CI [{lo:.4g}, {hi:.4g}])."
)
RESTATED = (
    " Registered as 'gold peaks at an interior KL and falls more than 3 SE below its peak at the largest KL'; "
    "restated, when verdicts moved to intervals, as the 95% t-interval of min(rise to the peak, fall after it) "
    "above 0, with the peak chosen on the other seeds (the earlier runs had been seen: drops of 17-21 SE at c = 1.0)."
)
FIRST_PLANNED = (
    "The first-planned gold length penalty c = {first}; the primary was moved to c = {primary} after these "
    "results had been seen (no over-optimisation here), so the c = {primary} verdicts are weaker evidence than "
    "pre-registered ones."
)


SWEEP_WRITTEN = (
    "Written before the label sweep was first run; the structural results (misspecified model, 3,000 labels) and "
    "the notebook's exercise 2 (n_labels = 100) had been seen."
)
GAO_WRITTEN = (
    " The earlier fits (not criteria) used best-of-n's formula KL on the x axis and gave best-of-n α < 0 for the "
    "misspecified model while its curve rose."
)


def _default_token() -> TokenSetting:
    return TokenSetting(
        vocab_size=4,
        length=6,
        quality=((0.0, 0.6, 0.2, -0.4), (0.0, -0.2, 0.5, 0.3)),
        target_length=3.0,
        length_penalty=1.0,
        label_temperature=1.0,
    )


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings of the over-optimisation sweeps.

    Disclosure: ``token.length_penalty`` (the primary gold length penalty, 1.0) was
    moved from 0.35 (kept as ``first_planned_length_penalty``) after 0.35 showed no
    over-optimisation of the misspecified model; both are computed and every
    structural criterion is reported for both.
    """

    token: TokenSetting = dataclasses.field(default_factory=_default_token)
    """The toy language model, its gold reward (``length_penalty``: the primary c) and the labeller's τ."""
    first_planned_length_penalty: float = 0.35
    """The length penalty c the experiment was first planned with; run on the same labels and reported."""
    ref_eos_prob: float = 0.3
    """Reference policy's probability of ending at every step."""
    ref_logit_scale: float = 0.5
    """Scale of the reference policy's (fixed, random) content-token logits."""
    reference_seed: int = 0
    """PRNG seed of the reference policy's logits: part of the setting, the same for every seed."""
    n_labels: int = 3000
    """M of the structural case: preference labels per seed, shared by every reward model (the sweep's are the
    first M of them)."""
    label_sweep: tuple[int, ...] = (10, 30, 100, 300, 1000, 3000)
    """M of the label sweep (well-specified models, primary gold), each at most ``n_labels``."""
    small_labels: int = 30
    """The M (in ``label_sweep``) at which the sweep's criteria look for statistical over-optimisation."""
    rm_steps: int = 1500
    """Adam steps of each reward-model fit."""
    rm_learning_rate: float = 0.2
    """Adam step size of the feature models' fits (large enough to converge: the L² weight is about -36)."""
    tabular_learning_rate: float = 0.1
    """Adam step size of the tabular model's fit (the RLHF pipeline's)."""
    tabular_l2: float = 1e-3
    """L2 weight of the tabular model (the RLHF pipeline's): responses no label touched stay at 0."""
    n_betas: int = 40
    """KL-tilted grid: β log-spaced from 100 down to 0.01."""
    max_log2_n: int = 16
    """Best-of-n grid: n from 1 to 2^max_log2_n."""
    min_r2: float = 0.9
    """Gao et al.'s forms 'fit' when their R² on the seed-mean curve is at least this, at every M."""
    n_seeds: int = 32
    """Seeds (label samples), vmapped; the bootstraps need at least 8."""
    seed: int = 2022
    """Base PRNG seed: seed ``i`` uses ``split(key(seed), n_seeds)[i]``."""

    def __post_init__(self):
        if not isinstance(self.token, TokenSetting):
            raise TypeError(f"token must be a TokenSetting, got {type(self.token).__name__}")
        if not self.first_planned_length_penalty >= 0:
            raise ValueError(
                f"first_planned_length_penalty must be non-negative, got {self.first_planned_length_penalty}"
            )
        if not 0.0 < self.ref_eos_prob < 1.0:
            raise ValueError(f"ref_eos_prob must lie in (0, 1), got {self.ref_eos_prob}")
        if not self.ref_logit_scale >= 0:
            raise ValueError(f"ref_logit_scale must be non-negative, got {self.ref_logit_scale}")
        for name in ("n_labels", "rm_steps", "max_log2_n", "n_seeds"):
            check_positive_int(name, getattr(self, name))
        check_increasing_ints("label_sweep", self.label_sweep)
        if len(self.label_sweep) < 2 or self.label_sweep[-1] > self.n_labels:
            raise ValueError(
                f"label_sweep needs at least 2 budgets, none above n_labels = {self.n_labels}, got {self.label_sweep}"
            )
        if self.small_labels not in self.label_sweep or self.small_labels == self.label_sweep[-1]:
            raise ValueError(f"small_labels must be one of label_sweep but its largest, got {self.small_labels}")
        check_positive("rm_learning_rate", self.rm_learning_rate)
        check_positive("tabular_learning_rate", self.tabular_learning_rate)
        if not self.tabular_l2 >= 0:
            raise ValueError(f"tabular_l2 must be non-negative, got {self.tabular_l2}")
        check_positive_int("n_betas", self.n_betas)
        if self.n_betas < 3:
            raise ValueError(f"n_betas must be at least 3 (a peak needs both ends), got {self.n_betas}")
        if not 0.0 < self.min_r2 < 1.0:
            raise ValueError(f"min_r2 must lie in (0, 1), got {self.min_r2}")
        if self.n_seeds < 2:
            raise ValueError(f"n_seeds must be at least 2 for an interval over seeds, got {self.n_seeds}")
        for name in ("seed", "reference_seed"):
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), int):
                raise ValueError(f"{name} must be an int, got {getattr(self, name)!r}")

    @classmethod
    def quick(cls) -> Config:
        return cls(n_seeds=8, n_betas=30, rm_steps=1000)

    @property
    def length_penalties(self) -> tuple[float, float]:
        """``(primary, first planned)``."""
        return (self.token.length_penalty, self.first_planned_length_penalty)

    def reward_model(self) -> pref.RewardModelConfig:
        """The feature models' Bradley–Terry fit."""
        return pref.RewardModelConfig(kind="linear", n_steps=self.rm_steps, learning_rate=self.rm_learning_rate)

    def tabular_model(self) -> pref.RewardModelConfig:
        """The tabular model's Bradley–Terry fit."""
        return pref.RewardModelConfig(
            kind="linear", n_steps=self.rm_steps, learning_rate=self.tabular_learning_rate, l2=self.tabular_l2
        )


class Curves(NamedTuple):
    """One optimiser on one reward model: ``[seeds, grid]`` (``[seeds, M, grid]`` in the sweep) along the
    optimiser's grid (KL increasing)."""

    kl: np.ndarray
    """Exact ``KL(π ‖ π_ref)`` per response."""
    gold: np.ndarray
    """Gold gain over π_ref."""
    proxy: np.ndarray
    """Proxy (reward-model) gain over π_ref."""


class GoldSetting(NamedTuple):
    """The structural case under one gold reward (one length penalty), ``n_labels`` labels."""

    bon_misspecified: Curves
    bon_well_specified: Curves
    tilted_misspecified: Curves
    tilted_well_specified: Curves
    correlation_misspecified: np.ndarray
    """``[seeds]``: centred correlation of the reward model with the gold reward under π_ref."""
    correlation_well_specified: np.ndarray


class LabelSweep(NamedTuple):
    """The statistical case: the well-specified models on the first M labels, primary gold, ``[seeds, M, ...]``."""

    bon_features: Curves
    tilted_features: Curves
    bon_tabular: Curves
    tilted_tabular: Curves
    correlation_features: np.ndarray
    """``[seeds, M]``: centred correlation with the gold reward under π_ref."""
    correlation_tabular: np.ndarray
    labels: np.ndarray
    """``[seeds, M]`` int: labels each fit used."""


class Output(NamedTuple):
    primary: GoldSetting
    """Gold length penalty ``token.length_penalty``."""
    first_planned: GoldSetting
    """Gold length penalty ``first_planned_length_penalty``, on the same label draws."""
    sweep: LabelSweep
    """The label sweep (primary gold)."""
    betas: np.ndarray
    """``[n_betas]``: the KL-tilted grid (decreasing β)."""
    ns: np.ndarray
    """``[n_n]``: the best-of-n grid."""
    kl_bon_formula: np.ndarray
    """``[n_n]``: ``log n − (n−1)/n`` (an upper bound on best-of-n's exact KL)."""
    labels: np.ndarray
    """``[seeds]`` int: labels each seed used (structural case)."""
    reference_mean_length: np.ndarray
    """``[]``: mean response length under π_ref."""


def curves(setting: GoldSetting, method: str, model: str) -> Curves:
    """The :class:`Curves` of ``method`` (:data:`METHODS`) on ``model`` (:data:`MODELS`)."""
    prefix = {"best-of-n": "bon", "KL-tilted": "tilted"}[method]
    return getattr(setting, f"{prefix}_{model.replace('-', '_')}")


def sweep_curves(sweep: LabelSweep, method: str, capacity: str) -> Curves:
    """The ``[seeds, M, grid]`` :class:`Curves` of ``method`` on the well-specified model ``capacity``
    (:data:`CAPACITIES`)."""
    prefix = {"best-of-n": "bon", "KL-tilted": "tilted"}[method]
    return getattr(sweep, f"{prefix}_{capacity}")


def build(config: Config, length_penalty: float | None = None):
    """``(task, tree, ref_policy [S, A], ref [P, N])``: the tree with the gold of ``length_penalty`` (default: the
    primary) and the reference policy with its response probabilities."""
    token = config.token
    if length_penalty is not None:
        token = dataclasses.replace(token, length_penalty=length_penalty)
    task, tree = token.task(), token.tree()
    S, A = tree.mdp.R.shape
    logits = config.ref_logit_scale * jax.random.normal(jax.random.key(config.reference_seed), (S, A - 1))
    content = (1.0 - config.ref_eos_prob) * jax.nn.softmax(logits, axis=-1)
    ref_policy = jnp.concatenate([jnp.full((S, 1), config.ref_eos_prob), content], axis=-1)
    return task, tree, ref_policy, tm.response_probs(tree, ref_policy)


def grids(config: Config) -> tuple[np.ndarray, np.ndarray]:
    """``(betas, ns)``: β log-spaced from 100 to 0.01, n from 1 to 2^max_log2_n (unique rounded log grid)."""
    betas = np.geomspace(100.0, 0.01, config.n_betas)
    ns = np.unique(np.round(np.geomspace(1, 2**config.max_log2_n, 4 * config.max_log2_n + 1)))
    return betas, ns


def features(tree: tm.TokenTree, vocab_size: int):
    """Per-prompt features ``[P, N, F]`` of the misspecified and the well-specified model (columns scaled to ≤ 1)."""
    out = []
    for length_squared in (False, True):
        phi = pref.token_count_features(tree.responses, vocab_size, eos=True, length_squared=length_squared)
        phi = phi / jnp.maximum(phi.max(0), 1.0)
        out.append(pref.per_prompt_features(phi, tree.n_prompts))
    return tuple(out)


def make_sweep(config: Config, ref: jax.Array, phis, betas, ns):
    """``sweep(keys [seeds], golds [G, P, N]) -> (GoldSetting [G, seeds], labels [seeds], LabelSweep, losses)``.

    Each seed draws one set of pairs and uniform numbers; each gold reward labels them; the structural
    models are fitted on all ``n_labels`` of them, the sweep's well-specified models (primary gold,
    ``golds[0]``) on the first M; every model is optimised exactly along both grids. All feature-model fits
    of a seed are one batched ``lax.scan`` (the misspecified features zero-padded to the well-specified
    width: zero columns get no gradient and stay 0), the tabular fits another: on a CPU the cost of a fit
    is mostly its number of sequential steps, not its width.
    """
    rm, rm_tab = config.reward_model(), config.tabular_model()
    labeller = config.token.labeller()
    log_ref = jnp.log(ref)
    P, N = ref.shape
    F = phis[1].shape[-1]
    phi_m = jnp.pad(phis[0], ((0, 0), (0, 0), (0, F - phis[0].shape[-1])))
    phi_w = phis[1]
    sweep = jnp.asarray(config.label_sweep)
    full = jnp.ones(config.n_labels, jnp.float32)
    sweep_weights = (jnp.arange(config.n_labels)[None] < sweep[:, None]).astype(jnp.float32)  # [M, n_labels]

    def along(proxy, probs, gold):
        """probs [K, P, N] -> Curves of [K] arrays."""
        kl = jax.vmap(lambda p: tm.response_kl(p, log_ref))(probs)
        gain = lambda r: jnp.mean(jnp.sum(probs * r, -1), -1) - jnp.mean(jnp.sum(ref * r, -1))  # noqa: E731
        return Curves(kl, gain(gold), gain(proxy))

    def optimise(proxy, gold):
        bon = jax.vmap(lambda n: tilted.best_of_n_probs(ref, proxy, n))(ns)
        tilt = jax.vmap(lambda b: tilted.tilted_response_probs(ref, proxy, b))(betas)
        return along(proxy, bon, gold), along(proxy, tilt, gold), pref.centred_correlation(proxy, gold, ref)

    def per_seed(key, golds):
        key_pairs, key_labels, key_fit = jax.random.split(key, 3)
        pairs = pref.sample_response_pairs(key_pairs, ref, config.n_labels)
        labels, count = jax.vmap(lambda g: pref.label(key_labels, labeller, *pairs.gather(g), 0))(golds)  # [G, L]
        G, n_pairs = labels.shape
        # feature fits: (misspecified, well-specified) x G golds on every label, then the sweep's first M
        phi_k = jnp.concatenate([jnp.stack([phi_m, phi_w] * G), jnp.broadcast_to(phi_w, (len(sweep), *phi_w.shape))])
        z_k = jnp.concatenate([jnp.repeat(labels, 2, axis=0), jnp.broadcast_to(labels[0], (len(sweep), n_pairs))])
        w_k = jnp.concatenate([jnp.broadcast_to(full, (2 * G, full.shape[0])), sweep_weights])

        def fit(phi, z, w):
            params, loss = pref.fit_reward_model(key_fit, rm, *pairs.gather(phi), z, w)
            return pref.predict_reward(rm, params, phi).astype(jnp.float64), loss

        proxies, losses = jax.vmap(fit)(phi_k, z_k, w_k)
        first, second = pairs.prompt * N + pairs.first, pairs.prompt * N + pairs.second
        tables, tab_losses = jax.vmap(
            lambda w: pref.fit_tabular_reward(key_fit, rm_tab, first, second, labels[0], P * N, w)
        )(sweep_weights)
        tables = tables.reshape(len(sweep), P, N).astype(jnp.float64)
        gold_k = jnp.concatenate([jnp.repeat(golds, 2, axis=0), jnp.broadcast_to(golds[0], (2 * len(sweep), P, N))])
        bon, tilt, corr = jax.vmap(optimise)(jnp.concatenate([proxies, tables]), gold_k)
        pick = lambda tree, idx: jax.tree.map(lambda x: x[idx], tree)  # noqa: E731
        mis, well = jnp.arange(0, 2 * G, 2), jnp.arange(1, 2 * G, 2)
        feats = jnp.arange(2 * G, 2 * G + len(sweep))
        tabs = feats + len(sweep)
        setting = GoldSetting(pick(bon, mis), pick(bon, well), pick(tilt, mis), pick(tilt, well), corr[mis], corr[well])
        label_sweep = LabelSweep(pick(bon, feats), pick(tilt, feats), pick(bon, tabs), pick(tilt, tabs), corr[feats],
                                 corr[tabs], jnp.sum(sweep_weights, -1).astype(jnp.int32))
        return setting, count[0], losses, label_sweep, tab_losses

    def run(keys, golds):
        setting, count, losses, label_sweep, tab_losses = jax.vmap(per_seed, in_axes=(0, None))(keys, golds)
        setting = jax.tree.map(lambda x: jnp.moveaxis(x, 1, 0), setting)  # [G, seeds, ...]
        return setting, count, losses, label_sweep, tab_losses

    return jax.jit(run)


def gold_settings(config: Config, length_penalties, clock: Clock | None = None):
    """``([GoldSetting per length penalty], labels [seeds], LabelSweep)``: every penalty on the same label draws,
    the label sweep under the first penalty; one compiled call."""
    clock = clock or Clock()
    trees = [build(config, c)[1] for c in length_penalties]
    _, tree, _, ref = build(config)
    phis = features(tree, config.token.vocab_size)
    betas, ns = grids(config)
    keys = jax.random.split(jax.random.key(config.seed), config.n_seeds)
    sweep = make_sweep(config, ref, phis, jnp.asarray(betas), jnp.asarray(ns))
    golds = jnp.stack([t.gold for t in trees])
    setting, count, losses, label_sweep, sweep_losses = clock.call(
        f"{len(trees)} gold rewards x {config.n_seeds} seeds x 2 reward models + sweep of "
        f"{len(config.label_sweep)} M x 2 capacities; {len(betas)} β + {len(ns)} n",
        sweep, keys, golds,
    )
    pref.check_finite_losses(losses, "reward model")
    pref.check_finite_losses(sweep_losses, "reward model (label sweep)")
    setting = jax.tree.map(np.asarray, setting)
    label_sweep = jax.tree.map(np.asarray, label_sweep)
    settings = [jax.tree.map(lambda x, g=g: x[g], setting) for g in range(len(trees))]
    return settings, np.asarray(count), label_sweep


def compute(config: Config, clock: Clock | None = None) -> Output:
    """Both gold rewards, every seed, every reward model, both optimisers, the label sweep: one compiled call."""
    (primary, first), labels, sweep = gold_settings(config, config.length_penalties, clock)
    _, tree, _, ref = build(config)
    betas, ns = grids(config)
    return Output(
        primary=primary,
        first_planned=first,
        sweep=sweep,
        betas=betas,
        ns=ns,
        kl_bon_formula=np.asarray(tilted.best_of_n_kl_bound(ns)),
        labels=labels,
        reference_mean_length=np.asarray(jnp.mean(jnp.sum(ref * tree.lengths, -1))),
    )


# ------------------------------------------------------------------------------------------
# Statistics of the curves
# ------------------------------------------------------------------------------------------


def fit_forms(d, y, kind: str):
    """Least squares of Gao's form on each row of ``d, y [..., G]`` (points with ``d > 0``), vectorised:
    ``(α, β, R², RMSE)``, each ``[...]``. R² is 0 for a flat row (there is nothing for the form to explain)."""
    d, y = np.asarray(d, dtype=np.float64), np.asarray(y, dtype=np.float64)
    keep = d > 0
    safe = np.where(keep, d, 1.0)
    x1 = np.where(keep, d, 0.0)
    x2 = np.where(keep, -(safe**2 if kind == "bon" else safe * np.log(safe)), 0.0)
    yk = np.where(keep, y, 0.0)
    a11, a12, a22 = (x1 * x1).sum(-1), (x1 * x2).sum(-1), (x2 * x2).sum(-1)
    b1, b2 = (x1 * yk).sum(-1), (x2 * yk).sum(-1)
    det = a11 * a22 - a12**2
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.where(det != 0, (a22 * b1 - a12 * b2) / det, np.nan)
        beta = np.where(det != 0, (a11 * b2 - a12 * b1) / det, np.nan)
        resid = np.where(keep, yk - alpha[..., None] * x1 - beta[..., None] * x2, 0.0)
        count = keep.sum(-1)
        mean = yk.sum(-1) / count
        ss_tot = np.where(keep, (yk - mean[..., None]) ** 2, 0.0).sum(-1)
        ss_res = (resid**2).sum(-1)
        r2 = np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), 0.0)
        rmse = np.sqrt(ss_res / count)
    return alpha, beta, r2, rmse


def fit_form(d, y, kind: str):
    """Least-squares ``(α, β)`` of ``y = d(α − β d)`` (``"bon"``) or ``y = d(α − β log d)`` (``"rl"``); ``d > 0``."""
    alpha, beta, _, _ = fit_forms(d, y, kind)
    return float(alpha), float(beta)


def form(d, alpha, beta, kind):
    d = np.asarray(d, dtype=np.float64)
    if kind == "bon":
        return d * (alpha - beta * d)
    return np.where(d > 0, d * (alpha - beta * np.log(np.where(d > 0, d, 1.0))), 0.0)


class FormFit(NamedTuple):
    alpha: float
    beta: float
    r2: float
    """``1 − SS_res / SS_tot`` on the points with ``d > 0`` (0 for a flat curve: nothing to explain)."""
    rmse: float


def fit_quality(d, y, kind: str) -> FormFit:
    """:func:`fit_form` with its goodness of fit on the points with ``d > 0``."""
    return FormFit(*(float(x) for x in fit_forms(d, y, kind)))


def exact_distance(c: Curves) -> np.ndarray:
    """``d [..., grid]``: sqrt of the seed-mean exact KL (seeds on axis 0)."""
    return np.sqrt(np.clip(np.asarray(c.kl).mean(0), 0, None))


def distance(output: Output, c: Curves, method: str) -> np.ndarray:
    """``d [grid]``: sqrt of the seed-mean exact KL, for both optimisers (``method`` and ``output`` are kept for
    callers; best-of-n's formula KL is ``output.kl_bon_formula``, an upper bound, drawn as a reference only)."""
    del output, method
    return exact_distance(c)


def peak_prominence(gold: np.ndarray) -> tuple[int, np.ndarray]:
    """How far each seed's gold curve ``gold [seeds, grid]`` stands above both ends at the peak.

    Returns the peak index of the seed-mean curve (for reporting) and, per seed ``s``,
    ``min(gold[s, p_s] − gold[s, 0], gold[s, p_s] − gold[s, -1])`` with ``p_s`` the peak of
    the mean of the *other* seeds: a seed's own noise does not choose where it is measured,
    so pure noise has no positive prominence on average. 0 when the peak is an end.
    """
    n = gold.shape[0]
    others = (gold.sum(0, keepdims=True) - gold) / max(n - 1, 1)  # [seeds, grid]: leave-one-out means
    peaks = np.argmax(others if n > 1 else gold, axis=-1)
    at_peak = gold[np.arange(n), peaks]
    return int(np.argmax(gold.mean(0))), np.minimum(at_peak - gold[:, 0], at_peak - gold[:, -1])


def fall_after_peak(gold: np.ndarray) -> np.ndarray:
    """Per seed ``gold[s, p_s] − gold[s, -1]``, ``p_s`` the peak of the other seeds' mean; ``gold [seeds, grid]``."""
    n = gold.shape[0]
    others = (gold.sum(0, keepdims=True) - gold) / max(n - 1, 1)
    peaks = np.argmax(others if n > 1 else gold, axis=-1)
    return gold[np.arange(n), peaks] - gold[:, -1]


def misspecified_drop(gold: np.ndarray):
    """Peak index of the seed-mean curve ``gold [seeds, grid]``, per-seed drops peak → last, and their SE."""
    peak = int(np.argmax(gold.mean(0)))
    drops = gold[:, peak] - gold[:, -1]
    return peak, drops, float(drops.std(ddof=1) / np.sqrt(gold.shape[0]))


def peak_ratio(gold: np.ndarray) -> float:
    """Seed-mean gold gain at the largest KL over its peak."""
    mean = gold.mean(0)
    return float(mean[-1] / mean.max())


def min_r2(c: Curves, kind: str) -> float:
    """Smallest R² over M of Gao's form fitted to each M's seed-mean gold against sqrt(seed-mean exact KL);
    ``c`` is ``[seeds, M, grid]``."""
    return float(np.min(fit_forms(exact_distance(c), np.asarray(c.gold).mean(0), kind)[2]))


# ------------------------------------------------------------------------------------------
# Criteria and checks
# ------------------------------------------------------------------------------------------
def _setting_criteria(config: Config, setting: GoldSetting, c: float, tag: str) -> list[Criterion]:
    n = setting.correlation_misspecified.shape[0]
    found = []
    for method in METHODS:
        cv = curves(setting, method, "misspecified")
        peak, prominence = peak_prominence(cv.gold)
        mean, lo, hi = mean_and_interval(prominence)
        found.append(
            Criterion(
                f"{method}, misspecified RM, gold length penalty c = {c} ({tag}): gold peaks at an interior KL "
                "and falls below its peak at the largest KL",
                float(mean),
                (float(lo), float(hi)),
                ABOVE_ZERO,
                detail=f"per seed min(gold[peak] − gold[first], gold[peak] − gold[last]) with the peak chosen on the "
                f"other seeds (leave-one-out); the seed-mean curve peaks at grid index {peak} of {cv.gold.shape[-1]} "
                f"(KL {cv.kl[:, peak].mean():.3g}), drop to the largest KL "
                f"{(cv.gold[:, peak] - cv.gold[:, -1]).mean():.4g}; {n} seeds, Student-t",
                to_decide="more seeds, or a grid that reaches further",
            )
        )
    for method in METHODS:
        cv = curves(setting, method, "well-specified")
        value, lo, hi = bootstrap_interval(cv.gold, peak_ratio)
        found.append(
            Criterion(
                f"{method}, well-specified RM ({config.n_labels} labels), gold length penalty c = {c} ({tag}): gold at "
                f"the largest KL >= {WELL_SPECIFIED_RATIO} of its peak",
                value,
                (lo, hi),
                (WELL_SPECIFIED_RATIO, math.inf),
                kind="control",
                detail="ratio of seed-mean gold gains over π_ref (largest KL / peak); BCa bootstrap over "
                f"{n} seeds (none below 8)",
                to_decide="at least 8 seeds (the bootstrap refuses fewer), then more seeds",
            )
        )
    return found


def _sweep_criteria(config: Config, sweep: LabelSweep) -> list[Criterion]:
    small = config.label_sweep.index(config.small_labels)
    M_small, M_top = config.small_labels, config.label_sweep[-1]
    n = sweep.labels.shape[0]
    found = []
    for capacity in CAPACITIES:
        for method in METHODS:
            cv = sweep_curves(sweep, method, capacity)
            peak, prominence = peak_prominence(cv.gold[:, small])
            mean, lo, hi = mean_and_interval(prominence)
            found.append(Criterion(
                f"{method}, well-specified RM ({capacity}) from M = {M_small} labels, primary gold: gold peaks at an "
                "interior KL and falls below its peak at the largest KL (statistical over-optimisation)",
                float(mean), (float(lo), float(hi)), ABOVE_ZERO,
                detail=f"per seed min(rise to the peak, fall after it), the peak chosen on the other seeds; the "
                f"seed-mean curve peaks at grid index {peak} of {cv.gold.shape[-1]} (exact KL "
                f"{cv.kl[:, small, peak].mean():.3g}); {n} seeds, Student-t",
                to_decide="more seeds", disclosure=SWEEP_WRITTEN,
            ))
    for capacity in CAPACITIES:
        for method in METHODS:
            cv = sweep_curves(sweep, method, capacity)
            diff = fall_after_peak(cv.gold[:, small]) - fall_after_peak(cv.gold[:, -1])
            mean, lo, hi = mean_and_interval(diff)
            found.append(Criterion(
                f"{method}, well-specified RM ({capacity}): the fall of gold from its peak to the largest KL shrinks "
                f"from M = {M_small} to M = {M_top} labels",
                float(mean), (float(lo), float(hi)), ABOVE_ZERO,
                detail=f"per seed fall(M = {M_small}) − fall(M = {M_top}), fall = gold at the other seeds' peak − "
                f"gold at the largest KL, on nested labels of one seed; {n} seeds, Student-t (mean falls "
                f"{fall_after_peak(cv.gold[:, small]).mean():.3g} and {fall_after_peak(cv.gold[:, -1]).mean():.3g})",
                to_decide="more seeds", disclosure=SWEEP_WRITTEN,
            ))
    for capacity in CAPACITIES:
        for method in METHODS:
            cv = sweep_curves(sweep, method, capacity)
            kind = FORMS[method]
            value, lo, hi = bootstrap_interval(
                np.stack([cv.kl, cv.gold], 1), lambda r, kind=kind: min_r2(Curves(r[:, 0], r[:, 1], r[:, 1]), kind)
            )
            shape = "d(α − βd)" if kind == "bon" else "d(α − β log d)"
            found.append(Criterion(
                f"{method}, well-specified RM ({capacity}): Gao et al.'s form {shape} fits the gold curve against "
                f"d = sqrt(exact KL) at every M of {config.label_sweep}: smallest R² >= {config.min_r2}",
                value, (lo, hi), (config.min_r2, 1.0),
                detail=f"least squares on each M's seed-mean curve; the smallest R² over M; BCa bootstrap over {n} "
                "seeds (seeds resampled, every curve refitted; none below 8)",
                to_decide="at least 8 seeds (the bootstrap refuses fewer), then more seeds",
                disclosure=SWEEP_WRITTEN + GAO_WRITTEN,
            ))
    return found


def criteria(config: Config, output: Output) -> list[Criterion]:
    primary, first = config.length_penalties
    main = _setting_criteria(config, output.primary, primary, "primary")
    planned = _setting_criteria(config, output.first_planned, first, "first-planned")
    note = FIRST_PLANNED.format(first=first, primary=primary)
    planned = [
        dataclasses.replace(x, disclosure=note + (RESTATED if x.kind == "finding" else "")) for x in planned
    ]
    for i, (x, y) in enumerate(zip(main, planned)):
        lo, hi = y.interval
        moved = MOVED_PENALTY.format(first=first, primary=primary, verdict=y.verdict, measured=y.measured, lo=lo, hi=hi)
        main[i] = dataclasses.replace(x, disclosure=moved + (RESTATED if x.kind == "finding" else ""))
    return main + planned + _sweep_criteria(config, output.sweep)


def checks(config: Config, output: Output) -> list[Criterion]:
    settings = (output.primary, output.first_planned)
    sweep = [sweep_curves(output.sweep, m, k) for m in METHODS for k in CAPACITIES]
    every = [curves(s, m, k) for s in settings for m in METHODS for k in MODELS] + sweep
    tilted_kl = [curves(s, "KL-tilted", k).kl for s in settings for k in MODELS]
    tilted_kl += [sweep_curves(output.sweep, "KL-tilted", k).kl for k in CAPACITIES]
    bon_kl = [curves(s, "best-of-n", k).kl for s in settings for k in MODELS]
    bon_kl += [sweep_curves(output.sweep, "best-of-n", k).kl for k in CAPACITIES]
    used = np.asarray(output.sweep.labels)
    return [
        Criterion(
            "the proxy reward is non-decreasing in KL (both optimisers, every reward model, every seed and M)",
            float(min(np.diff(c.proxy, axis=-1).min() for c in every)), None, (-1e-9, math.inf), "check",
            "smallest increment of the proxy gain between neighbouring grid points, over both gold rewards and the "
            "sweep: E_{π_β}[r̂] rises as β falls and E[max of n] rises with n",
        ),
        Criterion(
            "the KL-tilted policy's KL to π_ref rises as β falls",
            float(min(np.diff(k, axis=-1).min() for k in tilted_kl)), None, (-1e-9, math.inf), "check",
            "smallest increment of the exact KL along the β grid",
        ),
        Criterion(
            "best-of-n's exact KL is at most log n − (n−1)/n",
            float(max(np.max(k - output.kl_bon_formula) for k in bon_kl)), None, (-math.inf, 1e-9), "check",
            "largest exact KL − formula over n, seeds, reward models, gold rewards and M",
        ),
        Criterion(
            f"every seed used n_labels = {config.n_labels} labels, and each budget of the sweep its M",
            float(max(np.max(np.abs(output.labels - config.n_labels)),
                      np.max(np.abs(used - np.asarray(config.label_sweep))))), None, (0.0, 0.0), "check",
            "largest |labels − n_labels| over seeds, and |labels − M| over the sweep",
        ),
    ]


def _fit_dict(d, y, kind) -> dict:
    f = fit_quality(d, y, kind)
    return {"alpha": f.alpha, "beta": f.beta, "r2": f.r2, "rmse": f.rmse, "form": kind}


def sweep_fits(config: Config, sweep: LabelSweep) -> dict:
    """Gao's form per M, capacity and optimiser: α, β, R², RMSE of the seed-mean curve, and 95% t-intervals of
    α and β over seeds.

    With the x axis shared by the seeds (sqrt of the seed-mean exact KL), least squares is linear in the curve,
    so the fit of the seed-mean curve is the mean of the per-seed fits, and their spread gives the interval.
    """
    out = {}
    for capacity in CAPACITIES:
        for method in METHODS:
            cv = sweep_curves(sweep, method, capacity)
            kind = FORMS[method]
            d = exact_distance(cv)  # [M, grid]
            per_seed_alpha, per_seed_beta, _, _ = fit_forms(d[None], cv.gold, kind)  # [seeds, M]
            alpha, beta, r2, rmse = fit_forms(d, cv.gold.mean(0), kind)
            _, a_lo, a_hi = mean_and_interval(per_seed_alpha)
            _, b_lo, b_hi = mean_and_interval(per_seed_beta)
            out[f"{method} / {capacity}"] = [
                {
                    "M": int(M), "form": kind, "alpha": float(alpha[m]), "beta": float(beta[m]),
                    "alpha_interval": [float(a_lo[m]), float(a_hi[m])],
                    "beta_interval": [float(b_lo[m]), float(b_hi[m])],
                    "r2": float(r2[m]), "rmse": float(rmse[m]),
                    "peak_kl": float(cv.kl[:, m, int(np.argmax(cv.gold[:, m].mean(0)))].mean()),
                    "fall_after_peak_mean": float(fall_after_peak(cv.gold[:, m]).mean()),
                }
                for m, M in enumerate(config.label_sweep)
            ]
    return out


def measurements(config: Config, output: Output) -> dict:
    out = {"fits_exact_kl": {}, "fits_best_of_n_formula_kl": {}, "peaks": {}, "centred_correlation_with_gold": {}}
    for c, tag, setting in zip(config.length_penalties, ("primary", "first planned"), (output.primary,
                                                                                       output.first_planned)):
        key = f"length_penalty={c} ({tag})"
        out["fits_exact_kl"][key], out["fits_best_of_n_formula_kl"][key], out["peaks"][key] = {}, {}, {}
        for method in METHODS:
            for model in MODELS:
                cv = curves(setting, method, model)
                out["fits_exact_kl"][key][f"{method} / {model}"] = _fit_dict(
                    exact_distance(cv), cv.gold.mean(0), FORMS[method]
                )
                if method == "best-of-n":
                    out["fits_best_of_n_formula_kl"][key][model] = _fit_dict(
                        np.sqrt(output.kl_bon_formula), cv.gold.mean(0), "bon"
                    )
            cv = curves(setting, method, "misspecified")
            peak, drops, se = misspecified_drop(cv.gold)
            out["peaks"][key][method] = {
                "misspecified_peak_index": peak,
                "misspecified_peak_kl": float(cv.kl[:, peak].mean()),
                "misspecified_drop_in_se": float(drops.mean() / max(se, 1e-300)),
                "well_specified_ratio": peak_ratio(curves(setting, method, "well-specified").gold),
            }
        corr = (setting.correlation_misspecified, setting.correlation_well_specified)
        out["centred_correlation_with_gold"][key] = {
            m: {"mean": float(x.mean()), "sd": float(x.std(ddof=1))} for m, x in zip(MODELS, corr)
        }
    out["label_sweep_fits (primary gold, exact KL)"] = sweep_fits(config, output.sweep)
    out["label_sweep_centred_correlation_mean"] = {
        "M": list(config.label_sweep),
        **{k: np.asarray(getattr(output.sweep, f"correlation_{k}")).mean(0).tolist() for k in CAPACITIES},
    }
    out["best_of_n_kl_at_largest_n"] = {
        "formula (upper bound)": float(output.kl_bon_formula[-1]),
        **{
            f"exact, {m} RM": float(curves(output.primary, "best-of-n", m).kl[:, -1].mean()) for m in MODELS
        },
    }
    out["resources_per_seed"] = {
        "preference_labels": int(output.labels[0]),
        "gold_queries": 0,
        "env_steps": 0,
        "known_dynamics": True,
    }
    out["reference_mean_length"] = float(output.reference_mean_length)
    return out


def plot(config: Config, output: Output):
    """Rows: the structural case under both gold rewards, the label sweep for each well-specified model, and Gao's
    coefficients against M; columns best-of-n and KL-tilted. x: sqrt of the exact KL."""
    import matplotlib.pyplot as plt

    from toyrlhf.plotting import PALETTE, apply_style, seed_band

    apply_style()
    settings = (output.primary, output.first_planned)
    fig, axes = plt.subplots(5, 2, figsize=(11, 3.6 * 5), squeeze=False)
    for row, (c, setting) in enumerate(zip(config.length_penalties, settings)):
        for j, method in enumerate(METHODS):
            ax = axes[row, j]
            kind = FORMS[method]
            for m, model in enumerate(MODELS):
                color = PALETTE[m]
                cv = curves(setting, method, model)
                d = exact_distance(cv)
                label = model if model == "misspecified" else f"{model} (features)"
                seed_band(ax, d, cv.gold, label=f"gold, {label} RM", color=color)
                ax.plot(d, cv.proxy.mean(0), ":", color=color, label=f"proxy, {label} RM")
                if row == 0:
                    f = fit_quality(d, cv.gold.mean(0), kind)
                    grid = np.linspace(0, d.max(), 200)
                    ax.plot(grid, form(grid, f.alpha, f.beta, kind), "--", color=color, lw=1, alpha=0.7,
                            label=f"fit, R² = {f.r2:.2f}")
                if method == "best-of-n" and model == "misspecified":
                    ax.plot(np.sqrt(output.kl_bon_formula), cv.gold.mean(0), "-", color="0.6", lw=0.8,
                            label="gold at the formula's KL (an upper bound)")
            ax.axhline(0, color="0.7", lw=0.8)
            ax.set_xlabel("d = sqrt(exact KL(π ‖ π_ref))")
            form_text = f"; dashed: fitted {'d(α − βd)' if kind == 'bon' else 'd(α − β log d)'}" if row == 0 else ""
            tag = "primary" if row == 0 else "first planned"
            ax.set_title(f"structural: {method}, gold c = {c} ({tag}){form_text}", fontsize=9)
            ax.legend(fontsize=6, loc="best")
        axes[row, 0].set_ylabel("gain over π_ref")
    cmap = plt.get_cmap("viridis")
    sweep = config.label_sweep
    for r, capacity in enumerate(CAPACITIES):
        for j, method in enumerate(METHODS):
            ax = axes[2 + r, j]
            cv = sweep_curves(output.sweep, method, capacity)
            for m, M in enumerate(sweep):
                color = cmap(m / max(len(sweep) - 1, 1))
                d = exact_distance(Curves(cv.kl[:, m], None, None))
                seed_band(ax, d, cv.gold[:, m], label=f"M = {M}", color=color)
                f = fit_quality(d, cv.gold[:, m].mean(0), FORMS[method])
                grid = np.linspace(0, d.max(), 200)
                ax.plot(grid, form(grid, f.alpha, f.beta, FORMS[method]), "--", color=color, lw=0.8, alpha=0.7)
            ax.axhline(0, color="0.7", lw=0.8)
            ax.set_xlabel("d = sqrt(exact KL(π ‖ π_ref))")
            ax.set_title(f"label sweep: {method}, well-specified {capacity} RM (dashed: Gao's form)", fontsize=9)
            ax.legend(fontsize=6, loc="best", ncol=2)
        axes[2 + r, 0].set_ylabel("gold gain over π_ref")
    fits = sweep_fits(config, output.sweep)
    for j, name in enumerate(("alpha", "beta")):
        ax = axes[4, j]
        for k, (key, rows) in enumerate(fits.items()):
            ax.plot(sweep, [row[name] for row in rows], "o-", color=PALETTE[k], label=key, markersize=3)
        ax.set_xscale("log")
        ax.set_xlabel("labels M")
        ax.set_ylabel(f"fitted {'α' if name == 'alpha' else 'β'}")
        ax.axhline(0, color="0.7", lw=0.8)
        ax.set_title(f"Gao et al.'s {'α' if name == 'alpha' else 'β'} against M (primary gold)", fontsize=9)
        ax.legend(fontsize=6)
    fig.suptitle(
        f"Over-optimisation on a toy language model ({output.labels.shape[0]} seeds; gold solid with 95% t-bands, "
        "proxy dotted)",
        fontsize=11,
    )
    fig.tight_layout()
    return fig
