"""Choosing a prompt per query with a model learned from an offline table (claim T3, carried over to prompts).

The paper's argument for reward models carries over to prompts: a model learned
from an offline table of outcomes can pick a prompt for each query without a
single new query. Measured exactly against hidden ground truth.

``K`` candidate prompts, queries with features ``u_q ∈ R^d``, hidden success
probabilities

    logit p[q, k] = b_0 + b_k + u_q · v_k + ε[q, k],

with prompt effects ``b_k``, prompt directions ``v_k`` and an idiosyncratic
``ε`` that no model can learn (all drawn per seed). An offline table logs
``n`` outcomes ``(q, k, success)`` of uniformly random (training query, prompt)
pairs. A success model, logistic regression on ``one_hot(k) ⊗ [1, u_q]`` (the
Bradley–Terry fit of :func:`~toyrlhf.algorithms.preferences.fit_reward_model`
against a zero-reward comparator *is* logistic regression), picks
``argmax_k p̂[q, k]`` for each of ``n_test_queries`` *fresh* queries, at zero
extra queries. Compared by exact expected success (mean over test queries of
the hidden ``p`` of the chosen prompt) with the **best single prompt in
hindsight** (``max_k mean_q p[q, k]`` on the test queries: it uses the hidden
``p``, an upper bound for any one-prompt policy), the **table's best single
prompt** (largest posterior mean success, Beta(1, 1) prior: what one would
deploy without a model) and the **per-query oracle** (``mean_q max_k p``).
Table sizes are nested within a seed: one table of the largest size, the fit for
size ``n`` weighs its first ``n`` rows.

Pre-registered criterion (a finding): at the largest table, per-query selection by
the learned success model beats the best single prompt in hindsight: 95% Student-t
interval of the paired difference of exact success above 0.

Checks (they hold by construction): the table's best single prompt never beats the
best single prompt in hindsight; nothing beats the per-query oracle; the fit for
table size ``n`` used ``n`` rows.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from toyrlhf.algorithms import preferences as pref
from toyrlhf.experiments.common import Clock, Criterion
from toyrlhf.experiments.token_setting import check_increasing_ints, check_positive_int
from toyrlhf.stats import mean_and_interval

NAME = "prompt-bandit"
CLAIM = (
    "T3 for prompts: a success model learned from an offline table picks better prompts per query than the "
    "best single prompt, at zero extra queries."
)
POLICIES = ("per-query (learned)", "best single (table)", "best single (hindsight)", "per-query oracle")
"""Display names, in the order of :class:`Success`' fields."""
ABOVE_ZERO = (math.ulp(0.0), math.inf)
"""The region of "greater than 0": a tie is outside it."""


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings of the bandit (static: they fix the compiled program)."""

    n_candidates: int = 8
    """K: candidate prompts."""
    n_query_features: int = 4
    """d: features of a query."""
    n_train_queries: int = 100
    """Queries that appear in the offline table."""
    n_test_queries: int = 1000
    """Fresh queries the selection is evaluated on (exactly, with the hidden p)."""
    table_sizes: tuple[int, ...] = (10, 40, 160, 640, 2560)
    """Logged outcomes in the offline table (nested within a seed)."""
    base_logit: float = -0.5
    """b_0: the overall success logit."""
    prompt_scale: float = 0.5
    """SD of the prompt effects b_k."""
    interaction_scale: float = 1.5
    """SD of the query-prompt interaction u_q · v_k."""
    idiosyncratic_scale: float = 0.5
    """SD of the unlearnable ε[q, k]."""
    success_model: pref.RewardModelConfig = dataclasses.field(
        default_factory=lambda: pref.RewardModelConfig(kind="linear", n_steps=500, learning_rate=0.1, l2=1e-3)
    )
    """Logistic regression (linear Bradley–Terry against a zero comparator) on one_hot(k) ⊗ [1, u_q]."""
    n_seeds: int = 16
    """Seeds (hidden worlds and their tables), vmapped; at least 2 for an interval."""
    seed: int = 0
    """Base PRNG seed: seed ``i`` uses ``split(key(seed), n_seeds)[i]``."""

    def __post_init__(self):
        for name in ("n_candidates", "n_query_features", "n_train_queries", "n_test_queries", "n_seeds"):
            check_positive_int(name, getattr(self, name))
        if self.n_candidates < 2:
            raise ValueError(f"n_candidates must be at least 2, got {self.n_candidates}")
        if self.n_seeds < 2:
            raise ValueError(f"n_seeds must be at least 2 for an interval over seeds, got {self.n_seeds}")
        check_increasing_ints("table_sizes", self.table_sizes)
        for name in ("prompt_scale", "interaction_scale", "idiosyncratic_scale"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be non-negative, got {getattr(self, name)}")
        if not isinstance(self.success_model, pref.RewardModelConfig):
            raise TypeError(f"success_model must be a RewardModelConfig, got {type(self.success_model).__name__}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an int, got {self.seed!r}")

    @classmethod
    def quick(cls) -> Config:
        return cls(n_seeds=8)


class Success(NamedTuple):
    """Exact expected success on the fresh queries, one field per policy (:data:`POLICIES`), ``[seeds, tables]``."""

    learned: np.ndarray
    table_best: np.ndarray
    hindsight: np.ndarray
    oracle: np.ndarray


class Output(NamedTuple):
    success: Success
    table_rows: np.ndarray
    """``[seeds, tables]`` int: rows of the table the fit used."""
    final_loss: np.ndarray
    """``[seeds, tables]``: the success model's final loss."""


