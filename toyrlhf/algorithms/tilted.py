"""Exact KL-regularised optima and best-of-n sampling on an enumerable response space.

**The KL-tilted optimum.** RLHF maximises a reward ``r`` while staying close to a
reference policy (the SFT model)::

    max_π  E_{x, y~π(·|x)}[ r(x, y) ] − β KL(π(·|x) ‖ π_ref(·|x)).

Its unique maximiser is the reference re-weighted by the exponentiated reward
(Korbak et al. 2022; Rafailov et al. 2023, eq. 4)::

    π_β(y | x) = π_ref(y | x) exp(r(x, y) / β) / Z_β(x),
    KL(π_β ‖ π_ref) = E_{π_β}[r] / β − log Z_β(x).

β → ∞ gives π_ref (KL 0); β → 0 gives argmax r. On a token tree the same policy
is a token-by-token soft (entropy-regularised) optimum: with per-step reward
``r'(s, a) = r(s, a) + β log π_ref(a|s)`` and temperature β, ``E[Σ r'] + β H =
E[r] − β KL``, so :func:`toyrlhf.tabular.solve` gives it exactly
(:func:`tilted_policy`), and :func:`tilted_response_probs` gives it directly.

**Best-of-n.** Draw ``n`` responses from ``π_ref`` and keep the one a proxy
reward ranks highest. Sorting the responses of a prompt by proxy reward (ties
broken by index: the later one wins), with ``F`` the reference CDF in that order,

    Pr_bon(y_k) = F(y_k)^n − F(y_{k−1})^n          (exact, for any n, even non-integer).

Its KL to the reference is at most ``log n − (n−1)/n`` (Stiennon et al. 2020;
Beirami et al. 2024 show it is an upper bound, exact for continuous rewards);
:func:`best_of_n_kl_bound` is that formula, the response-level KL of
:func:`best_of_n_probs` the exact value. Best-of-n costs ``n`` samples and ``n``
reward-model queries per prompt and no training.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from toyrlhf import tabular
from toyrlhf.envs.token_mdp import TokenTree, response_kl, with_response_reward


def tilted_response_probs(ref_probs: jax.Array, reward: jax.Array, beta) -> jax.Array:
    """``π_β(y|x) ∝ π_ref(y|x) exp(r(x, y)/β)``, ``[P, N]`` from ``ref_probs`` and ``reward`` ``[P, N]``."""
    if ref_probs.shape != reward.shape:
        raise ValueError(f"ref_probs and reward must share a shape [P, N], got {ref_probs.shape} and {reward.shape}")
    log_ref = jnp.where(ref_probs > 0, jnp.log(jnp.where(ref_probs > 0, ref_probs, 1.0)), -jnp.inf)
    return jax.nn.softmax(log_ref + reward / beta, axis=-1)


def tilted_kl(ref_probs: jax.Array, reward: jax.Array, beta) -> jax.Array:
    """Prompt-averaged ``KL(π_β ‖ π_ref)`` of :func:`tilted_response_probs` (exact)."""
    tilted = tilted_response_probs(ref_probs, reward, beta)
    return response_kl(tilted, jnp.log(ref_probs))


def tilted_policy(tree: TokenTree, ref_policy: jax.Array, reward: jax.Array, beta) -> jax.Array:
    """The token-level policy ``[S, A]`` of the KL-tilted optimum, by soft backward induction.

    ``ref_policy [S, A]`` must be positive; ``reward [P, N]`` is paid at the end of each response.
    Its response distribution equals :func:`tilted_response_probs` (tested).
    """
    mdp = with_response_reward(tree, reward)
    # Shaped reward r + β log π_ref everywhere, the terminal state included: there its soft
    # value is β log Σ_a π_ref(a) = 0, so it adds nothing. (Not marked terminal: it now has
    # a nonzero per-action reward, which TabularMDP forbids on terminal states.)
    shaped = tabular.TabularMDP.from_successors(
        mdp.next_states, mdp.next_probs, mdp.R + beta * jnp.log(ref_policy), mdp.init, mdp.horizon, mdp.discount
    )
    # Every state of the tree has one depth and everything after the end is worth 0,
    # so the first step's policy is right at every state.
    return tabular.solve(shaped, temperature=beta).policy[0]


def best_of_n_probs(ref_probs: jax.Array, proxy: jax.Array, n) -> jax.Array:
    """Exact response distribution of best-of-``n`` under ``proxy``, ``[P, N]`` (``n`` may be traced)."""
    if ref_probs.shape != proxy.shape:
        raise ValueError(f"ref_probs and proxy must share a shape [P, N], got {ref_probs.shape} and {proxy.shape}")
    # Sort by (proxy, index): a stable argsort keeps the index order among ties.
    order = jnp.argsort(proxy, axis=-1, stable=True)
    sorted_ref = jnp.take_along_axis(ref_probs, order, axis=-1)
    cdf = jnp.clip(jnp.cumsum(sorted_ref, axis=-1), 0.0, 1.0)
    previous = jnp.concatenate([jnp.zeros_like(cdf[..., :1]), cdf[..., :-1]], axis=-1)
    sorted_bon = cdf**n - previous**n
    inverse = jnp.argsort(order, axis=-1)
    return jnp.take_along_axis(sorted_bon, inverse, axis=-1)


def best_of_n_kl_bound(n) -> jax.Array:
    """``log n − (n − 1)/n``: the usual KL of best-of-n (an upper bound on the exact KL)."""
    n = jnp.asarray(n, dtype=jnp.float64)
    return jnp.log(n) - (n - 1.0) / n
