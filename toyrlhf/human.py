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

In Jupyter the person can click instead of typing: :class:`ButtonLabeller` shows one pair
at a time under three buttons (first better / second better / cannot tell). The answers a
class gives are kept: :func:`save_labels` writes one labeller's answers to a JSON file
(atomically, no pickle) and :func:`load_labels` pools any number of such files back into
one :class:`~toyrlhf.algorithms.rlhf.LabelledPairs`, ready for the reward model.

Where the answers come from (``answers``):

- ``None``: the person, through ``input()`` (works in a terminal and in Jupyter);
- a sequence of ``M`` answers (``1``, ``2``, ``"1"``, ``"2"`` or ``"="``): scripted;
- a callable ``answers(i) -> answer`` for pair ``i``: e.g. a synthetic labeller
  standing in for the person (:func:`synthetic_answers` gives its answers).

The last two never prompt anyone: tests and notebooks with ``INTERACTIVE = False``
use them. A scripted answer that is not accepted is a bug in the caller, not a slip
of the finger: it raises ValueError instead of re-asking.
"""

from __future__ import annotations

import builtins
import datetime
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from toyrlhf.algorithms import preferences as pref
from toyrlhf.envs.gridworld import GridWorld
from toyrlhf.envs.token_mdp import EOS
from toyrlhf.files import atomic_write

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


def _token_pairs(prompt, first, second, vocabulary) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``prompt [M]``, ``first`` and ``second`` ``[M, T]`` as arrays, checked against each other and the vocabulary."""
    prompt, first, second = np.asarray(prompt), np.asarray(first), np.asarray(second)
    if first.ndim != 2 or second.shape != first.shape:
        raise ValueError(f"first and second must both have shape [M, T], got {first.shape} and {second.shape}")
    if prompt.shape != first.shape[:1] or not np.issubdtype(prompt.dtype, np.integer):
        raise ValueError(f"prompt must be ints of shape [M] = {first.shape[:1]}, got {prompt.dtype} {prompt.shape}")
    _check_vocabulary(vocabulary, np.concatenate([first, second]))
    return prompt, first, second


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
    prompt, first, second = _token_pairs(prompt, first, second, vocabulary)
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


# ------------------------------------------------------------------------------------------
# Clicking instead of typing (Jupyter)
# ------------------------------------------------------------------------------------------

BUTTONS = (("first is better", "1"), ("second is better", "2"), ("cannot tell", "="))
"""The buttons of :class:`ButtonLabeller`: their captions and the answer each one gives."""


class ButtonLabeller:
    """Ask about ``n_pairs`` pairs with clickable buttons, one pair at a time (Jupyter, ipywidgets).

    ``show(i)`` displays pair ``i`` (it prints or draws; its output goes to the widget's
    output area). Display ``labeller.widget``, click through the pairs, then read
    :meth:`result` in a later cell: clicks arrive after the cell that showed the widget has
    finished, so the labels cannot be the return value of a call. :meth:`answer` is what a
    click calls; a script or a test can call it too.
    """

    def __init__(self, n_pairs: int, show: Callable[[int], None]):
        if isinstance(n_pairs, bool) or not isinstance(n_pairs, (int, np.integer)) or n_pairs < 1:
            raise ValueError(f"n_pairs must be a positive int, got {n_pairs!r}")
        if not callable(show):
            raise TypeError(f"show must be a callable show(i), got {type(show).__name__}")
        try:
            import ipywidgets as widgets
        except ImportError as error:  # pragma: no cover - ipywidgets comes with the notebooks extra
            raise ImportError(
                'ButtonLabeller needs ipywidgets: pip install "toyrlhf[notebooks]"; or answer with input() instead'
            ) from error
        self.n_pairs = int(n_pairs)
        self.labels = np.full(self.n_pairs, np.nan, dtype=np.float32)
        self._show = show
        self._current = 0
        self._output = widgets.Output()
        self._progress = widgets.Label()
        self._buttons = [widgets.Button(description=caption) for caption, _ in BUTTONS]
        for button, (_, answer) in zip(self._buttons, BUTTONS):
            button.on_click(lambda _button, answer=answer: self.answer(answer))
        self.widget = widgets.VBox([self._progress, self._output, widgets.HBox(self._buttons)])
        self._refresh()

    @property
    def done(self) -> bool:
        """Whether every pair has an answer."""
        return self._current >= self.n_pairs

    def answer(self, answer) -> None:
        """Record ``answer`` (``1``, ``2`` or ``"="``) for the pair on screen and show the next one."""
        value = parse_answer(answer)
        if value is None:
            raise ValueError(f"answer must be 1, 2 or '=', got {answer!r}")
        if self.done:
            raise ValueError(f"all {self.n_pairs} pairs are answered already")
        self.labels[self._current] = value
        self._current += 1
        self._refresh()

    def _refresh(self) -> None:
        self._output.clear_output(wait=True)
        if self.done:
            self._progress.value = f"All {self.n_pairs} pairs answered: thank you. Run the next cell."
            for button in self._buttons:
                button.disabled = True
            return
        self._progress.value = f"Pair {self._current + 1} of {self.n_pairs}"
        with self._output:
            self._show(self._current)

    def result(self, count=0) -> tuple[jax.Array, jax.Array]:
        """``(prefer_first [n_pairs] float32, count + n_pairs)``, as :func:`ask_pairs` returns; all pairs answered."""
        if not self.done:
            raise ValueError(
                f"only {self._current} of {self.n_pairs} pairs are answered: click through the rest first"
            )
        return jnp.asarray(self.labels), count + self.n_pairs


