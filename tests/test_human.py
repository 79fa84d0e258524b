"""The human labeller: scripted and typed answers give the synthetic labeller's label format."""

import builtins

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import pytest

from toyrlhf import human
from toyrlhf.algorithms import preferences as pref
from toyrlhf.envs import token_mdp as tm
from toyrlhf.envs.gridworld import make_gridworld

VOCAB = ("<end>", "good", "fine", "bad")


@pytest.fixture(scope="module")
def tree():
    task = tm.TokenTask(vocab_size=4, length=3, n_prompts=2)
    gold = tm.ConcaveQuality(jnp.array([[0.0, 1.0, 0.3, -0.6], [0.0, -0.5, 0.8, 0.2]]), 2.0, 0.3)
    return tm.enumerate_tokens(task, gold)


@pytest.fixture(scope="module")
def sample(tree):
    """400 pairs of uniformly drawn responses (jitted once: eager JAX ops are slow to dispatch)."""
    probs = jnp.full(tree.gold.shape, 1.0 / tree.n_responses)
    return jax.jit(pref.sample_response_pairs, static_argnums=2)(jax.random.key(0), probs, 400)


def token_pairs(tree, sample, n):
    pairs = pref.ResponsePairs(*(x[:n] for x in sample))
    return pairs, np.asarray(tree.responses)[pairs.first], np.asarray(tree.responses)[pairs.second]


def test_scripted_answers_give_labels_and_count(tree, sample):
    pairs, first, second = token_pairs(tree, sample, 4)
    labels, count = human.label_token_pairs(pairs.prompt, first, second, VOCAB, answers=[1, "2", " 1 ", "="], count=7)
    assert labels.dtype == jnp.float32 and labels.shape == (4,)
    np.testing.assert_array_equal(np.asarray(labels), [1.0, 0.0, 1.0, 0.5])
    assert int(count) == 11


def test_synthetic_answers_follow_the_boltzmann_labeller(tree, sample):
    """Answer 1 with probability σ((g¹ − g²)/τ), checked by frequency (not against pref.label's own code),
    and the answering function turns "1"/"2" into labels 1/0 in order."""
    n = 20_000
    g1, g2 = jnp.full(n, 0.4), jnp.zeros(n)  # one pair asked n times: Pr(answer 1) = σ(0.4 / 0.3)
    answers = np.asarray(human.synthetic_answers(jax.random.key(5), pref.Labeller(temperature=0.3), g1, g2))
    assert set(answers.tolist()) == {1, 2}
    p = 1.0 / (1.0 + np.exp(-0.4 / 0.3))
    assert abs(np.mean(answers == 1) - p) < 4 * np.sqrt(p * (1 - p) / n)
    # a careful labeller (τ → 0) answers by the gold ordering
    pairs, first, second = token_pairs(tree, sample, 50)
    h1, h2 = np.asarray(tree.gold[pairs.prompt, pairs.first]), np.asarray(tree.gold[pairs.prompt, pairs.second])
    sharp = human.synthetic_answers(jax.random.key(6), pref.Labeller(temperature=1e-6), h1, h2)
    decided = np.abs(h1 - h2) > 1e-3
    np.testing.assert_array_equal(np.asarray(sharp)[decided], np.where(h1 > h2, 1, 2)[decided])
    labels, count = human.label_token_pairs(pairs.prompt, first, second, VOCAB, answers=lambda i: sharp[i])
    np.testing.assert_array_equal(np.asarray(labels), np.where(np.asarray(sharp) == 1, 1.0, 0.0))
    assert int(count) == 50


def test_typed_answers_are_asked_again_until_accepted(tree, sample, monkeypatch, capsys):
    pairs, first, second = token_pairs(tree, sample, 2)
    typed = iter(["3", "first", "", "2", "1"])
    prompts = []

    def fake_input(question):
        prompts.append(question)
        return next(typed)

    monkeypatch.setattr(builtins, "input", fake_input)
    labels, count = human.label_token_pairs(pairs.prompt, first, second, VOCAB, prompt_texts=("Q: a?", "Q: b?"))
    np.testing.assert_array_equal(np.asarray(labels), [0.0, 1.0])
    assert int(count) == 2  # re-asks are not labels
    assert len(prompts) == 5
    out = capsys.readouterr().out
    assert out.count("Please answer 1") == 3 and "'first'" in out
    # the pair was shown, in words, with its prompt text
    assert "Pair 1 of 2" in out and f"1: {human.format_tokens(first[0], VOCAB)}" in out
    assert ("Q: a?" in out) or ("Q: b?" in out)


def test_format_tokens_stops_at_eos():
    assert human.format_tokens(jnp.array([1, 3, 0, 2]), VOCAB) == "good bad"
    assert human.format_tokens(jnp.array([0, 0, 0]), VOCAB) == "(empty)"
    assert human.format_tokens(jnp.array([0, 1]), VOCAB, eos=False) == "<end> good"


