"""KL-tilted optimum, best-of-n and Direct Preference Optimization against exact values."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toyrlhf import tabular
from toyrlhf.algorithms import dpo, tilted
from toyrlhf.algorithms import preferences as pref
from toyrlhf.envs import token_mdp as tm
from toyrlhf.nets import Table

TASK = tm.TokenTask(vocab_size=3, length=3, n_prompts=2)
GOLD = tm.ConcaveQuality(jnp.array([[0.0, 1.0, -0.5], [0.0, -0.3, 0.8]]), target_length=2.0, length_penalty=0.4)


@pytest.fixture(scope="module")
def setting():
    tree = tm.enumerate_tokens(TASK, GOLD)
    S, A = tree.mdp.R.shape
    ref_policy = jax.nn.softmax(0.8 * jax.random.normal(jax.random.key(0), (S, A)))
    return tree, ref_policy, tm.response_probs(tree, ref_policy)


def test_tilted_policy_is_the_response_level_tilt(setting):
    tree, ref_policy, ref = setting
    for beta in (0.3, 1.0, 5.0):
        policy = tilted.tilted_policy(tree, ref_policy, tree.gold, beta)
        want = tilted.tilted_response_probs(ref, tree.gold, beta)
        np.testing.assert_allclose(tm.response_probs(tree, policy), want, atol=1e-12)
        # KL = E[r]/β − log Z, and the trajectory KL of the tabular core agrees
        log_z = jax.scipy.special.logsumexp(jnp.log(ref) + tree.gold / beta, axis=-1)
        kl_formula = jnp.mean(jnp.sum(want * tree.gold, -1) / beta - log_z)
        assert float(tilted.tilted_kl(ref, tree.gold, beta)) == pytest.approx(float(kl_formula), rel=1e-10)
        assert float(tabular.kl_divergence(tree.mdp, policy, ref_policy)) == pytest.approx(float(kl_formula), rel=1e-9)


def test_tilted_policy_maximises_the_regularised_objective(setting):
    tree, ref_policy, ref = setting
    beta = 0.5

    def objective(policy):
        return tabular.evaluate(tree.mdp, policy) - beta * tabular.kl_divergence(tree.mdp, policy, ref_policy)

    best = objective(tilted.tilted_policy(tree, ref_policy, tree.gold, beta))
    S, A = tree.mdp.R.shape
    optimum_logits = jnp.log(tilted.tilted_policy(tree, ref_policy, tree.gold, beta))
    noise = 0.3 * jax.random.normal(jax.random.key(1), (50, S, A))
    others = jax.vmap(lambda n: objective(jax.nn.softmax(optimum_logits + n.at[-1].set(0.0))))(noise)
    assert float(others.max()) < float(best)


def test_best_of_n_by_hand_and_monte_carlo():
    ref = jnp.array([[0.5, 0.3, 0.2]])
    proxy = jnp.array([[0.0, 1.0, 2.0]])
    np.testing.assert_allclose(tilted.best_of_n_probs(ref, proxy, 1), ref, atol=1e-15)
    np.testing.assert_allclose(tilted.best_of_n_probs(ref, proxy, 2), [[0.25, 0.39, 0.36]], atol=1e-12)
    # ties: the later index wins: order (item 2, item 0, item 1), CDF .2, .7, 1 -> .04, .49 - .04, 1 - .49
    np.testing.assert_allclose(tilted.best_of_n_probs(ref, jnp.array([[1.0, 1.0, 0.0]]), 2), [[0.45, 0.51, 0.04]])
    # Monte Carlo: draw n = 4 from ref, keep the argmax of proxy (5 standard errors)
    n, draws = 4, 40_000
    samples = jax.random.categorical(jax.random.key(2), jnp.log(ref[0]), shape=(draws, n))
    freq = np.bincount(np.asarray(samples.max(-1)), minlength=3) / draws  # proxy is increasing in index
    exact = np.asarray(tilted.best_of_n_probs(ref, proxy, n)[0])
    assert np.all(np.abs(freq - exact) < 5 * np.sqrt(exact * (1 - exact) / draws))


def test_best_of_n_kl_below_the_formula_and_close_for_distinct_rewards():
    N = 4000
    ref = jnp.full((1, N), 1.0 / N)
    proxy = jax.random.normal(jax.random.key(3), (1, N))
    for n in (2, 8, 64):
        exact = float(tm.response_kl(tilted.best_of_n_probs(ref, proxy, n), jnp.log(ref)))
        bound = float(tilted.best_of_n_kl_bound(n))
        assert exact <= bound + 1e-12
        assert exact > bound - 0.02  # nearly continuous: close to the formula
    # A reference with heavy atoms: strictly below the formula (hand value 1.068 vs 1.204 at n = 8).
    atoms = jnp.array([[0.5, 0.3, 0.2]])
    exact = float(tm.response_kl(tilted.best_of_n_probs(atoms, jnp.array([[0.0, 1.0, 2.0]]), 8), jnp.log(atoms)))
    p = np.array([0.5**8, 0.8**8 - 0.5**8, 1 - 0.8**8])
    assert exact == pytest.approx(float(np.sum(p * np.log(p / np.array([0.5, 0.3, 0.2])))))
    assert exact < float(tilted.best_of_n_kl_bound(8)) - 0.1


def test_dpo_optimum_equals_the_tilted_optimum(setting):
    """Population DPO (soft Bradley–Terry labels on every pair, weighted by π_ref × π_ref) → π_ref exp(g/(τβ))."""
    tree, ref_policy, ref = setting
    tau, beta = 0.8, 0.5
    P, N = tree.gold.shape
    x, i, j = (a.ravel() for a in jnp.meshgrid(jnp.arange(P), jnp.arange(N), jnp.arange(N), indexing="ij"))
    z = pref.preference_probability(tree.gold[x, i], tree.gold[x, j], pref.Labeller(tau, 0.0))
    weights = ref[x, i] * ref[x, j]
    train = dpo.make_train(dpo.DPOConfig(beta=beta, n_steps=3000, learning_rate=0.05), dpo.tree_log_prob_fn(TASK))
    logits, losses = jax.jit(train)(jnp.log(ref_policy), x, tree.responses[i], tree.responses[j], z, weights)
    assert np.all(np.isfinite(np.asarray(losses))) and losses[-1] < losses[0]
    got = tm.response_probs(tree, jax.nn.softmax(logits))
    want = tilted.tilted_response_probs(ref, tree.gold / tau, beta)
    np.testing.assert_allclose(got, want, atol=2e-3)
    # and the tabular log-prob function agrees with the tree's exact response log-probabilities
    lp = dpo.tree_log_prob_fn(TASK)(jnp.log(ref_policy), jnp.zeros(N, jnp.int32), tree.responses)
    np.testing.assert_allclose(lp, jnp.log(ref[0]), atol=1e-12)


def test_network_log_prob_matches_exact_tree():
    env = tm.TokenEnv(TASK)
    tree = tm.enumerate_tokens(TASK, GOLD)
    W = jax.random.normal(jax.random.key(4), (*env.observation_shape, 3), jnp.float32)
    exact = tm.response_log_probs(tree, jax.nn.log_softmax(tm.tree_observations(env, tree).astype(jnp.float64) @ W))
    N = tree.n_responses
    fn = dpo.network_log_prob_fn(env, Table())
    got = fn(W, jnp.ones(N, jnp.int32), tree.responses)
    np.testing.assert_allclose(got, exact[1], atol=1e-4)


def test_dpo_loss_is_bradley_terry_on_implied_rewards():
    loss = dpo.dpo_loss(
        jnp.array([-1.0]), jnp.array([-2.0]), jnp.array([-1.5]), jnp.array([-1.5]), jnp.array([1.0]), 2.0
    )
    assert float(loss) == pytest.approx(np.log1p(np.exp(-2.0)))
    with pytest.raises(ValueError, match="beta"):
        dpo.DPOConfig(beta=0.0)


def test_ipo_optimum_is_the_tilt_by_the_preference_against_the_reference(setting):
    """Population IPO (soft labels on every pair, pairs from μ = π_ref) → π ∝ π_ref exp(p(y ≻ μ)/τ) (Azar et al.)."""
    tree, ref_policy, ref = setting
    tau_label, tau = 0.8, 0.5
    P, N = tree.gold.shape
    x, i, j = (a.ravel() for a in jnp.meshgrid(jnp.arange(P), jnp.arange(N), jnp.arange(N), indexing="ij"))
    z = pref.preference_probability(tree.gold[x, i], tree.gold[x, j], pref.Labeller(tau_label, 0.0))
    weights = ref[x, i] * ref[x, j]
    config = dpo.DPOConfig(beta=tau, n_steps=3000, learning_rate=0.05, loss="ipo")
    logits, losses = jax.jit(dpo.make_train(config, dpo.tree_log_prob_fn(TASK)))(
        jnp.log(ref_policy), x, tree.responses[i], tree.responses[j], z, weights
    )
    assert np.all(np.isfinite(np.asarray(losses))) and losses[-1] < losses[0]
    got = tm.response_probs(tree, jax.nn.softmax(logits))
    p_matrix = z.reshape(P, N, N)
    p_vs_ref = jnp.einsum("xij,xj->xi", p_matrix, ref)  # p(y ≻ μ)
    want = tilted.tilted_response_probs(ref, p_vs_ref, tau)
    np.testing.assert_allclose(got, want, atol=2e-3)
    # and not DPO's optimum (the tilt by g/τ_label at β = τ): the two objectives differ
    dpo_optimum = tilted.tilted_response_probs(ref, tree.gold / tau_label, tau)
    assert float(jnp.max(jnp.abs(got - dpo_optimum))) > 0.05


def test_azar_three_action_example():
    """Azar et al.'s example: uniform reference, a ≻ b, b ≻ c, a ≻ c once each. IPO: the least-squares closed
    form for every τ; DPO: π(a) → 1 whatever τ (its loss has no finite minimiser)."""
    task = tm.TokenTask(vocab_size=3, length=1, n_prompts=1, eos=False)
    prompt = jnp.zeros(3, jnp.int32)
    first, second, z = jnp.array([[0], [1], [0]]), jnp.array([[1], [2], [2]]), jnp.ones(3)
    for tau in (0.1, 1.0):
        # closed form against a brute-force least squares on the log-ratios f (f(c) = 0)
        A = np.array([[1.0, -1.0], [0.0, 1.0], [1.0, 0.0]])  # rows: f(a)−f(b), f(b)−f(c), f(a)−f(c)
        f, *_ = np.linalg.lstsq(A, np.full(3, 1 / (2 * tau)), rcond=None)
        want = np.exp([f[0], f[1], 0.0]) / np.exp([f[0], f[1], 0.0]).sum()
        np.testing.assert_allclose(dpo.ipo_three_action_optimum(tau), want, atol=1e-12)
        ipo = dpo.make_train(dpo.DPOConfig(beta=tau, n_steps=3000, learning_rate=0.05, loss="ipo"),
                             dpo.tree_log_prob_fn(task))
        logits, _ = jax.jit(ipo)(jnp.zeros((2, 3)), prompt, first, second, z)
        np.testing.assert_allclose(jax.nn.softmax(logits[0]), want, atol=1e-3)
        pa = []
        for steps in (100, 2000):
            train = dpo.make_train(dpo.DPOConfig(beta=tau, n_steps=steps, learning_rate=0.05),
                                   dpo.tree_log_prob_fn(task))
            logits, _ = jax.jit(train)(jnp.zeros((2, 3)), prompt, first, second, z)
            pa.append(float(jax.nn.softmax(logits[0])[0]))
        assert pa[1] > pa[0] and pa[1] > 0.99  # DPO: deterministic on the undefeated action, for every τ
    assert want[0] < 0.5  # IPO at τ = 1 keeps b and c: π(a) = 0.448


def test_ipo_loss_by_hand_and_bad_loss_name():
    # h = (−1 − (−1.5)) − (−2 − (−1.5)) = 1; z = 1, τ = 0.25: target 2 → (1 − 2)² = 1; z = 0: (1 + 2)² = 9
    args = (jnp.array([-1.0, -1.0]), jnp.array([-2.0, -2.0]), jnp.array([-1.5, -1.5]), jnp.array([-1.5, -1.5]))
    assert float(dpo.ipo_loss(*args, jnp.array([1.0, 0.0]), 0.25)) == pytest.approx(5.0)
    assert float(dpo.ipo_loss(*args, jnp.array([1.0, 0.0]), 0.25, jnp.array([1.0, 0.0]))) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="loss"):
        dpo.DPOConfig(loss="kto")


def test_pair_trainer_is_dpo_and_ipo():
    task = tm.TokenTask(vocab_size=3, length=1, n_prompts=1, eos=False)
    prompt = jnp.zeros(4, jnp.int32)
    first, second = jnp.array([[0], [1], [0], [2]]), jnp.array([[1], [2], [2], [0]])
    z, ref = jnp.array([1.0, 1.0, 0.0, 1.0]), jnp.log(jnp.array([[0.5, 0.3, 0.2], [1 / 3, 1 / 3, 1 / 3]]))
    config = dpo.DPOConfig(beta=0.5, n_steps=200, learning_rate=0.05)
    params, losses = jax.jit(dpo.make_train_pair(config, dpo.tree_log_prob_fn(task)))(ref, prompt, first, second, z)
    for i, loss in enumerate(("dpo", "ipo")):
        alone = dpo.make_train(dataclasses.replace(config, loss=loss), dpo.tree_log_prob_fn(task))
        want, want_losses = jax.jit(alone)(ref, prompt, first, second, z)
        np.testing.assert_allclose(params[i], want, atol=1e-6)
        np.testing.assert_allclose(losses[i], want_losses, atol=1e-6)
