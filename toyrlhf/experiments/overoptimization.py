"""Reward-model over-optimisation, exactly (claim T3's caveat; Gao, Schulman & Hilton 2022).

A reward model is a proxy for the human. Optimising a proxy harder (moving
further from the reference policy, measured by ``d = sqrt(KL(π ‖ π_ref))``)
raises the proxy reward by construction, but the gold reward rises only while
the proxy is right where the policy goes (DESIGN.md pitfall 9: it needs a proxy
that is wrong somewhere).

Setting. A toy language model (:mod:`toyrlhf.envs.token_mdp`): 2 prompts, EOS
plus 3 content tokens, responses of up to 6 tokens (1,093 per prompt, all
enumerated). The gold reward is :class:`~toyrlhf.envs.token_mdp.ConcaveQuality`:
per-token quality minus a concave length penalty around a preferred length of 3.
The reference policy ("SFT model") ends the response with probability 0.3 at
every step, so most reference answers are short and, on them, longer is better.
Labels: ``M`` pairs of reference responses to the same prompt, judged by a
Boltzmann-rational labeller (τ = 1, no random answers). Two Bradley–Terry reward
models are fitted to the *same* labels (:mod:`toyrlhf.algorithms.preferences`):

- **misspecified**: linear in token counts (per prompt). It cannot express a
  preferred length: it learns "good tokens are good, so more of them is better";
- **well-specified**: token counts plus ``L`` and ``L²``: it can represent the gold
  reward exactly.

Each reward model is then optimised two ways, both exactly (no sampling error
besides the labels): the KL-tilted optimum ``π_β ∝ π_ref exp(r̂/β)`` over a grid of
β, and best-of-n over a grid of n (exact distribution; its KL drawn with the
usual formula ``log n − (n−1)/n``, the exact KL reported beside it).
:mod:`toyrlhf.algorithms.tilted` computes both. Seeds resample the labels (vmapped,
one compiled call). Gold and proxy are reported as gains over the reference
policy (both are defined only up to a constant, DESIGN.md pitfall 8).

Fitted functional forms (Gao et al. 2022), least squares on the seed-mean gold gain:
best-of-n ``R(d) = d (α − β d)``, KL-tilted (their RL form) ``R(d) = d (α − β log d)``.

Pre-registered criteria (the issue's text, fixed before the first run; "standard
error" is over seeds; the peak is that of the seed-mean curve):

1. the proxy reward is monotone (non-decreasing, to 1e-9) in KL, for both
   optimisers and both reward models, in every seed;
2. (best-of-n) and 3. (KL-tilted): for the misspecified model, gold peaks at an
   interior KL and falls more than 3 standard errors below its peak at the
   largest KL;
4. (best-of-n) and 5. (KL-tilted): for the well-specified model with many labels,
   gold at the largest KL is at least 0.9 of its peak (gold gain over π_ref, so the
   ratio does not depend on the gold reward's arbitrary constant).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from toyrlhf.algorithms import preferences as pref
from toyrlhf.algorithms import tilted
from toyrlhf.envs import token_mdp as tm
from toyrlhf.experiments.common import Criterion, ExperimentResult, Progress, timed
from toyrlhf.stats import bootstrap_interval, mean_and_interval

NAME = "overoptimization"
CLAIM = (
    "T3 caveat: optimising a learned reward model harder raises the proxy but, where the proxy is "
    "misspecified, the gold reward peaks and then falls (Gao et al. 2022); a well-specified one does not."
)
MODELS = ("misspecified", "well-specified")
METHODS = ("best-of-n", "KL-tilted")


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings of the over-optimisation sweep."""

    vocab_size: int = 4
    """Tokens, EOS included."""
    length: int = 6
    """Maximum response length T."""
    quality: tuple[tuple[float, ...], ...] = ((0.0, 0.6, 0.2, -0.4), (0.0, -0.2, 0.5, 0.3))
    """Per-prompt token quality (row per prompt; EOS's entry unused)."""
    target_length: float = 3.0
    """Preferred length L* of the gold reward."""
    length_penalties: tuple[float, ...] = (1.0, 0.35)
    """Curvature c of the gold reward's length term; criteria use the first (primary) value."""
    ref_eos_prob: float = 0.3
    """Reference policy's probability of ending at every step."""
    ref_logit_scale: float = 0.5
    """Scale of the reference policy's (fixed, random) content-token logits."""
    n_labels: int = 3000
    """M: preference labels per seed, shared by both reward models."""
    label_temperature: float = 1.0
    """Labeller's rationality temperature τ."""
    rm_steps: int = 1500
    """Adam steps of each reward-model fit."""
    rm_learning_rate: float = 0.2
    """Adam step size of each reward-model fit (large enough to converge: the L² weight is about -36)."""
    n_seeds: int = 32
    """Seeds (label samples), vmapped."""
    n_betas: int = 40
    """KL-tilted grid: β log-spaced from 100 down to 0.01."""
    max_log2_n: int = 16
    """Best-of-n grid: n from 1 to 2^max_log2_n."""

    @classmethod
    def quick(cls) -> Config:
        return cls(n_seeds=16, n_betas=30, rm_steps=1000)