class BanditWorld(NamedTuple):
    """One seed's hidden world: query features and success probabilities."""

    train_features: jax.Array
    """``[Q_train, d]``: features of the queries in the offline table."""
    test_features: jax.Array
    """``[Q_test, d]``: features of the fresh queries the selection is judged on."""
    train_success: jax.Array
    """``[Q_train, K]``: hidden ``p[q, k]``."""
    test_success: jax.Array
    """``[Q_test, K]``: hidden ``p[q, k]``."""


def sample_world(key: jax.Array, config: Config) -> BanditWorld:
    """Draw ``b_k, v_k, u_q, ε`` and ``p = σ(b_0 + b_k + u_q·v_k + ε)`` (see the module docstring)."""
    K, d = config.n_candidates, config.n_query_features
    Q_tr, Q_te = config.n_train_queries, config.n_test_queries
    key_b, key_v, key_u, key_e = jax.random.split(key, 4)
    bias = config.prompt_scale * jax.random.normal(key_b, (K,))
    directions = config.interaction_scale / np.sqrt(d) * jax.random.normal(key_v, (K, d))
    u = jax.random.normal(key_u, (Q_tr + Q_te, d))
    eps = config.idiosyncratic_scale * jax.random.normal(key_e, (Q_tr + Q_te, K))
    p = jax.nn.sigmoid(config.base_logit + bias + u @ directions.T + eps)
    return BanditWorld(u[:Q_tr], u[Q_tr:], p[:Q_tr], p[Q_tr:])


def selection_features(query_features: jax.Array, n_candidates: int) -> jax.Array:
    """``[Q, K, K·(d+1)]``: ``one_hot(k) ⊗ [1, u_q]``, a separate intercept and slope per prompt."""
    Q = query_features.shape[0]
    x = jnp.concatenate([jnp.ones((Q, 1), query_features.dtype), query_features], -1)  # [Q, d+1]
    eye = jnp.eye(n_candidates, dtype=x.dtype)
    return jnp.einsum("kj,qf->qkjf", eye, x).reshape(Q, n_candidates, -1).astype(jnp.float32)


def exact_success(success: jax.Array, choice: jax.Array) -> jax.Array:
    """Exact expected success ``mean_q p[q, choice_q]`` of choosing prompt ``choice [Q]`` for each query."""
    if success.ndim != 2 or choice.shape != success.shape[:1]:
        raise ValueError(f"choice must have shape [Q] = [{success.shape[0]}] for success [Q, K], got {choice.shape}")
    return jnp.mean(jnp.take_along_axis(success, choice[:, None], axis=1))


def best_single_success(success: jax.Array) -> jax.Array:
    """``max_k mean_q p[q, k]``: the best one prompt for every query, in hindsight (reads the hidden ``p``)."""
    return jnp.max(jnp.mean(success, 0))


def oracle_success(success: jax.Array) -> jax.Array:
    """``mean_q max_k p[q, k]``: the best prompt for each query (reads the hidden ``p``)."""
    return jnp.mean(jnp.max(success, 1))


def make_bandit(config: Config):
    """``bandit(key) -> (Success of [tables] arrays, table_rows [tables], losses [tables, n_steps])``."""
    sizes = jnp.asarray(config.table_sizes)
    n_max = max(config.table_sizes)
    K = config.n_candidates
    model = config.success_model

    def bandit(key):
        key_world, key_q, key_k, key_y, key_fit = jax.random.split(key, 5)
        world = sample_world(key_world, config)
        query = jax.random.randint(key_q, (n_max,), 0, config.n_train_queries)
        prompt = jax.random.randint(key_k, (n_max,), 0, K)
        outcome = jax.random.bernoulli(key_y, world.train_success[query, prompt]).astype(jnp.float32)
        logged = selection_features(world.train_features, K)[query, prompt]  # [n, F]
        test = selection_features(world.test_features, K)  # [Q_test, K, F]

        def one(n):
            weights = (jnp.arange(n_max) < n).astype(jnp.float32)
            params, loss = pref.fit_reward_model(key_fit, model, logged, jnp.zeros_like(logged), outcome, weights)
            choice = jnp.argmax(pref.predict_reward(model, params, test), -1)
            tries = jnp.zeros(K).at[prompt].add(weights)
            wins = jnp.zeros(K).at[prompt].add(weights * outcome)
            table_best = jnp.argmax((wins + 1.0) / (tries + 2.0))
            success = Success(
                exact_success(world.test_success, choice),
                jnp.mean(world.test_success[:, table_best]),
                best_single_success(world.test_success),
                oracle_success(world.test_success),
            )
            return success, jnp.sum(weights).astype(jnp.int32), loss

        return jax.vmap(one)(sizes)

    return bandit


