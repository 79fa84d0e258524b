"""Reward-model over-optimisation, exactly (claim T3's caveat; Gao, Schulman & Hilton 2022).

A reward model is a proxy for the human. Optimising a proxy harder (moving
further from the reference policy, measured by ``d = sqrt(KL(π ‖ π_ref))``)
raises the proxy reward by construction, but the gold reward rises only while
the proxy is right where the policy goes (DESIGN.md pitfall 9: it needs a proxy
that is wrong somewhere).

Setting (:class:`~toyrlhf.experiments.token_setting.TokenSetting`, with its own
numbers): 2 prompts, EOS plus 3 content tokens, responses of up to 6 tokens (1,093
per prompt, all enumerated). The gold reward is
:class:`~toyrlhf.envs.token_mdp.ConcaveQuality`: per-token quality minus a concave
length penalty ``c (L − 3)²``. The reference policy ("SFT model") ends the response
with probability 0.3 at every step, so most reference answers are short and, on
them, longer is better. Labels: ``M`` pairs of reference responses to the same
prompt, judged by a Boltzmann-rational labeller (τ = 1, no random answers). Two
Bradley–Terry reward models are fitted to the *same* labels
(:mod:`toyrlhf.algorithms.preferences`):

- **misspecified**: linear in token counts (per prompt). It cannot express a
  preferred length: it learns "good tokens are good, so more of them is better";
- **well-specified**: token counts plus ``L`` and ``L²``: it can represent the gold
  reward exactly. Where it has many labels, no over-optimisation is expected: it is
  the *control*.

Each reward model is then optimised two ways, both exactly (no sampling error
besides the labels): the KL-tilted optimum ``π_β ∝ π_ref exp(r̂/β)`` over a grid of
β, and best-of-n over a grid of n (exact distribution; its KL drawn with the
usual formula ``log n − (n−1)/n``, the exact KL reported beside it).
:mod:`toyrlhf.algorithms.tilted` computes both. Seeds resample the labels (vmapped,
one compiled call). Gold and proxy are reported as gains over the reference
policy (both are defined only up to a constant, DESIGN.md pitfall 8).

Two gold rewards are run on the same label draws: the primary length penalty
``c = token.length_penalty`` (1.0) and the first-planned one
(``first_planned_length_penalty``, 0.35), and every criterion is reported for both.

Fitted functional forms (Gao et al. 2022), least squares on the seed-mean gold gain,
reported as measurements: best-of-n ``R(d) = d (α − β d)``, KL-tilted (their RL form)
``R(d) = d (α − β log d)``.

Pre-registered criteria, for each optimiser and each gold reward (95% intervals
over seeds):

- findings: for the misspecified model, gold peaks at an interior KL and falls
  below its peak at the largest KL: per seed, ``min(gold[peak] − gold[first],
  gold[peak] − gold[last])`` (the peak stands above both ends; the peak is chosen on
  the other seeds, so that no seed's noise picks where it is measured), Student-t
  interval above 0;
- controls: for the well-specified model with many labels, gold at the largest KL
  is at least 0.9 of its peak (gains over π_ref, so the ratio does not depend on
  the gold reward's constant): BCa bootstrap interval of the ratio of seed-mean
  gains within [0.9, ∞).

Checks (they hold by construction, not findings): the proxy is non-decreasing in KL
for both optimisers and both reward models in every seed; the KL-tilted policy's KL
rises as β falls; best-of-n's exact KL is at most ``log n − (n−1)/n``; every seed
used ``n_labels`` labels.
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
from toyrlhf.experiments.token_setting import TokenSetting, check_positive, check_positive_int
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
    """Settings of the over-optimisation sweep.

    Disclosure: ``token.length_penalty`` (the primary gold length penalty, 1.0) was
    moved from 0.35 (kept as ``first_planned_length_penalty``) after 0.35 showed no
    over-optimisation; both are computed and every criterion is reported for both.
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
    """M: preference labels per seed, shared by both reward models."""
    rm_steps: int = 1500
    """Adam steps of each reward-model fit."""
    rm_learning_rate: float = 0.2
    """Adam step size of each reward-model fit (large enough to converge: the L² weight is about -36)."""
    n_betas: int = 40
    """KL-tilted grid: β log-spaced from 100 down to 0.01."""
    max_log2_n: int = 16
    """Best-of-n grid: n from 1 to 2^max_log2_n."""
    n_seeds: int = 32
    """Seeds (label samples), vmapped; the controls' bootstrap needs at least 8."""
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
        check_positive("rm_learning_rate", self.rm_learning_rate)
        check_positive_int("n_betas", self.n_betas)
        if self.n_betas < 3:
            raise ValueError(f"n_betas must be at least 3 (a peak needs both ends), got {self.n_betas}")
        if self.n_seeds < 2:
            raise ValueError(f"n_seeds must be at least 2 for an interval over seeds, got {self.n_seeds}")
        for name in ("seed", "reference_seed"):
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), int):
                raise ValueError(f"{name} must be an int, got {getattr(self, name)!r}")

    @classmethod
    def quick(cls) -> Config:
        return cls(n_seeds=16, n_betas=30, rm_steps=1000)

    @property
    def length_penalties(self) -> tuple[float, float]:
        """``(primary, first planned)``."""
        return (self.token.length_penalty, self.first_planned_length_penalty)


