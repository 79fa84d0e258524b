"""Keep a trained policy: parameters to an ``.npz`` with a JSON header, and back, without pickle.

``save_params(path, params, kind="ppo", metadata={...})`` writes every array leaf
of the pytree ``params`` under its key path (``"actor/0/w"``-like names) and a
header, stored as the UTF-8 bytes of a JSON document in the ``__header__`` entry:
the format name and version, the ``kind`` of parameters (``"ppo"``, ``"bc"``,
``"gail"``, ``"reward-model"``, any string), each leaf's path, shape and dtype,
and free ``metadata`` (a config as a dict, the return it reached). Loading checks
all of it:

    params = load_params(path, like=template, kind="ppo")

puts the saved arrays into the structure of ``template`` (e.g. freshly initialised
parameters of the same network) and refuses, with a ``ValueError`` that says what
differs, a file of another format or version, another kind, or another structure.
Without ``like`` it returns ``{path: array}``. The write is atomic.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import numpy as np

from toyrlhf.files import atomic_write

FORMAT = "toyrlhf-params"
VERSION = 1
_HEADER = "__header__"


def _leaves(params) -> list[tuple[str, np.ndarray]]:
    paths, _ = jax.tree.flatten_with_path(params)
    out = []
    for path, leaf in paths:
        name = "/".join(str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))) for k in path) or "params"
        out.append((name, np.asarray(leaf)))
    return out


def save_params(path, params: Any, kind: str, metadata: dict | None = None) -> Path:
    """Write ``params`` (a pytree of arrays) and its header to ``path`` (``.npz``); returns the path."""
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"kind must be a non-empty string naming the parameters, got {kind!r}")
    leaves = _leaves(params)
    names = [n for n, _ in leaves]
    if len(set(names)) != len(names) or _HEADER in names:
        raise ValueError(f"parameter paths must be unique and not {_HEADER!r}: {names}")
    for name, value in leaves:
        if value.dtype == object:
            raise TypeError(f"leaf {name!r} has dtype object; only numeric arrays are saved (no pickle)")
    header = {
        "format": FORMAT,
        "version": VERSION,
        "kind": kind,
        "leaves": [{"path": n, "shape": list(v.shape), "dtype": str(v.dtype)} for n, v in leaves],
        "metadata": metadata or {},
    }
    text = json.dumps(header, default=str)

    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **{_HEADER: np.frombuffer(text.encode(), dtype=np.uint8)}, **dict(leaves))

    return atomic_write(Path(path), write)


def read_header(path) -> dict:
    """The JSON header of a parameter file; ``ValueError`` if ``path`` is not one."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if _HEADER not in data.files:
                raise ValueError(f"{path} is not a toyrlhf parameter file (no {_HEADER} entry)")
            header = json.loads(data[_HEADER].tobytes().decode())
    except (OSError, ValueError, json.JSONDecodeError) as err:
        if isinstance(err, ValueError) and "toyrlhf parameter file" in str(err):
            raise
        raise ValueError(f"{path} is not a toyrlhf parameter file ({err})") from err
    if header.get("format") != FORMAT:
        raise ValueError(f"{path} holds format {header.get('format')!r}, not {FORMAT!r}")
    if header.get("version") != VERSION:
        raise ValueError(f"{path} is version {header.get('version')} of {FORMAT}; this toyrlhf reads {VERSION}")
    return header


def load_params(path, like: Any = None, kind: str | None = None):
    """Load parameters saved by :func:`save_params`; into ``like``'s structure if given.

    ``kind``: refuse a file whose parameters are of another kind. Returns the
    pytree (with ``like``) or ``{path: array}``; ``(params, header)`` is available
    through :func:`read_header` for the metadata.
    """
    header = read_header(path)
    if kind is not None and header["kind"] != kind:
        raise ValueError(f"{path} holds {header['kind']!r} parameters, not {kind!r}")
    with np.load(path, allow_pickle=False) as data:
        saved = {leaf["path"]: data[leaf["path"]] for leaf in header["leaves"]}
    if like is None:
        return saved
    expected = _leaves(like)
    if [n for n, _ in expected] != list(saved):
        raise ValueError(f"{path} has leaves {list(saved)}, the template has {[n for n, _ in expected]}")
    for name, template in expected:
        if saved[name].shape != template.shape or saved[name].dtype != template.dtype:
            raise ValueError(
                f"{path}: leaf {name!r} is {saved[name].dtype}{list(saved[name].shape)}, "
                f"the template's is {template.dtype}{list(template.shape)}"
            )
    treedef = jax.tree.structure(like)
    return jax.tree.unflatten(treedef, [saved[n] for n, _ in expected])