def test_bad_inputs_name_the_argument(tree, sample):
    pairs, first, second = token_pairs(tree, sample, 3)
    with pytest.raises(ValueError, match="answers gave 3"):
        human.label_token_pairs(pairs.prompt, first, second, VOCAB, answers=[1, 2, 3])
    with pytest.raises(ValueError, match="answers must hold one answer per pair"):
        human.label_token_pairs(pairs.prompt, first, second, VOCAB, answers=[1, 2])
    with pytest.raises(TypeError, match="answers must be None"):
        human.label_token_pairs(pairs.prompt, first, second, VOCAB, answers="121")
    with pytest.raises(ValueError, match="answers gave True"):
        human.label_token_pairs(pairs.prompt, first, second, VOCAB, answers=[True, 1, 2])
    with pytest.raises(TypeError, match="vocabulary"):
        human.label_token_pairs(pairs.prompt, first, second, "abcd", answers=[1, 1, 1])
    with pytest.raises(ValueError, match="vocabulary has 3 words"):
        human.label_token_pairs(pairs.prompt, first, second, VOCAB[:3], answers=[1, 1, 1])
    with pytest.raises(ValueError, match="first and second"):
        human.label_token_pairs(pairs.prompt, first, second[:2], VOCAB, answers=[1, 1, 1])
    with pytest.raises(ValueError, match="prompt must be"):
        human.label_token_pairs(pairs.prompt[:2], first, second, VOCAB, answers=[1, 1, 1])
    with pytest.raises(ValueError, match="n_pairs"):
        human.ask_pairs(0, None, answers=[])


def test_scripted_labels_feed_a_reward_model_that_learns(tree, sample):
    """Labels from the scripted path fit a Bradley–Terry model that orders held-out pairs like the gold reward."""
    pairs, first, second = token_pairs(tree, sample, 300)
    gold = np.asarray(tree.gold)
    g1, g2 = gold[pairs.prompt, pairs.first], gold[pairs.prompt, pairs.second]
    answers = human.synthetic_answers(jax.random.key(1), pref.Labeller(temperature=0.2), g1, g2)
    labels, count = human.label_token_pairs(pairs.prompt, first, second, VOCAB, answers=answers)
    assert int(count) == 300

    @jax.jit
    def fit_and_score(labels):
        phi = pref.per_prompt_features(pref.token_count_features(tree.responses, 4, length_squared=True), 2)
        config = pref.RewardModelConfig(kind="linear", n_steps=400, learning_rate=0.1)
        params, losses = pref.fit_reward_model(
            jax.random.key(2), config, phi[pairs.prompt, pairs.first], phi[pairs.prompt, pairs.second], labels
        )
        reward = pref.predict_reward(config, params, phi)
        held = pref.ResponsePairs(*(x[300:] for x in sample))  # 100 pairs not used for fitting
        h1, h2 = tree.gold[held.prompt, held.first], tree.gold[held.prompt, held.second]
        truth = jnp.where(h1 > h2, 1.0, jnp.where(h1 < h2, 0.0, 0.5))
        return losses, pref.pairwise_accuracy(reward[held.prompt, held.first], reward[held.prompt, held.second], truth)

    losses, accuracy = fit_and_score(labels)
    assert losses[-1] < losses[0]
    assert float(accuracy) > 0.85, float(accuracy)


def test_gridworld_pairs_are_drawn_and_labelled(monkeypatch):
    grid = make_gridworld("S..\n.L.\n..G", slip=0.0, step_cost=0.05, horizon=6)
    S, A = grid.mdp.n_states, grid.mdp.n_actions
    sample_segments = jax.jit(pref.sample_segment_pairs, static_argnums=(3, 4))
    pairs = sample_segments(jax.random.key(4), grid.mdp, jnp.full((S, A), 1.0 / A), 3, 4)
    assert pairs.states_first.shape == pairs.actions_second.shape == (3, 4)
    # the stored steps are the ones counted in the features
    counts = np.zeros((3, S * A))
    np.add.at(counts, (np.arange(3)[:, None], np.asarray(pairs.states_first) * A + np.asarray(pairs.actions_first)), 1)
    np.testing.assert_array_equal(counts, np.asarray(pairs.first))

    fig = human.draw_segment_pair(grid, pairs, 1)
    left, right = fig.axes
    path = left.lines[0].get_xydata()
    np.testing.assert_array_equal(path[:, ::-1], grid.coords[np.asarray(pairs.states_first[1])])
    assert len(right.lines) >= 1
    plt.close(fig)

    shown = []
    monkeypatch.setattr(human, "_display", lambda fig: (shown.append(fig), plt.close(fig)))
    labels, count = human.label_segment_pairs(grid, pairs, answers=["2", "1", "="], show=True)
    np.testing.assert_array_equal(np.asarray(labels), [0.0, 1.0, 0.5])
    assert int(count) == 3 and len(shown) == 3
    with pytest.raises(TypeError, match="pairs must be SegmentPairs"):
        human.label_segment_pairs(grid, tuple(pairs), answers=[1, 1, 1])
    with pytest.raises(ValueError, match="no states"):
        human.label_segment_pairs(grid, pairs._replace(states_first=None), answers=[1, 1, 1])


