"""A person as the labeller: show two items side by side, ask which is better, count the answers.

The synthetic labeller of :mod:`toyrlhf.algorithms.preferences` stands in for a
human. Here the human can be the real thing. Each pair is shown — two token
responses printed with a vocabulary, or two gridworld segments drawn side by side
(:func:`toyrlhf.plotting.draw_trajectory`) — and the person answers:

==========  =============================================  ================
answer      meaning                                        ``prefer_first``
==========  =============================================  ================
``1``       the first (left) item is better                1.0
``2``       the second (right) item is better              0.0
``=``       cannot tell them apart                         0.5
==========  =============================================  ================

Anything else is answered with a message saying what is accepted, and the same
pair is asked again. The result has the format of
:func:`toyrlhf.algorithms.preferences.label`: ``(prefer_first [M] float32,
count + M)``, so it feeds :func:`~toyrlhf.algorithms.preferences.fit_reward_model`
unchanged (an ``=`` is a soft label of 0.5, which the Bradley–Terry loss accepts).
Labels are the expensive resource of claim T3: ``count`` is threaded through
every call, as with the synthetic labeller.

Where the answers come from (``answers``):

- ``None``: the person, through ``input()`` (works in a terminal and in Jupyter);
- a sequence of ``M`` answers (``1``, ``2``, ``"1"``, ``"2"`` or ``"="``): scripted;
- a callable ``answers(i) -> answer`` for pair ``i``: e.g. a synthetic labeller
  standing in for the person (:func:`synthetic_answers` gives its answers).

The last two never prompt anyone: tests and notebooks under ``TOYRLHF_QUICK=1``
use them. A scripted answer that is not accepted is a bug in the caller, not a slip
of the finger: it raises ValueError instead of re-asking.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from toyrlhf.algorithms import preferences as pref
from toyrlhf.envs.gridworld import GridWorld
from toyrlhf.envs.token_mdp import EOS

ANSWERS = {"1": 1.0, "2": 0.0, "=": 0.5}
"""Accepted answers and the label ``prefer_first`` each one gives."""

QUESTION = "Which is better? Type 1 or 2 (= if you cannot tell): "
RETRY = "Please answer 1 (first is better), 2 (second is better) or = (cannot tell); you typed {!r}."


def parse_answer(answer) -> float | None:
    """The label of one answer (``1``, ``2``, ``"1"``, ``"2"``, ``"="``, surrounding spaces ignored), else None."""
    if isinstance(answer, bool):
        return None
    if isinstance(answer, (int, np.integer)):
        answer = str(int(answer))
    if not isinstance(answer, str):
        return None
    return ANSWERS.get(answer.strip())


def ask_pairs(
    n_pairs: int, show: Callable[[int], None] | None, answers=None, count=0, input_fn: Callable | None = None
) -> tuple[jax.Array, jax.Array]:
    """Ask about ``n_pairs`` pairs in order: ``(prefer_first [n_pairs] float32, count + n_pairs)``.

    ``show(i)`` displays pair ``i`` (None: show nothing). ``answers`` is None (ask the
    person with ``input_fn``, default the built-in ``input``, re-asking until the answer
    is accepted), a sequence of ``n_pairs`` answers, or a callable ``answers(i)``.
    """
    if isinstance(n_pairs, bool) or not isinstance(n_pairs, (int, np.integer)) or n_pairs < 1:
        raise ValueError(f"n_pairs must be a positive int, got {n_pairs!r}")
    scripted = _scripted(answers, n_pairs)
    labels = np.zeros(n_pairs, dtype=np.float32)
    for i in range(n_pairs):
        if show is not None:
            show(i)
        if scripted is not None:
            given = scripted(i)
            value = parse_answer(given)
            if value is None:
                raise ValueError(f"answers gave {given!r} for pair {i}; accepted answers are 1, 2, '1', '2' and '='")
        else:
            value = _ask_until_accepted(input_fn or builtins.input)
        labels[i] = value
    return jnp.asarray(labels), count + n_pairs


def _scripted(answers, n_pairs: int) -> Callable | None:
    """``answers`` as a function of the pair index, or None when the person is to be asked."""
    if answers is None:
        return None
    if callable(answers):
        return answers
    if isinstance(answers, str) or not isinstance(answers, (Sequence, np.ndarray, jax.Array)):
        raise TypeError(
            f"answers must be None (ask the person), a sequence of answers or a callable, got {type(answers).__name__}"
        )
    if len(answers) != n_pairs:
        raise ValueError(f"answers must hold one answer per pair ({n_pairs}), got {len(answers)}")
    answers = [a.item() if isinstance(a, (np.ndarray, jax.Array)) else a for a in answers]
    return answers.__getitem__


def _ask_until_accepted(input_fn: Callable) -> float:
    while True:
        typed = input_fn(QUESTION)
        value = parse_answer(typed)
        if value is not None:
            return value
        print(RETRY.format(typed))


def synthetic_answers(
    key: jax.Array, labeller: pref.Labeller, gold_first: jax.Array, gold_second: jax.Array
) -> list[int]:
    """The synthetic labeller's answers (``1`` or ``2`` per pair), to stand in for the person.

    Draws the same labels as :func:`toyrlhf.algorithms.preferences.label` with the same key.
    """
    prefer_first, _ = jax.jit(pref.label)(key, labeller, jnp.asarray(gold_first), jnp.asarray(gold_second), 0)
    return [1 if float(z) == 1.0 else 2 for z in np.asarray(prefer_first)]


# ------------------------------------------------------------------------------------------
# Token responses
# ------------------------------------------------------------------------------------------


def format_tokens(tokens, vocabulary: Sequence[str], eos: bool = True) -> str:
    """One response ``tokens [T]`` as words of ``vocabulary`` (stopping at EOS when ``eos``); "(empty)" if none."""
    tokens = np.asarray(tokens)
    ended = np.flatnonzero(tokens == EOS) if eos else []
    length = int(ended[0]) if len(ended) else tokens.shape[-1]  # response_length, in numpy: no JAX dispatch
    words = [vocabulary[int(t)] for t in tokens[:length]]
    return " ".join(words) if words else "(empty)"


def _check_vocabulary(vocabulary, tokens: np.ndarray) -> None:
    if isinstance(vocabulary, str) or not isinstance(vocabulary, Sequence):
        raise TypeError(f"vocabulary must be a sequence of strings, one per token, got {type(vocabulary).__name__}")
    if not all(isinstance(w, str) for w in vocabulary):
        raise TypeError("vocabulary must hold strings, one per token")
    if tokens.size and (tokens.min() < 0 or tokens.max() >= len(vocabulary)):
        raise ValueError(
            f"vocabulary has {len(vocabulary)} words, but the tokens lie in [{tokens.min()}, {tokens.max()}]"
        )


def label_token_pairs(
    prompt,
    first,
    second,
    vocabulary: Sequence[str],
    answers=None,
    count=0,
    prompt_texts: Sequence[str] | None = None,
    eos: bool = True,
    show: bool | None = None,
    input_fn: Callable | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Ask which of two responses to the same prompt is better, for ``M`` pairs.

    ``prompt [M]`` int, ``first`` and ``second`` ``[M, T]`` int tokens (EOS-padded,
    e.g. ``tree.responses[pairs.first]``), ``vocabulary`` a word per token (index 0
    is EOS when ``eos``), ``prompt_texts`` a line per prompt. ``show`` (default: only
    when asking the person) prints each pair. Returns ``(prefer_first [M], count + M)``
    as :func:`toyrlhf.algorithms.preferences.label` does.
    """
    prompt, first, second = np.asarray(prompt), np.asarray(first), np.asarray(second)
    if first.ndim != 2 or second.shape != first.shape:
        raise ValueError(f"first and second must both have shape [M, T], got {first.shape} and {second.shape}")
    if prompt.shape != first.shape[:1] or not np.issubdtype(prompt.dtype, np.integer):
        raise ValueError(f"prompt must be ints of shape [M] = {first.shape[:1]}, got {prompt.dtype} {prompt.shape}")
    _check_vocabulary(vocabulary, np.concatenate([first, second]))
    if prompt_texts is not None and (prompt.min() < 0 or prompt.max() >= len(prompt_texts)):
        raise ValueError(
            f"prompt_texts has {len(prompt_texts)} entries, but prompts lie in [{prompt.min()}, {prompt.max()}]"
        )
    M = first.shape[0]

    def show_pair(i):
        x = prompt_texts[prompt[i]] if prompt_texts is not None else f"prompt {prompt[i]}"
        print(f"\nPair {i + 1} of {M}. {x}")
        print(f"  1: {format_tokens(first[i], vocabulary, eos)}")
        print(f"  2: {format_tokens(second[i], vocabulary, eos)}")

    show = answers is None if show is None else show
    return ask_pairs(M, show_pair if show else None, answers, count, input_fn)