def build(config: Config, length_penalty: float):
    """The task, its tree (gold with this length penalty), the reference policy and its response probabilities."""
    P = len(config.quality)
    task = tm.TokenTask(config.vocab_size, config.length, n_prompts=P)
    gold = tm.ConcaveQuality(jnp.asarray(config.quality), config.target_length, length_penalty)
    tree = tm.enumerate_tokens(task, gold)
    S, A = tree.mdp.R.shape
    logits = config.ref_logit_scale * jax.random.normal(jax.random.key(0), (S, A - 1))
    content = (1.0 - config.ref_eos_prob) * jax.nn.softmax(logits, axis=-1)
    ref_policy = jnp.concatenate([jnp.full((S, 1), config.ref_eos_prob), content], axis=-1)
    return task, tree, ref_policy, tm.response_probs(tree, ref_policy)


def features(tree: tm.TokenTree, vocab_size: int):
    """Per-prompt features ``[P, N, F]`` of the misspecified and the well-specified model (columns scaled to ≤ 1)."""
    out = []
    for length_squared in (False, True):
        phi = pref.token_count_features(tree.responses, vocab_size, eos=True, length_squared=length_squared)
        phi = phi / jnp.maximum(phi.max(0), 1.0)
        out.append(pref.per_prompt_features(phi, tree.n_prompts))
    return tuple(out)


def make_sweep(config: Config, ref: jax.Array, phis, betas, ns):
    """``sweep(keys, gold [P, N]) -> dict of arrays with leading [seeds]``: labels, fits and exact optima."""
    rm = pref.RewardModelConfig(kind="linear", n_steps=config.rm_steps, learning_rate=config.rm_learning_rate)
    labeller = pref.Labeller(temperature=config.label_temperature)
    log_ref = jnp.log(ref)

    def curves(proxy, probs, gold):
        """probs [G, P, N] -> KL, gold gain and proxy gain per grid point."""
        kl = jax.vmap(lambda p: tm.response_kl(p, log_ref))(probs)
        gain = lambda r: jnp.mean(jnp.sum(probs * r, -1), -1) - jnp.mean(jnp.sum(ref * r, -1))  # noqa: E731
        return kl, gain(gold), gain(proxy)

    def one_seed(key, gold):
        key_pairs, key_labels, key_fit = jax.random.split(key, 3)
        pairs = pref.sample_response_pairs(key_pairs, ref, config.n_labels)
        labels, count = pref.label(key_labels, labeller, *pairs.gather(gold), 0)
        out = {"labels": count}
        per_model = []
        for phi in phis:
            params, losses = pref.fit_reward_model(key_fit, rm, *pairs.gather(phi), labels)
            proxy = pref.predict_reward(rm, params, phi).astype(jnp.float64)
            bon = jax.vmap(lambda n, proxy=proxy: tilted.best_of_n_probs(ref, proxy, n))(ns)
            tilt = jax.vmap(lambda b, proxy=proxy: tilted.tilted_response_probs(ref, proxy, b))(betas)
            per_model.append(
                {
                    "bon": curves(proxy, bon, gold),
                    "tilted": curves(proxy, tilt, gold),
                    "rm_loss": losses,
                    "correlation": pref.centred_correlation(proxy, gold, ref),
                }
            )
        out["models"] = per_model
        return out

    return jax.jit(jax.vmap(one_seed, in_axes=(0, None)))


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