class Curves(NamedTuple):
    """One optimiser on one reward model: ``[seeds, grid]`` along the optimiser's grid (KL increasing)."""

    kl: np.ndarray
    """Exact ``KL(π ‖ π_ref)`` per response."""
    gold: np.ndarray
    """Gold gain over π_ref."""
    proxy: np.ndarray
    """Proxy (reward-model) gain over π_ref."""


class GoldSetting(NamedTuple):
    """Everything measured under one gold reward (one length penalty)."""

    bon_misspecified: Curves
    bon_well_specified: Curves
    tilted_misspecified: Curves
    tilted_well_specified: Curves
    correlation_misspecified: np.ndarray
    """``[seeds]``: centred correlation of the reward model with the gold reward under π_ref."""
    correlation_well_specified: np.ndarray


class Output(NamedTuple):
    primary: GoldSetting
    """Gold length penalty ``token.length_penalty``."""
    first_planned: GoldSetting
    """Gold length penalty ``first_planned_length_penalty``, on the same label draws."""
    betas: np.ndarray
    """``[n_betas]``: the KL-tilted grid (decreasing β)."""
    ns: np.ndarray
    """``[n_n]``: the best-of-n grid."""
    kl_bon_formula: np.ndarray
    """``[n_n]``: ``log n − (n−1)/n``."""
    labels: np.ndarray
    """``[seeds]`` int: labels each seed used."""
    reference_mean_length: np.ndarray
    """``[]``: mean response length under π_ref."""


def curves(setting: GoldSetting, method: str, model: str) -> Curves:
    """The :class:`Curves` of ``method`` (:data:`METHODS`) on ``model`` (:data:`MODELS`)."""
    prefix = {"best-of-n": "bon", "KL-tilted": "tilted"}[method]
    return getattr(setting, f"{prefix}_{model.replace('-', '_')}")


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
    """``sweep(keys [seeds], golds [G, P, N]) -> (GoldSetting with leading [G, seeds], labels [seeds])``.

    Each seed draws one set of pairs and uniform numbers; each gold reward labels them, both reward
    models are fitted on those labels, and both are optimised exactly along both grids.
    """
    rm = pref.RewardModelConfig(kind="linear", n_steps=config.rm_steps, learning_rate=config.rm_learning_rate)
    labeller = config.token.labeller()
    log_ref = jnp.log(ref)

    def along(proxy, probs, gold):
        """probs [G, P, N] -> Curves of [G] arrays."""
        kl = jax.vmap(lambda p: tm.response_kl(p, log_ref))(probs)
        gain = lambda r: jnp.mean(jnp.sum(probs * r, -1), -1) - jnp.mean(jnp.sum(ref * r, -1))  # noqa: E731
        return Curves(kl, gain(gold), gain(proxy))

    def one(key, gold):
        key_pairs, key_labels, key_fit = jax.random.split(key, 3)
        pairs = pref.sample_response_pairs(key_pairs, ref, config.n_labels)
        labels, count = pref.label(key_labels, labeller, *pairs.gather(gold), 0)
        per_model, correlations, losses = [], [], []
        for phi in phis:
            params, loss = pref.fit_reward_model(key_fit, rm, *pairs.gather(phi), labels)
            proxy = pref.predict_reward(rm, params, phi).astype(jnp.float64)
            bon = jax.vmap(lambda n, proxy=proxy: tilted.best_of_n_probs(ref, proxy, n))(ns)
            tilt = jax.vmap(lambda b, proxy=proxy: tilted.tilted_response_probs(ref, proxy, b))(betas)
            per_model.append((along(proxy, bon, gold), along(proxy, tilt, gold)))
            correlations.append(pref.centred_correlation(proxy, gold, ref))
            losses.append(loss)
        (bon_m, tilt_m), (bon_w, tilt_w) = per_model
        setting = GoldSetting(bon_m, bon_w, tilt_m, tilt_w, *correlations)
        return setting, count, jnp.stack(losses)

    per_seed = jax.vmap(one, in_axes=(0, None))
    return jax.jit(jax.vmap(per_seed, in_axes=(None, 0)))