def token_pair_buttons(
    prompt, first, second, vocabulary: Sequence[str], prompt_texts: Sequence[str] | None = None, eos: bool = True
) -> ButtonLabeller:
    """A :class:`ButtonLabeller` for token response pairs (arguments as in :func:`label_token_pairs`)."""
    prompt, first, second = _token_pairs(prompt, first, second, vocabulary)

    def show_pair(i):
        x = prompt_texts[prompt[i]] if prompt_texts is not None else f"prompt {prompt[i]}"
        print(x)
        print(f"  1: {format_tokens(first[i], vocabulary, eos)}")
        print(f"  2: {format_tokens(second[i], vocabulary, eos)}")

    return ButtonLabeller(first.shape[0], show_pair)


def segment_pair_buttons(grid: GridWorld, pairs: pref.SegmentPairs) -> ButtonLabeller:
    """A :class:`ButtonLabeller` for gridworld segment pairs, each pair drawn side by side."""
    _check_segment_pairs(grid, pairs)

    def show_pair(i):
        print("circle = start, arrow = last move")
        _display(draw_segment_pair(grid, pairs, i))

    return ButtonLabeller(np.asarray(pairs.states_first).shape[0], show_pair)


# ------------------------------------------------------------------------------------------
# A class's labels: saved per person, pooled on loading
# ------------------------------------------------------------------------------------------

LABELS_FORMAT = "toyrlhf.human-labels"
LABELS_VERSION = 1


def save_labels(path, pairs: pref.ResponsePairs, prefer_first, labeller: str = "anonymous") -> Path:
    """Write one labeller's answers to ``path`` (JSON, written atomically); returns the path.

    ``pairs`` holds the prompts and the indices of the two responses in the token tree (as
    :func:`~toyrlhf.algorithms.preferences.sample_response_pairs` gives them), ``prefer_first``
    the answers (1, 0 or 0.5 for "cannot tell"), ``labeller`` a name or pseudonym. The file
    names the tree's responses only by index, so pool files made on the same ``TokenSetting``.
    """
    if not isinstance(pairs, pref.ResponsePairs):
        raise TypeError(f"pairs must be ResponsePairs (from sample_response_pairs), got {type(pairs).__name__}")
    if not isinstance(labeller, str) or not labeller:
        raise TypeError(f"labeller must be a non-empty string, got {labeller!r}")
    prompt, first, second = (np.asarray(x) for x in (pairs.prompt, pairs.first, pairs.second))
    prefer_first = np.asarray(prefer_first, dtype=np.float64)
    if prefer_first.shape != prompt.shape or first.shape != prompt.shape or second.shape != prompt.shape:
        raise ValueError(
            f"pairs and prefer_first must all have shape [M]; got prompt {prompt.shape}, first {first.shape}, "
            f"second {second.shape}, prefer_first {prefer_first.shape}"
        )
    if not np.all(np.isin(prefer_first, (0.0, 0.5, 1.0))):
        raise ValueError("prefer_first must hold answers 1 (first better), 0 (second better) or 0.5 (cannot tell)")
    record = {
        "format": LABELS_FORMAT,
        "version": LABELS_VERSION,
        "labeller": labeller,
        "saved": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "prompt": prompt.astype(int).tolist(),
        "first": first.astype(int).tolist(),
        "second": second.astype(int).tolist(),
        "prefer_first": prefer_first.tolist(),
    }

    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=1)

    return atomic_write(path, write)


def load_labels(*paths):
    """Pool the label files at ``paths`` (files or folders of ``*.json``) into one ``LabelledPairs``.

    Returns ``(labelled, labellers)``: :class:`~toyrlhf.algorithms.rlhf.LabelledPairs` with every
    file's pairs one after the other and ``count`` their number, and the labeller's name of
    each pair (``[M]``, for looking at agreement between people).
    """
    from toyrlhf.algorithms.rlhf import LabelledPairs

    files = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            files.extend(sorted(path.glob("*.json")))
        elif path.is_file():
            files.append(path)
        else:
            raise ValueError(f"paths must be label files or folders of them; {str(path)!r} does not exist")
    if not files:
        raise ValueError(f"no label files found in {[str(p) for p in paths]}")
    columns = {k: [] for k in ("prompt", "first", "second", "prefer_first")}
    labellers = []
    for file in files:
        record = json.loads(file.read_text(encoding="utf-8"))
        if not isinstance(record, dict) or record.get("format") != LABELS_FORMAT:
            raise ValueError(f"{file} is not a toyrlhf label file (save_labels writes them)")
        if record.get("version") != LABELS_VERSION:
            version = record.get("version")
            raise ValueError(f"{file} has label-file version {version}; this toyrlhf reads {LABELS_VERSION}")
        lengths = {len(record[k]) for k in columns}
        if len(lengths) != 1:
            raise ValueError(f"{file}: prompt, first, second and prefer_first differ in length")
        for k in columns:
            columns[k].extend(record[k])
        labellers.extend([record["labeller"]] * lengths.pop())
    pairs = pref.ResponsePairs(*(jnp.asarray(columns[k], dtype=jnp.int32) for k in ("prompt", "first", "second")))
    prefer_first = jnp.asarray(columns["prefer_first"], dtype=jnp.float32)
    return LabelledPairs(pairs, prefer_first, jnp.asarray(len(labellers))), labellers