def test_buttons_record_clicks_in_order_and_refuse_early_results(tree, sample):
    pairs, first, second = token_pairs(tree, sample, 3)
    labeller = human.token_pair_buttons(pairs.prompt, first, second, VOCAB)
    assert "Pair 1 of 3" in labeller._progress.value
    with pytest.raises(ValueError, match="only 1 of 3"):
        labeller._buttons[1].click()  # "second is better" on pair 1
        labeller.result()
    labeller._buttons[2].click()  # "cannot tell" on pair 2
    labeller.answer("1")  # what a click on "first is better" calls
    assert labeller.done and all(b.disabled for b in labeller._buttons)
    labels, count = labeller.result(count=4)
    np.testing.assert_array_equal(np.asarray(labels), [0.0, 0.5, 1.0])
    assert int(count) == 7
    with pytest.raises(ValueError, match="answered already"):
        labeller.answer("2")
    with pytest.raises(ValueError, match="answer must be"):
        human.token_pair_buttons(pairs.prompt, first, second, VOCAB).answer("left")
    with pytest.raises(ValueError, match="n_pairs"):
        human.ButtonLabeller(0, print)
    with pytest.raises(TypeError, match="show"):
        human.ButtonLabeller(2, "not callable")


def test_a_class_saves_labels_per_person_and_pools_them_on_loading(tree, sample, tmp_path):
    pairs, _, _ = token_pairs(tree, sample, 5)
    other = pref.ResponsePairs(*(x[5:7] for x in sample))
    human.save_labels(tmp_path / "class" / "ada.json", pairs, [1, 0, 0.5, 1, 1], labeller="ada")
    human.save_labels(tmp_path / "class" / "bo.json", other, jnp.array([0.0, 1.0]), labeller="bo")
    (tmp_path / "class" / "notes.txt").write_text("not a label file")
    labelled, names = human.load_labels(tmp_path / "class")
    assert names == ["ada"] * 5 + ["bo"] * 2 and int(labelled.count) == 7
    np.testing.assert_array_equal(np.asarray(labelled.prefer_first), [1, 0, 0.5, 1, 1, 0, 1])
    for field in ("prompt", "first", "second"):
        np.testing.assert_array_equal(
            np.asarray(getattr(labelled.pairs, field)), np.asarray(getattr(sample, field))[:7]
        )
    # one file, named directly, gives the same as its folder would
    alone, _ = human.load_labels(tmp_path / "class" / "bo.json")
    np.testing.assert_array_equal(np.asarray(alone.pairs.first), np.asarray(other.first))


def test_label_files_reject_bad_input(tree, sample, tmp_path):
    pairs, _, _ = token_pairs(tree, sample, 2)
    with pytest.raises(ValueError, match="prefer_first must hold"):
        human.save_labels(tmp_path / "a.json", pairs, [1, 0.3])
    with pytest.raises(ValueError, match="shape"):
        human.save_labels(tmp_path / "a.json", pairs, [1, 0, 1])
    with pytest.raises(TypeError, match="ResponsePairs"):
        human.save_labels(tmp_path / "a.json", tuple(pairs), [1, 0])
    with pytest.raises(TypeError, match="labeller"):
        human.save_labels(tmp_path / "a.json", pairs, [1, 0], labeller="")
    (tmp_path / "x.json").write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="not a toyrlhf label file"):
        human.load_labels(tmp_path / "x.json")
    with pytest.raises(ValueError, match="does not exist"):
        human.load_labels(tmp_path / "missing.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no label files"):
        human.load_labels(tmp_path / "empty")


def test_segment_buttons_draw_each_pair_and_give_the_typed_format():
    grid = make_gridworld("S..\n.LG", slip=0.0, horizon=6)
    uniform = jnp.full((grid.mdp.n_states, 4), 0.25)
    pairs = pref.sample_segment_pairs(jax.random.key(2), grid.mdp, uniform, 2, segment_length=3)
    labeller = human.segment_pair_buttons(grid, pairs)
    labeller.answer(2)
    labeller.answer("=")
    labels, count = labeller.result()
    np.testing.assert_array_equal(np.asarray(labels), [0.0, 0.5])
    assert int(count) == 2
    plt.close("all")