def gold_settings(config: Config, length_penalties, clock: Clock | None = None) -> tuple[list[GoldSetting], np.ndarray]:
    """``([GoldSetting per length penalty], labels [seeds])``, every penalty on the same label draws, one call."""
    clock = clock or Clock()
    trees = [build(config, c)[1] for c in length_penalties]
    _, tree, _, ref = build(config)
    phis = features(tree, config.token.vocab_size)
    betas, ns = grids(config)
    keys = jax.random.split(jax.random.key(config.seed), config.n_seeds)
    sweep = make_sweep(config, ref, phis, jnp.asarray(betas), jnp.asarray(ns))
    golds = jnp.stack([t.gold for t in trees])
    setting, count, losses = clock.call(
        f"{len(trees)} gold rewards x {config.n_seeds} seeds x 2 reward models x {len(betas)} β + {len(ns)} n",
        sweep, keys, golds,
    )
    pref.check_finite_losses(losses, "reward model")
    setting = jax.tree.map(np.asarray, setting)
    return [jax.tree.map(lambda x, g=g: x[g], setting) for g in range(len(trees))], np.asarray(count)[0]


def compute(config: Config, clock: Clock | None = None) -> Output:
    """Both gold rewards, every seed, both reward models, both optimisers: one compiled call."""
    (primary, first), labels = gold_settings(config, config.length_penalties, clock)
    _, tree, _, ref = build(config)
    betas, ns = grids(config)
    return Output(
        primary=primary,
        first_planned=first,
        betas=betas,
        ns=ns,
        kl_bon_formula=np.asarray(tilted.best_of_n_kl_bound(ns)),
        labels=labels,
        reference_mean_length=np.asarray(jnp.mean(jnp.sum(ref * tree.lengths, -1))),
    )


# ------------------------------------------------------------------------------------------
# Statistics of the curves
# ------------------------------------------------------------------------------------------


def fit_form(d, y, kind: str):
    """Least-squares ``(α, β)`` of ``y = d(α − β d)`` (``"bon"``) or ``y = d(α − β log d)`` (``"rl"``); ``d > 0``."""
    keep = d > 0
    d, y = d[keep], y[keep]
    second = d**2 if kind == "bon" else d * np.log(d)
    X = np.stack([d, -second], axis=1)
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    return float(coef[0]), float(coef[1])


def form(d, alpha, beta, kind):
    d = np.asarray(d, dtype=np.float64)
    if kind == "bon":
        return d * (alpha - beta * d)
    return np.where(d > 0, d * (alpha - beta * np.log(np.where(d > 0, d, 1.0))), 0.0)


def distance(output: Output, c: Curves, method: str) -> np.ndarray:
    """``d [grid]``: sqrt of the best-of-n formula, or sqrt of the seed-mean exact KL (KL-tilted)."""
    if method == "best-of-n":
        return np.sqrt(output.kl_bon_formula)
    return np.sqrt(np.clip(c.kl.mean(0), 0, None))


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


def misspecified_drop(gold: np.ndarray):
    """Peak index of the seed-mean curve ``gold [seeds, grid]``, per-seed drops peak → last, and their SE."""
    peak = int(np.argmax(gold.mean(0)))
    drops = gold[:, peak] - gold[:, -1]
    return peak, drops, float(drops.std(ddof=1) / np.sqrt(gold.shape[0]))


def peak_ratio(gold: np.ndarray) -> float:
    """Seed-mean gold gain at the largest KL over its peak."""
    mean = gold.mean(0)
    return float(mean[-1] / mean.max())


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
    return main + planned


