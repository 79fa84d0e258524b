"""A toy language model as an MDP: append a token, get a hidden "gold" score at the end.

The setting of the paper's claim T1: the dynamics of text are known and free to
roll out, the reward (a human's judgement) is not. Here

- a **prompt** ``x`` is drawn uniformly from ``n_prompts`` prompts (the first state);
- an **action** is a token from a vocabulary of ``V`` tokens; the transition appends
  it to the response (deterministic, known: one successor per (s, a));
- the response ends after ``T`` tokens, or earlier when the end-of-sequence token
  :data:`EOS` (token 0) is chosen, if ``eos=True``;
- the **gold reward** ``r*(x, y)`` of the whole response ``y`` is paid on the step
  that ends it (sparse, terminal reward). It plays the human and is hidden from
  every learner except through labels or counted queries.

A response is stored as ``tokens [T]`` with :data:`EOS` padding after its end, so
``(1, 2, 0, 0)`` is the two-token response "1 2". Its length ``L`` is the number
of tokens before the first :data:`EOS` (``T`` if none). With ``eos=True`` the
content tokens are ``1 .. V-1`` (``C = V - 1`` of them); with ``eos=False`` all
``V`` tokens are content, every response has length ``T`` and token 0 is an
ordinary token.

Gold reward families (each a NamedTuple of arrays, so a pytree that jit and vmap
accept, called as ``gold(prompt, tokens)``):

- :class:`TargetPattern`: the fraction of positions that match a per-prompt
  target response (an imitation-style score with one best answer per prompt);
- :class:`RegularLanguage`: a deterministic finite automaton reads the response;
  the score pays for every token read before it enters a dead state and a bonus
  if it ends in an accepting state (format constraints: "no token twice in a row");
- :class:`ConcaveQuality`: per-token quality plus a concave length term,
  ``Σ_{i<L} q[x, y_i] - c (L - L*)²``. Good tokens make longer answers look
  better, up to the preferred length ``L*``: a proxy that is linear in token
  counts learns "longer is better" where the data are short, and optimising it
  produces verbose answers (the over-optimisation experiment).

Exact enumeration. When ``n_prompts · C^T`` is small, :func:`enumerate_tokens`
builds the prefix tree as a sparse :class:`~toyrlhf.tabular.TabularMDP` (states =
(prompt, unfinished prefix), one shared absorbing terminal state, ``K = 1``) and
lists every complete response, so gold values, sequence probabilities, KLs and
optimal policies are exact. Every prefix has a unique depth, so stationary
``[S, A]`` policies lose nothing.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from toyrlhf.envs.functional import Step
from toyrlhf.tabular import TabularMDP

EOS = 0
"""The end-of-sequence token (also the padding after a response ends), when ``eos=True``."""


def response_length(tokens: jax.Array, eos: bool = True) -> jax.Array:
    """Number of tokens before the first :data:`EOS` in ``tokens [..., T]`` (``T`` if none, or if ``eos=False``)."""
    T = tokens.shape[-1]
    if not eos:
        return jnp.full(tokens.shape[:-1], T, dtype=jnp.int32)
    is_end = tokens == EOS
    return jnp.where(is_end.any(-1), jnp.argmax(is_end, axis=-1), T).astype(jnp.int32)


# ------------------------------------------------------------------------------------------
# Gold reward families: NamedTuples of arrays, called as gold(prompt, tokens, eos) -> scalar
# ------------------------------------------------------------------------------------------


class TargetPattern(NamedTuple):
    """Fraction of the ``T`` positions where the response matches the prompt's target.

    ``r*(x, y) = (1/T) Σ_t 1[y_t = target[x, t]]`` (padding positions compare as EOS).
    """

    targets: jax.Array
    """``[P, T]`` int: the best response for each prompt (EOS-padded if shorter)."""

    def __call__(self, prompt, tokens, eos: bool = True):
        return jnp.mean((tokens == self.targets[prompt]).astype(jnp.float64))


class RegularLanguage(NamedTuple):
    """A finite automaton scores the response: progress before a dead state, bonus on acceptance.

    The automaton starts in state 0 and reads the ``L`` content tokens:
    ``q_{i+1} = transitions[q_i, y_i]``. With ``n`` = the number of tokens read before the
    automaton first enters a dead state,
    ``r*(x, y) = progress_reward · n / T + accept_reward · 1[accepting[q_L]]``.
    (The prompt is ignored: one language for every prompt.)
    """

    transitions: jax.Array
    """``[Q, V]`` int: next automaton state for each (state, token)."""
    accepting: jax.Array
    """``[Q]`` bool: accepting automaton states."""
    dead: jax.Array
    """``[Q]`` bool: dead (rejecting, absorbing) states."""
    progress_reward: float = 1.0
    """Reward for reading all ``T`` tokens without entering a dead state."""
    accept_reward: float = 1.0
    """Bonus when the response ends in an accepting state."""

    def __call__(self, prompt, tokens, eos: bool = True):
        length = response_length(tokens, eos)

        def read(carry, inputs):
            q, n_alive = carry
            i, token = inputs
            active = i < length
            q_next = jnp.where(active, self.transitions[q, token], q)
            n_alive = n_alive + (active & ~self.dead[q_next]).astype(jnp.int32)
            return (q_next, n_alive), None

        T = tokens.shape[-1]
        (q, n_alive), _ = jax.lax.scan(read, (jnp.int32(0), jnp.int32(0)), (jnp.arange(T), tokens))
        return self.progress_reward * n_alive / T + self.accept_reward * self.accepting[q]


def no_repeat_language(vocab_size: int, eos: bool = True, min_length: int = 1) -> RegularLanguage:
    """Automaton for "no content token twice in a row, at least ``min_length`` tokens".

    States: 0 = start, ``1 .. V-1`` = "last token was v" (token 0 is a content token too
    when ``eos=False``: its state is then ``V``), and one dead state. Acceptance needs
    ``min_length`` tokens, counted up to ``min_length`` in the state (so the automaton
    has ``(V + 1) · (min_length + 1) + 1`` states).
    """
    if vocab_size < 2:
        raise ValueError(f"vocab_size must be at least 2, got {vocab_size}")
    if min_length < 0:
        raise ValueError(f"min_length must be non-negative, got {min_length}")
    V, M = vocab_size, min_length
    last_values = V + 1  # "none yet" plus one per token

    def index(last, count):
        return last * (M + 1) + count

    n_states = last_values * (M + 1) + 1
    dead = n_states - 1
    transitions = np.full((n_states, V), dead, dtype=np.int32)
    accepting = np.zeros(n_states, dtype=bool)
    for last in range(last_values):
        for count in range(M + 1):
            q = index(last, count)
            accepting[q] = count >= M
            for v in range(V):
                if eos and v == EOS:
                    continue  # EOS is never read: the response ends before it
                token_state = v + 1
                if token_state == last:
                    continue  # a repeat goes to the dead state
                transitions[q, v] = index(token_state, min(count + 1, M))
    dead_mask = np.zeros(n_states, dtype=bool)
    dead_mask[dead] = True
    return RegularLanguage(jnp.asarray(transitions), jnp.asarray(accepting), jnp.asarray(dead_mask))


class ConcaveQuality(NamedTuple):
    """Per-token quality plus a concave length term (the verbosity a proxy can exploit).

    ``r*(x, y) = Σ_{i<L} quality[x, y_i] - length_penalty · (L - target_length)²``.
    """

    quality: jax.Array
    """``[P, V]``: quality of each token under each prompt (EOS's entry is never used)."""
    target_length: float
    """``L*``: the length the human prefers."""
    length_penalty: float
    """``c >= 0``: curvature of the length term."""

    def __call__(self, prompt, tokens, eos: bool = True):
        length = response_length(tokens, eos)
        in_response = jnp.arange(tokens.shape[-1]) < length
        content = jnp.sum(jnp.where(in_response, self.quality[prompt, tokens], 0.0))
        return content - self.length_penalty * (length - self.target_length) ** 2


# ------------------------------------------------------------------------------------------
# The task and its exact enumeration
# ------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TokenTask:
    """Shape of a token MDP. Static: every field sets array shapes."""

    vocab_size: int
    """``V``: number of tokens (actions), EOS included when ``eos=True``."""
    length: int
    """``T``: maximum response length (the horizon)."""
    n_prompts: int = 1
    """``P``: number of prompts; the prompt is drawn uniformly at reset."""
    eos: bool = True
    """Whether token 0 ends the response early (variable length) or is an ordinary token."""

    def __post_init__(self):
        if self.vocab_size < (3 if self.eos else 2):
            raise ValueError(f"vocab_size must be at least {3 if self.eos else 2}, got {self.vocab_size}")
        if self.length < 1:
            raise ValueError(f"length must be at least 1, got {self.length}")
        if self.n_prompts < 1:
            raise ValueError(f"n_prompts must be at least 1, got {self.n_prompts}")

    @property
    def content_tokens(self) -> tuple[int, ...]:
        """Tokens that extend the response: ``1 .. V-1`` with EOS, all ``V`` without."""
        return tuple(range(1, self.vocab_size)) if self.eos else tuple(range(self.vocab_size))


class TokenTree(NamedTuple):
    """The exact prefix tree of a :class:`TokenTask` (build it with :func:`enumerate_tokens`).

    ``P`` prompts, ``S_p`` unfinished prefixes per prompt (depth 0 .. T-1), ``N``
    complete responses per prompt (the same list for every prompt), ``S = P·S_p + 1``
    MDP states (the last one is the shared absorbing terminal state).
    """

    mdp: TabularMDP
    """The MDP with the gold reward: ``S`` states, ``V`` actions, horizon ``T``, ``K = 1``."""
    responses: jax.Array
    """``[N, T]`` int: every complete response, EOS-padded."""
    lengths: jax.Array
    """``[N]`` int: their lengths."""
    gold: jax.Array
    """``[P, N]``: the gold reward of each (prompt, response)."""
    path_states: jax.Array
    """``[N, T]`` int: the prefix state (within one prompt, ``0 .. S_p-1``) before each token."""
    path_actions: jax.Array
    """``[N, T]`` int: the token chosen at each step (EOS at the ending step of a short response)."""
    path_mask: jax.Array
    """``[N, T]`` bool: which steps are taken (``t <= L`` with EOS, ``t < T`` always)."""
    prefix_tokens: jax.Array
    """``[S_p, T]`` int: the prefix of each state, EOS-padded."""
    prefix_depth: jax.Array
    """``[S_p]`` int: its length."""

    @property
    def n_prompts(self) -> int:
        return self.gold.shape[0]

    @property
    def n_prefixes(self) -> int:
        return self.prefix_depth.shape[0]

    @property
    def n_responses(self) -> int:
        return self.responses.shape[0]

    def global_state(self, prompt, local_state):
        """MDP state index of prefix ``local_state`` under ``prompt``."""
        return prompt * self.n_prefixes + local_state


def count_responses(task: TokenTask) -> int:
    """``N``, the number of complete responses per prompt (without building them)."""
    C, T = len(task.content_tokens), task.length
    return sum(C**t for t in range(T)) + C**T if task.eos else C**T


def enumerate_tokens(task: TokenTask, gold, max_responses: int = 200_000) -> TokenTree:
    """Build the exact prefix-tree MDP and the list of all responses of ``task``.

    ``gold(prompt, tokens [T], eos) -> scalar`` is any gold reward (see the families above).
    Raises ValueError when ``P·N`` exceeds ``max_responses`` (use the functional
    environment instead). Built once in numpy; the result is a pytree of arrays.
    """
    P, T, V = task.n_prompts, task.length, task.vocab_size
    content = task.content_tokens
    N = count_responses(task)
    if P * N > max_responses:
        raise ValueError(
            f"task has {P} x {N} = {P * N} (prompt, response) pairs, more than max_responses={max_responses}; "
            f"enumerate a smaller task or use the functional environment"
        )
    # Unfinished prefixes, by depth then lexicographically (in content-token order).
    prefixes = [p for t in range(T) for p in itertools.product(content, repeat=t)]
    index = {p: i for i, p in enumerate(prefixes)}
    S_p = len(prefixes)
    prefix_tokens = np.full((S_p, T), EOS if task.eos else 0, dtype=np.int32)
    for i, p in enumerate(prefixes):
        prefix_tokens[i, : len(p)] = p
    prefix_depth = np.array([len(p) for p in prefixes], dtype=np.int32)

    # Complete responses: EOS after any unfinished prefix (if eos), and every full-length one.
    endings = []  # (prefix index, action, tokens)
    for i, p in enumerate(prefixes):
        if task.eos:
            endings.append((i, EOS, p))
        if len(p) == T - 1:
            endings += [(i, a, p + (a,)) for a in content]
    assert len(endings) == N
    responses = np.full((N, T), EOS if task.eos else 0, dtype=np.int32)
    path_states = np.zeros((N, T), dtype=np.int32)
    path_actions = np.zeros((N, T), dtype=np.int32)
    path_mask = np.zeros((N, T), dtype=bool)
    end_state = np.zeros(N, dtype=np.int64)
    end_action = np.zeros(N, dtype=np.int64)
    for n, (i, a, y) in enumerate(endings):
        responses[n, : len(y)] = y
        steps = list(y[: prefix_depth[i]]) + [a]
        for t, token in enumerate(steps):
            path_states[n, t] = index[tuple(y[:t])]
            path_actions[n, t] = token
            path_mask[n, t] = True
        end_state[n], end_action[n] = i, a
    lengths = np.asarray(response_length(jnp.asarray(responses), task.eos))

    gold_values = jax.vmap(lambda x: jax.vmap(lambda y: gold(x, y, task.eos))(jnp.asarray(responses)))(jnp.arange(P))
    gold_values = np.asarray(gold_values, dtype=np.float64)
    if not np.all(np.isfinite(gold_values)):
        raise ValueError("gold reward returned NaN or inf on some response")

    # The MDP: states p*S_p + i, terminal state P*S_p.
    S = P * S_p + 1
    terminal_state = S - 1
    next_states = np.full((S, V, 1), terminal_state, dtype=np.int32)
    for i, p in enumerate(prefixes):
        if len(p) < T - 1:
            for a in content:
                child = index[p + (a,)]
                for x in range(P):
                    next_states[x * S_p + i, a, 0] = x * S_p + child
    R = np.zeros((S, V))
    for x in range(P):
        R[x * S_p + end_state, end_action] = gold_values[x]
    init = np.zeros(S)
    init[np.arange(P) * S_p] = 1.0 / P
    terminal = np.zeros(S, dtype=bool)
    terminal[terminal_state] = True
    mdp = TabularMDP.from_successors(next_states, np.ones((S, V, 1)), R, init, T, 1.0, terminal)
    return TokenTree(
        mdp=mdp,
        responses=jnp.asarray(responses),
        lengths=jnp.asarray(lengths),
        gold=jnp.asarray(gold_values),
        path_states=jnp.asarray(path_states),
        path_actions=jnp.asarray(path_actions),
        path_mask=jnp.asarray(path_mask),
        prefix_tokens=jnp.asarray(prefix_tokens),
        prefix_depth=jnp.asarray(prefix_depth),
    )


# ------------------------------------------------------------------------------------------
# Exact sequence-level quantities on the tree
# ------------------------------------------------------------------------------------------


def with_response_reward(tree: TokenTree, reward: jax.Array) -> TabularMDP:
    """The tree's MDP with the terminal reward replaced by ``reward [P, N]`` (e.g. a reward model's).

    Each response ends at its own (state, action) pair, so ``R`` is a scatter; jit- and vmap-able.
    """
    reward = jnp.asarray(reward, dtype=jnp.float64)
    if reward.shape != tree.gold.shape:
        raise ValueError(f"reward must have shape [P, N] = {tree.gold.shape}, got {reward.shape}")
    states, actions = _ending_pairs(tree)
    R = jnp.zeros_like(tree.mdp.R).at[states, actions].set(reward)
    mdp = tree.mdp
    return TabularMDP.from_successors(
        mdp.next_states, mdp.next_probs, R, mdp.init, mdp.horizon, mdp.discount, mdp.terminal
    )


def ending_pairs(tree: TokenTree):
    """``(states [P, N], actions [P, N])``: the MDP state and action on which each (prompt, response) ends."""
    return _ending_pairs(tree)


def on_ending_pairs(tree: TokenTree, response_features: jax.Array) -> jax.Array:
    """``[S, A, F]`` state-action features that carry ``response_features [P, N, F]`` on each response's last step.

    Every other (state, action) gets zeros, so a linear reward ``φ(s, a)·θ`` on them pays
    ``φ(x, y)·θ`` once, when ``y`` ends: a response-level reward that MaxEnt IRL
    (:mod:`toyrlhf.algorithms.maxent_irl`) can fit with the tree's known dynamics.
    """
    P, N = tree.gold.shape
    if response_features.shape[:2] != (P, N):
        raise ValueError(f"response_features must have shape [P, N, F] = [{P}, {N}, F], got {response_features.shape}")
    S, A = tree.mdp.R.shape
    states, actions = _ending_pairs(tree)
    out = jnp.zeros((S, A, response_features.shape[-1]), response_features.dtype)
    return out.at[states, actions].set(response_features)


def length_and_count_features(tree: TokenTree, eos: bool = True) -> jax.Array:
    """``[P, N, P·(C + T + 1)]``: per prompt, the count of each content token and a one-hot of the length ``0..T``.

    A linear reward on them has, per prompt, a value per token and a free function of the
    length: it represents :class:`ConcaveQuality` exactly, and also the log-probability of a
    soft-optimal demonstrator relative to the uniform token policy (whose per-step
    ``−log V`` is a function of the length).
    """
    P, N = tree.gold.shape
    T = tree.responses.shape[-1]
    V = tree.mdp.R.shape[1]
    in_response = jnp.arange(T) < tree.lengths[:, None]
    counts = jnp.sum(jax.nn.one_hot(tree.responses, V) * in_response[..., None], axis=-2)
    if eos:
        counts = counts[:, 1:]
    phi = jnp.concatenate([counts, jax.nn.one_hot(tree.lengths, T + 1)], -1)  # [N, F]
    eye = jnp.eye(P, dtype=phi.dtype)
    return jnp.einsum("px,nf->pnxf", eye, phi).reshape(P, N, -1)


def _ending_pairs(tree: TokenTree):
    """``([P, N], [P, N])``: the MDP state and action on which each (prompt, response) ends."""
    last = jnp.sum(tree.path_mask, axis=-1) - 1  # [N]
    local = jnp.take_along_axis(tree.path_states, last[:, None], axis=-1)[:, 0]
    action = jnp.take_along_axis(tree.path_actions, last[:, None], axis=-1)[:, 0]
    prompts = jnp.arange(tree.n_prompts)[:, None]
    return tree.global_state(prompts, local[None, :]), jnp.broadcast_to(action, tree.gold.shape)


def response_log_probs(tree: TokenTree, log_policy: jax.Array) -> jax.Array:
    """``log π(y | x)`` for every prompt and response, ``[P, N]``, from ``log_policy [S, A]``.

    ``log π(y|x) = Σ_t log π(y_t | x, y_<t)`` along the response's path (the EOS step included).
    Pass log-probabilities (e.g. ``jax.nn.log_softmax(logits)``), so zeros stay exact.
    """
    if log_policy.shape != tree.mdp.R.shape:
        raise ValueError(f"log_policy must have shape [S, A] = {tree.mdp.R.shape}, got {log_policy.shape}")
    prompts = jnp.arange(tree.n_prompts)[:, None, None]
    states = tree.global_state(prompts, tree.path_states[None])  # [P, N, T]
    steps = log_policy[states, tree.path_actions[None]]
    return jnp.sum(jnp.where(tree.path_mask[None], steps, 0.0), axis=-1)


def response_probs(tree: TokenTree, policy: jax.Array) -> jax.Array:
    """``π(y | x)``, ``[P, N]`` (each row sums to one), from a stationary ``policy [S, A]``."""
    return jnp.exp(response_log_probs(tree, jnp.log(policy)))


def policy_from_response_probs(tree: TokenTree, probs: jax.Array) -> jax.Array:
    """The autoregressive policy ``[S, A]`` whose response distribution is ``probs [P, N]``.

    ``π(a | x, prefix) = Pr(prefix, a | x) / Pr(prefix | x)``: the inverse of
    :func:`response_probs`. Prefixes the distribution never reaches get the uniform policy.
    """
    P = tree.n_prompts
    S, A = tree.mdp.R.shape
    # Mass through each (prefix, action) pair: sum over responses whose path takes it.
    prompts = jnp.arange(P)[:, None, None]
    states = tree.global_state(prompts, tree.path_states[None])
    weights = jnp.where(tree.path_mask[None], probs[..., None], 0.0)
    flow = jnp.zeros((S, A)).at[states, tree.path_actions[None]].add(weights)
    total = flow.sum(-1, keepdims=True)
    return jnp.where(total > 0, flow / jnp.where(total > 0, total, 1.0), 1.0 / A)


def response_kl(p_probs: jax.Array, q_log_probs: jax.Array, prompt_weights=None) -> jax.Array:
    """``E_x[ KL(p(·|x) || q(·|x)) ]`` from ``p [P, N]`` and ``log q [P, N]`` (uniform prompts by default).

    Equals :func:`toyrlhf.tabular.kl_divergence` of the two token policies when they agree on
    the terminal state (whose actions change nothing but which the trajectory KL still counts).
    """
    log_p = jnp.log(jnp.where(p_probs > 0, p_probs, 1.0))
    per_prompt = jnp.sum(jnp.where(p_probs > 0, p_probs * (log_p - q_log_probs), 0.0), axis=-1)
    if prompt_weights is None:
        return jnp.mean(per_prompt)
    return jnp.sum(prompt_weights * per_prompt)


# ------------------------------------------------------------------------------------------
# The functional environment (any V and T: nothing is enumerated)
# ------------------------------------------------------------------------------------------


class TokenState(NamedTuple):
    """State of a :class:`TokenEnv` episode."""

    prompt: jax.Array
    """``[]`` int32: the prompt ``x``."""
    tokens: jax.Array
    """``[T]`` int32: the response so far, EOS-padded (0-padded without EOS)."""
    t: jax.Array
    """``[]`` int32: tokens chosen so far."""


@dataclasses.dataclass(frozen=True)
class TokenEnv:
    """A :class:`TokenTask` as a functional environment (:mod:`toyrlhf.envs.functional`).

    ``params`` is the gold reward (a pytree). The observation (float32) is the
    concatenation of one-hot(prompt) ``[P]``, the one-hot tokens of the response
    so far ``[T·V]`` (zeros at positions not yet written) and one-hot(t) ``[T+1]``,
    so it identifies the prefix exactly: a linear policy on it is autoregressive
    with position-specific weights, a ``Table`` on the enumerated tree is fully
    tabular. The gold reward is paid on the step that ends the response
    (``terminated``); ``truncated`` is never set (every response ends by ``T``).
    With the same policy the expected return equals
    :func:`toyrlhf.tabular.evaluate` on :func:`enumerate_tokens`' MDP.
    """

    task: TokenTask

    @property
    def n_actions(self) -> int:
        return self.task.vocab_size

    @property
    def observation_shape(self) -> tuple[int, ...]:
        P, T, V = self.task.n_prompts, self.task.length, self.task.vocab_size
        return (P + T * V + T + 1,)

    def observe(self, state: TokenState) -> jax.Array:
        """The observation of ``state`` (see the class docstring)."""
        P, T, V = self.task.n_prompts, self.task.length, self.task.vocab_size
        written = (jnp.arange(T) < state.t)[:, None]
        tokens = jnp.where(written, jax.nn.one_hot(state.tokens, V, dtype=jnp.float32), 0.0)
        return jnp.concatenate(
            [
                jax.nn.one_hot(state.prompt, P, dtype=jnp.float32),
                tokens.reshape(T * V),
                jax.nn.one_hot(state.t, T + 1, dtype=jnp.float32),
            ]
        )

    def reset(self, key: jax.Array, params) -> tuple[jax.Array, TokenState]:
        del params
        prompt = jax.random.randint(key, (), 0, self.task.n_prompts, dtype=jnp.int32)
        state = TokenState(prompt, jnp.zeros(self.task.length, jnp.int32), jnp.zeros((), jnp.int32))
        return self.observe(state), state

    def step(self, key: jax.Array, state: TokenState, action: jax.Array, params) -> Step:
        del key  # deterministic: appending a token is known and free
        action = jnp.asarray(action, jnp.int32)
        tokens = state.tokens.at[state.t].set(action)
        t_next = state.t + 1
        ended = t_next >= self.task.length
        if self.task.eos:
            ended = ended | (action == EOS)
        reward = jnp.where(ended, params(state.prompt, tokens, self.task.eos), 0.0).astype(jnp.float32)
        next_state = TokenState(state.prompt, tokens, t_next)
        return Step(self.observe(next_state), next_state, reward, ended, jnp.zeros((), bool))

    def decode(self, obs: jax.Array) -> TokenState:
        """Invert :meth:`observe` (vmappable): ``(prompt, tokens, t)`` from an observation ``[D]``.

        Lets a learned reward ``reward_fn(obs, action, next_obs, ψ)`` score the response in ``next_obs``.
        """
        P, T, V = self.task.n_prompts, self.task.length, self.task.vocab_size
        prompt = jnp.argmax(obs[:P]).astype(jnp.int32)
        onehots = obs[P : P + T * V].reshape(T, V)
        tokens = jnp.where(onehots.sum(-1) > 0, jnp.argmax(onehots, -1), 0).astype(jnp.int32)
        t = jnp.argmax(obs[P + T * V :]).astype(jnp.int32)
        return TokenState(prompt, tokens, t)


def tree_observations(env: TokenEnv, tree: TokenTree) -> jax.Array:
    """``[S, D]``: :class:`TokenEnv`'s observation of every state of the enumerated tree.

    The terminal state gets an all-zero row. With these rows as the observation
    table of :func:`toyrlhf.envs.functional.tabular_env`, a network trained on
    :class:`TokenEnv` can be evaluated exactly on the tree (and vice versa).
    """
    P = tree.n_prompts
    prompts = jnp.repeat(jnp.arange(P, dtype=jnp.int32), tree.n_prefixes)
    tokens = jnp.tile(tree.prefix_tokens, (P, 1))
    depth = jnp.tile(tree.prefix_depth, P)
    obs = jax.vmap(env.observe)(TokenState(prompts, tokens, depth))
    return jnp.concatenate([obs, jnp.zeros((1, obs.shape[1]), jnp.float32)])


def path_state_indices(task: TokenTask, prompt: jax.Array, tokens: jax.Array) -> jax.Array:
    """``[T]``: the state of :func:`enumerate_tokens`' MDP before each token of ``tokens [T]`` (vmappable).

    Computed arithmetically from the tokens (prefixes are numbered by depth, then in
    base ``C`` over the content tokens; prompt ``x`` owns states ``x·S_p .. (x+1)·S_p - 1``),
    so a tabular policy ``[S, A]`` on the tree, e.g. a PPO ``Table`` actor on one-hot
    observations of ``tree.mdp``, can score any response given as tokens. Entries
    after the response's last step point at unrelated states: mask them.
    """
    T, C = task.length, len(task.content_tokens)
    digits = (tokens - 1) if task.eos else tokens
    offsets = jnp.asarray([sum(C**k for k in range(t)) for t in range(T)], dtype=jnp.int32)
    n_prefixes = sum(C**k for k in range(T))
    position = jnp.arange(T)

    def prefix_number(t):
        powers = jnp.where(position < t, C ** jnp.clip(t - 1 - position, 0, None), 0)
        return jnp.sum(jnp.where(position < t, digits, 0) * powers)

    local = offsets + jax.vmap(prefix_number)(position)
    return (prompt * n_prefixes + local).astype(jnp.int32)


def step_mask(task: TokenTask, tokens: jax.Array) -> jax.Array:
    """``[..., T]`` bool: the steps a response takes (its tokens, plus the EOS step if it ends early)."""
    length = response_length(tokens, task.eos)
    return jnp.arange(task.length) <= jnp.minimum(length, task.length - 1)[..., None]