def compute(config: Config, clock: Clock | None = None) -> Output:
    """Every seed and table size in one compiled call."""
    clock = clock or Clock()
    keys = jax.random.split(jax.random.key(config.seed), config.n_seeds)
    sweep = jax.jit(jax.vmap(make_bandit(config)))
    success, rows, losses = clock.call(
        f"{config.n_seeds} seeds x {len(config.table_sizes)} tables", sweep, keys
    )
    pref.check_finite_losses(losses, "success model")
    return Output(
        success=Success(*(np.asarray(x) for x in success)),
        table_rows=np.asarray(rows),
        final_loss=np.asarray(losses)[..., -1],
    )


def criteria(config: Config, output: Output) -> list[Criterion]:
    s = output.success
    diff = s.learned[:, -1] - s.hindsight[:, -1]
    mean, lo, hi = mean_and_interval(diff)
    small = s.learned[:, 0] - s.hindsight[:, 0]
    return [
        Criterion(
            f"with the largest offline table ({config.table_sizes[-1]} outcomes), per-query selection by the learned "
            "success model beats the best single prompt in hindsight",
            float(mean),
            (float(lo), float(hi)),
            ABOVE_ZERO,
            detail=f"exact success difference paired over {diff.shape[0]} seeds, Student-t; per-query "
            f"{s.learned[:, -1].mean():.4f}, best single {s.hindsight[:, -1].mean():.4f}, oracle "
            f"{s.oracle[:, -1].mean():.4f}; smallest table ({config.table_sizes[0]}): difference {small.mean():+.4f}",
            to_decide="more seeds",
        )
    ]


def checks(config: Config, output: Output) -> list[Criterion]:
    s = output.success
    return [
        Criterion(
            "the table's best single prompt never beats the best single prompt in hindsight",
            float(np.max(s.table_best - s.hindsight)), None, (-math.inf, 1e-12), "check",
            "largest table-best − hindsight over seeds and table sizes",
        ),
        Criterion(
            "no policy beats the per-query oracle",
            float(max(np.max(x - s.oracle) for x in (s.learned, s.table_best, s.hindsight))), None,
            (-math.inf, 1e-12), "check",
            "largest policy − oracle over policies, seeds and table sizes",
        ),
        Criterion(
            "the fit for table size n used exactly n rows",
            float(np.max(np.abs(output.table_rows - np.asarray(config.table_sizes)))), None, (0.0, 0.0), "check",
            "largest |rows − n| over seeds and table sizes",
        ),
    ]


def measurements(config: Config, output: Output) -> dict:
    return {
        "success_mean": {p: v.mean(0).tolist() for p, v in zip(POLICIES, output.success)},
        "resources": {
            "offline_table_rows": [int(n) for n in np.asarray(output.table_rows)[0]],
            "extra_queries": 0,
            "note": "best single (hindsight) and per-query oracle read the hidden p: references, not methods",
        },
    }


def plot(config: Config, output: Output):
    """Exact success on fresh queries against the table size, one band per policy."""
    import matplotlib.pyplot as plt

    from toyrlhf.plotting import PALETTE, apply_style, seed_band

    apply_style()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    sizes = np.asarray(config.table_sizes, dtype=np.float64)
    styles = ("-", "-", "--", ":")
    for i, (policy, values) in enumerate(zip(POLICIES, output.success)):
        seed_band(
            ax, sizes, values, label=policy, color=PALETTE[[0, 1, 7, 2][i]], linestyle=styles[i],
            marker="o" if i < 2 else None,
        )
    ax.set_xscale("log")
    ax.set_xlabel("offline table size (logged outcomes; zero extra queries)")
    ax.set_ylabel("exact expected success on fresh queries")
    ax.set_title(
        f"Prompt selection: {config.n_candidates} prompts, {config.n_test_queries} fresh queries "
        f"({output.table_rows.shape[0]} seeds; bands: 95% t-intervals)",
        fontsize=9,
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