# ------------------------------------------------------------------------------------------
# Gridworld segments
# ------------------------------------------------------------------------------------------


def draw_segment_pair(grid: GridWorld, pairs: pref.SegmentPairs, i: int, titles=("1", "2")):
    """A figure with segment 1 of pair ``i`` on the left and segment 2 on the right; returns it."""
    import matplotlib.pyplot as plt

    from toyrlhf.plotting import PALETTE, draw_trajectory

    _check_segment_pairs(grid, pairs)
    width = 2.0 + 0.5 * grid.width
    fig, axes = plt.subplots(1, 2, figsize=(2 * width, 0.5 * grid.height + 1.0))
    segments = ((pairs.states_first, pairs.actions_first), (pairs.states_second, pairs.actions_second))
    for ax, (states, actions), title, color in zip(axes, segments, titles, (PALETTE[0], PALETTE[3])):
        draw_trajectory(ax, grid, np.asarray(states[i]), np.asarray(actions[i]), color=color)
        ax.set_title(title)
    fig.tight_layout()
    return fig


def _check_segment_pairs(grid, pairs) -> None:
    if not isinstance(grid, GridWorld):
        raise TypeError(f"grid must be a GridWorld (from make_gridworld), got {type(grid).__name__}")
    if not isinstance(pairs, pref.SegmentPairs):
        raise TypeError(f"pairs must be SegmentPairs (from sample_segment_pairs), got {type(pairs).__name__}")
    if pairs.states_first is None or pairs.actions_first is None:
        raise ValueError("pairs has no states and actions to draw: sample them with sample_segment_pairs")
    if np.asarray(pairs.first).shape[-1] != grid.n_states * 4:
        raise ValueError(f"pairs' features are not of this grid's {grid.n_states} states x 4 actions")


def _display(fig) -> None:
    """Show a figure now: inline in Jupyter, in a window elsewhere."""
    import matplotlib.pyplot as plt

    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython comes with Jupyter
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display(fig)
    else:
        plt.show(block=False)
    plt.close(fig)


def label_segment_pairs(
    grid: GridWorld,
    pairs: pref.SegmentPairs,
    answers=None,
    count=0,
    show: bool | None = None,
    input_fn: Callable | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Ask which of two gridworld segments is better, drawing each pair side by side.

    ``pairs`` from :func:`~toyrlhf.algorithms.preferences.sample_segment_pairs` on
    ``grid.mdp`` (its states and actions are drawn; its features ``pairs.first``,
    ``pairs.second`` go to the reward model). ``show`` (default: only when asking the
    person) draws each pair. Returns ``(prefer_first [M], count + M)``.
    """
    _check_segment_pairs(grid, pairs)
    M = np.asarray(pairs.states_first).shape[0]

    def show_pair(i):
        print(f"\nPair {i + 1} of {M}: circle = start, arrow = last move")
        _display(draw_segment_pair(grid, pairs, i))

    show = answers is None if show is None else show
    return ask_pairs(M, show_pair if show else None, answers, count, input_fn)