def collect(out) -> dict:
    """``{method: {"kl" | "gold" | "proxy": [seeds, model, grid]}}`` plus ``"correlation" [seeds, model]``."""
    result = {}
    for method, key in zip(METHODS, ("bon", "tilted")):
        result[method] = {
            name: np.stack([np.asarray(out["models"][m][key][q]) for m in range(2)], 1)
            for q, name in enumerate(("kl", "gold", "proxy"))
        }
    result["correlation"] = np.stack([np.asarray(out["models"][m]["correlation"]) for m in range(2)], 1)
    return result


def distances(result: dict, kl_formula: np.ndarray) -> dict:
    """``{method: d [model, grid]}``: sqrt of the best-of-n formula; sqrt of the seed-mean exact KL (KL-tilted)."""
    return {
        "best-of-n": np.broadcast_to(np.sqrt(kl_formula), (2, len(kl_formula))),
        "KL-tilted": np.sqrt(np.clip(result["KL-tilted"]["kl"].mean(0), 0, None)),
    }


def misspecified_drop(gold: np.ndarray):
    """Peak index of the seed-mean curve ``gold [seeds, grid]``, per-seed drops peak → last, and SE."""
    peak = int(np.argmax(gold.mean(0)))
    drops = gold[:, peak] - gold[:, -1]
    return peak, drops, float(drops.std(ddof=1) / np.sqrt(gold.shape[0]))


def peak_ratio(gold: np.ndarray) -> float:
    """Seed-mean gold gain at the largest KL over its peak."""
    mean = gold.mean(0)
    return float(mean[-1] / mean.max())


