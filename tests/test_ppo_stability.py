"""ppo-stability pieces: Fisher's exact test by hand, the collapse definition, the learned token reward."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toyrlhf  # noqa: F401  (x64)
from toyrlhf.envs import token_mdp
from toyrlhf.experiments import ppo_stability as ps


def test_fisher_exact_by_hand():
    # 0/10 vs 5/10: p = Pr(X = 0), X ~ Hypergeom(20, 5, 10) = C(10,0) C(10,5) / C(20,5) = 252 / 15504.
    assert ps.fisher_exact_less(0, 10, 5, 10) == pytest.approx(252 / 15504, rel=1e-12)
    # 1/4 vs 3/4: p = [C(4,0)C(4,4) + C(4,1)C(4,3)] / C(8,4) = (1 + 16) / 70.
    assert ps.fisher_exact_less(1, 4, 3, 4) == pytest.approx(17 / 70, rel=1e-12)
    assert ps.fisher_exact_less(0, 40, 0, 40) == 1.0  # no events: no evidence
    assert ps.fisher_exact_less(3, 5, 0, 5) == 1.0  # group 1 worse: p = 1
    # The p-values over every a sum with the point probabilities to a proper distribution.
    cdf = [ps.fisher_exact_less(a, 6, 7 - a, 9) for a in range(7)]  # 7 events among 6 + 9 trials
    pmf = np.diff([0.0, *cdf])
    assert cdf[-1] == pytest.approx(1.0) and pmf.min() >= 0
    assert pmf[2] == pytest.approx(math.comb(6, 2) * math.comb(9, 5) / math.comb(15, 7))
    with pytest.raises(ValueError, match="events cannot exceed"):
        ps.fisher_exact_less(5, 4, 0, 4)


def test_collapse_definition():
    curves = np.array(
        [
            [10, 50, 95, 60, 40],  # reached 95 >= 90, then 40 < 47.5: collapse
            [10, 50, 95, 60, 48],  # 48 >= 47.5: no collapse
            [10, 50, 80, 10, 10],  # never reached 90: cannot collapse
            [10, 30, 20, 95, 90],  # dropped (20 < 25) before reaching: not a collapse
        ],
        dtype=float,
    )
    collapsed, reached = ps.collapses(curves, optimum=100.0)
    np.testing.assert_array_equal(collapsed, [True, False, False, False])
    np.testing.assert_array_equal(reached, [True, True, False, True])


def test_learned_reward_lookup_matches_the_table():
    env = token_mdp.TokenEnv(ps.TOKEN_TASK)
    gold = token_mdp.TargetPattern(jnp.asarray(ps.TOKEN_TARGETS))
    tree = token_mdp.enumerate_tokens(ps.TOKEN_TASK, gold)
    learned, quality = ps.fit_token_reward(jax.random.key(0), tree, 1000)
    reward_fn = ps.make_token_reward_fn(env)
    # Walk every response of prompt 1 through the env; the reward on its last step must be its table entry.
    P, N = tree.gold.shape

    def walk(prompt, n):
        state = token_mdp.TokenState(prompt, jnp.zeros(ps.TOKEN_TASK.length, jnp.int32), jnp.zeros((), jnp.int32))
        total = 0.0
        for t in range(ps.TOKEN_TASK.length):
            action = tree.path_actions[n, t]
            step = env.step(jax.random.key(0), state, action, gold)
            r = reward_fn(env.observe(state), action, step.obs, learned)
            total = total + jnp.where(tree.path_mask[n, t], r, 0.0)
            state = step.state
        return total

    totals = jax.jit(jax.vmap(lambda n: walk(jnp.int32(1), n)))(jnp.arange(N))
    np.testing.assert_allclose(totals, learned.table[1], rtol=1e-6)
    # 1,000 labels, τ = 0.1, a well-specified linear model: it ranks like the gold reward and its argmax is optimal
    assert quality["centred_correlation"] > 0.9
    assert quality["gold_of_learned_argmax"] == pytest.approx(1.0)