def checks(config: Config, output: Output) -> list[Criterion]:
    settings = (output.primary, output.first_planned)
    every = [curves(s, m, k) for s in settings for m in METHODS for k in MODELS]
    tilted_kl = [curves(s, "KL-tilted", k).kl for s in settings for k in MODELS]
    bon_kl = [curves(s, "best-of-n", k).kl for s in settings for k in MODELS]
    return [
        Criterion(
            "the proxy reward is non-decreasing in KL (both optimisers, both reward models, every seed)",
            float(min(np.diff(c.proxy, axis=-1).min() for c in every)), None, (-1e-9, math.inf), "check",
            "smallest increment of the proxy gain between neighbouring grid points, over both gold rewards: "
            "E_{π_β}[r̂] rises as β falls and E[max of n] rises with n",
        ),
        Criterion(
            "the KL-tilted policy's KL to π_ref rises as β falls",
            float(min(np.diff(k, axis=-1).min() for k in tilted_kl)), None, (-1e-9, math.inf), "check",
            "smallest increment of the exact KL along the β grid",
        ),
        Criterion(
            "best-of-n's exact KL is at most log n − (n−1)/n",
            float(max(np.max(k - output.kl_bon_formula) for k in bon_kl)), None, (-math.inf, 1e-9), "check",
            "largest exact KL − formula over n, seeds, reward models and gold rewards",
        ),
        Criterion(
            f"every seed used n_labels = {config.n_labels} labels",
            float(np.max(np.abs(output.labels - config.n_labels))), None, (0.0, 0.0), "check",
            "largest |labels − n_labels| over seeds",
        ),
    ]


def measurements(config: Config, output: Output) -> dict:
    out = {"fits": {}, "peaks": {}, "centred_correlation_with_gold": {}}
    for c, tag, setting in zip(config.length_penalties, ("primary", "first planned"), (output.primary,
                                                                                       output.first_planned)):
        key = f"length_penalty={c} ({tag})"
        out["fits"][key], out["peaks"][key] = {}, {}
        for method in METHODS:
            for model in MODELS:
                cv = curves(setting, method, model)
                alpha, beta = fit_form(distance(output, cv, method), cv.gold.mean(0), FORMS[method])
                out["fits"][key][f"{method} / {model}"] = {"alpha": alpha, "beta": beta, "form": FORMS[method]}
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
    out["best_of_n_kl_at_largest_n"] = {
        "formula": float(output.kl_bon_formula[-1]),
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
    """A row per gold reward (primary first), columns best-of-n and KL-tilted: gold (bands) and proxy (dotted)."""
    import matplotlib.pyplot as plt

    from toyrlhf.plotting import PALETTE, apply_style, seed_band

    apply_style()
    settings = (output.primary, output.first_planned)
    fig, axes = plt.subplots(len(settings), 2, figsize=(11, 3.8 * len(settings)), squeeze=False)
    for row, (c, setting) in enumerate(zip(config.length_penalties, settings)):
        for j, method in enumerate(METHODS):
            ax = axes[row, j]
            kind = FORMS[method]
            for m, model in enumerate(MODELS):
                color = PALETTE[m]
                cv = curves(setting, method, model)
                d = distance(output, cv, method)
                seed_band(ax, d, cv.gold, label=f"gold, {model} RM", color=color)
                ax.plot(d, cv.proxy.mean(0), ":", color=color, label=f"proxy, {model} RM")
                if row == 0:
                    alpha, beta = fit_form(d, cv.gold.mean(0), kind)
                    grid = np.linspace(0, d.max(), 200)
                    ax.plot(grid, form(grid, alpha, beta, kind), "--", color=color, lw=1, alpha=0.7)
            ax.axhline(0, color="0.7", lw=0.8)
            label = "log n − (n−1)/n" if method == "best-of-n" else "KL(π_β ‖ π_ref)"
            ax.set_xlabel(f"d = sqrt(KL), KL = {label}")
            form_text = f"; dashed: fitted {'d(α − βd)' if kind == 'bon' else 'd(α − β log d)'}" if row == 0 else ""
            tag = "primary" if row == 0 else "first planned"
            ax.set_title(f"{method}, gold length penalty c = {c} ({tag}){form_text}", fontsize=9)
        axes[row, 0].set_ylabel("gain over π_ref")
    axes[0, 0].legend(fontsize=8, loc="best")
    fig.suptitle(
        f"Over-optimisation on a toy language model ({config.n_labels} labels, {output.labels.shape[0]} seeds): "
        "gold solid with 95% t-bands, proxy dotted",
        fontsize=11,
    )
    fig.tight_layout()
    return fig