def run(quick: bool = True, seeds: int | None = None, progress: Progress | None = None) -> ExperimentResult:
    progress = progress or Progress(enabled=False)
    config = Config.quick() if quick else Config()
    if seeds is not None:
        config = dataclasses.replace(config, n_seeds=seeds)
    if config.n_seeds < 2:
        raise ValueError(f"need at least 2 seeds for standard errors, got {config.n_seeds}")
    trees = [build(config, c)[1] for c in config.length_penalties]
    _, _, ref_policy, ref = build(config, config.length_penalties[0])
    phis = features(trees[0], config.vocab_size)
    betas = jnp.geomspace(100.0, 0.01, config.n_betas)
    ns = jnp.asarray(np.unique(np.round(np.geomspace(1, 2**config.max_log2_n, 4 * config.max_log2_n + 1))))
    keys = jax.random.split(jax.random.key(2022), config.n_seeds)

    progress(f"{NAME}: compiling ({config.n_seeds} seeds x 2 reward models x {len(betas)} β + {len(ns)} n)")
    sweep = make_sweep(config, ref, phis, betas, ns)
    compiled, compile_s = timed(lambda: sweep.lower(keys, trees[0].gold).compile())
    results, run_s = [], 0.0
    for tree in trees:
        out, seconds = timed(compiled, keys, tree.gold)
        run_s += seconds
        for m, model in enumerate(MODELS):
            pref.check_finite_losses(out["models"][m]["rm_loss"], f"{model} reward model")
        results.append((out, collect(out)))
    progress(f"{NAME}: compiled in {compile_s:.1f}s, ran {len(trees)} gold rewards in {run_s:.2f}s")
    primary = results[0][1]
    kl_formula = np.asarray(tilted.best_of_n_kl_bound(ns))
    n = config.n_seeds

    criteria = []
    worst = float(min(np.diff(primary[method]["proxy"], axis=-1).min() for method in METHODS))
    kl_tilted_monotone = bool(np.diff(primary["KL-tilted"]["kl"], axis=-1).min() >= -1e-9)
    criteria.append(
        Criterion(
            "proxy reward non-decreasing in KL (best-of-n and KL-tilted, both reward models, every seed)",
            worst,
            None,
            bool(worst >= -1e-9 and kl_tilted_monotone),
            "smallest increment of the proxy gain between neighbouring KL grid points over all curves "
            "(>= -1e-9 passes); exact given each seed's reward model",
        )
    )
    measurements = {"fits": {}, "peaks": {}, "secondary_settings": {}}
    for method in METHODS:
        gold, kl = primary[method]["gold"], primary[method]["kl"]
        peak, drops, se = misspecified_drop(gold[:, 0])
        drop_mean, lo, hi = mean_and_interval(drops)
        interior = 0 < peak < gold.shape[-1] - 1
        criteria.append(
            Criterion(
                f"{method}, misspecified RM: gold peaks at an interior KL and falls > 3 SE below its peak "
                "at the largest KL",
                float(drop_mean),
                (float(lo), float(hi)),
                bool(interior and drop_mean > 3 * se),
                f"gold length penalty c = {config.length_penalties[0]}; peak at grid index {peak} of "
                f"{gold.shape[-1]} (KL {kl[:, 0, peak].mean():.3g}); drop = {drop_mean:.4g}, SE = {se:.3g} "
                f"over {n} seeds ({drop_mean / max(se, 1e-300):.1f} SE)",
            )
        )
        measurements["peaks"][method] = {
            "misspecified_peak_index": peak,
            "misspecified_peak_kl": float(kl[:, 0, peak].mean()),
            "misspecified_drop_in_se": float(drop_mean / max(se, 1e-300)),
        }
    for method in METHODS:
        value, lo, hi = bootstrap_interval(primary[method]["gold"][:, 1], peak_ratio)
        criteria.append(
            Criterion(
                f"{method}, well-specified RM ({config.n_labels} labels): gold at the largest KL >= 0.9 of its peak",
                value,
                (lo, hi),
                bool(value >= 0.9),
                f"gold length penalty c = {config.length_penalties[0]}; ratio of seed-mean gold gains over π_ref "
                "(largest KL / peak); bootstrap over seeds",
            )
        )
    # The other gold rewards: the same numbers, reported (not criteria).
    for c, (_, r) in zip(config.length_penalties[1:], results[1:]):
        entry = {}
        for method in METHODS:
            peak, drops, se = misspecified_drop(r[method]["gold"][:, 0])
            entry[method] = {
                "misspecified_peak_index": peak,
                "misspecified_drop_in_se": float(drops.mean() / max(se, 1e-300)),
                "well_specified_ratio": peak_ratio(r[method]["gold"][:, 1]),
            }
        measurements["secondary_settings"][f"length_penalty={c}"] = entry

    # Fitted functional forms (seed-mean gold gain against d), primary setting.
    d = distances(primary, kl_formula)
    for method, kind in zip(METHODS, ("bon", "rl")):
        for m, model in enumerate(MODELS):
            alpha, beta = fit_form(d[method][m], primary[method]["gold"][:, m].mean(0), kind)
            measurements["fits"][f"{method} / {model}"] = {"alpha": alpha, "beta": beta, "form": kind}
    corr = primary["correlation"]
    measurements["centred_correlation_with_gold"] = {
        model: {"mean": float(corr[:, m].mean()), "sd": float(corr[:, m].std(ddof=1))} for m, model in enumerate(MODELS)
    }
    measurements["best_of_n_kl_at_largest_n"] = {
        "formula": float(kl_formula[-1]),
        **{f"exact, {model} RM": float(primary["best-of-n"]["kl"][:, m, -1].mean()) for m, model in enumerate(MODELS)},
    }
    measurements["resources_per_seed"] = {
        "preference_labels": int(np.asarray(results[0][0]["labels"])[0]),
        "gold_queries": 0,
        "env_steps": 0,
        "known_dynamics": True,
    }
    measurements["reference_mean_length"] = float(jnp.mean(jnp.sum(ref * trees[0].lengths, -1)))

    arrays = {
        "betas": np.asarray(betas),
        "ns": np.asarray(ns),
        "kl_bon_formula": kl_formula,
        "length_penalties": np.asarray(config.length_penalties),
        **{
            f"{q}_{tag}": np.stack([r[method][q] for _, r in results])
            for method, tag in zip(METHODS, ("bon", "tilted"))
            for q in ("kl", "gold", "proxy")
        },
        "centred_correlation": np.stack([r["correlation"] for _, r in results]),
    }
    figure = plot(config, [r for _, r in results], kl_formula, measurements["fits"])
    return ExperimentResult(
        name=NAME,
        claim=CLAIM,
        config={**dataclasses.asdict(config), "quick": quick, "models": list(MODELS), "methods": list(METHODS)},
        arrays=arrays,
        criteria=criteria,
        figure=figure,
        timings={"compile_s": compile_s, "run_s": run_s},
        measurements=measurements,
    )


def plot(config, results, kl_formula, fits):
    """A row per gold reward (primary first), columns best-of-n and KL-tilted: gold (bands) and proxy (dotted)."""
    import matplotlib.pyplot as plt

    from toyrlhf.plotting import PALETTE, apply_style, seed_band

    apply_style()
    rows = len(results)
    fig, axes = plt.subplots(rows, 2, figsize=(11, 3.8 * rows), squeeze=False)
    for row, (c, r) in enumerate(zip(config.length_penalties, results)):
        d = distances(r, kl_formula)
        for j, (method, kind) in enumerate(zip(METHODS, ("bon", "rl"))):
            ax = axes[row, j]
            for m, model in enumerate(MODELS):
                color = PALETTE[m]
                dm = d[method][m]
                seed_band(ax, dm, r[method]["gold"][:, m], label=f"gold, {model} RM", color=color)
                ax.plot(dm, r[method]["proxy"][:, m].mean(0), ":", color=color, label=f"proxy, {model} RM")
                if row == 0:
                    fit = fits[f"{method} / {model}"]
                    grid = np.linspace(0, dm.max(), 200)
                    ax.plot(grid, form(grid, fit["alpha"], fit["beta"], kind), "--", color=color, lw=1, alpha=0.7)
            ax.axhline(0, color="0.7", lw=0.8)
            label = "log n − (n−1)/n" if method == "best-of-n" else "KL(π_β ‖ π_ref)"
            ax.set_xlabel(f"d = sqrt(KL), KL = {label}")
            form_text = f"; dashed: fitted {'d(α − βd)' if kind == 'bon' else 'd(α − β log d)'}" if row == 0 else ""
            tag = "primary" if row == 0 else "reported only"
            ax.set_title(f"{method}, gold length penalty c = {c} ({tag}){form_text}", fontsize=9)
        axes[row, 0].set_ylabel("gain over π_ref")
    axes[0, 0].legend(fontsize=8, loc="best")
    fig.suptitle(
        f"Over-optimisation on a toy language model ({config.n_labels} labels, {config.n_seeds} seeds): "
        "gold solid with seed bands, proxy dotted",
        fontsize=11,
    )
    fig.tight_layout()
    return fig
