"""Checkpoints as ``.npz`` + JSON, written atomically and read without unpickling.

A checkpoint is a pair of files in one directory::

    epoch-0003.npz    every array (parameters, buffers, optimizer moments, ...)
    epoch-0003.json   everything else, readable: counters, history, RNG states,
                      and the name and SHA-256 of its .npz

State goes in as a tree of dicts, lists, tuples, numbers, strings, None and
NumPy arrays (what ``state_dict()`` methods return). :func:`encode_tree` moves
each array into the .npz under a path-like key and leaves ``{"__array__":
key}`` in the JSON; tuples and dicts with non-string keys are tagged so that
:func:`decode_tree` rebuilds the very same tree: a round trip is exact, dtypes
included, floats included (JSON writes Python floats with ``repr``, which
round-trips; NaN and infinities use JSON's ``NaN``/``Infinity`` extension).

Each file is written to a temporary file in the same directory, flushed,
fsync-ed, then ``os.replace``-d over its name; the JSON is written last and
names the .npz with its hash, so a checkpoint is complete exactly when its
JSON exists and the hash matches. A run killed while saving leaves the previous
checkpoint intact. :func:`latest_checkpoint` skips incomplete ones.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import os
import re
import tempfile
from typing import Any

import numpy as np

from ..errors import GradproofError, InputError, InputTypeError, describe

__all__ = [
    "CheckpointError",
    "encode_tree",
    "decode_tree",
    "save_checkpoint",
    "load_checkpoint",
    "save_tree",
    "load_tree",
    "latest_checkpoint",
    "checkpoint_paths",
    "FORMAT",
]

FORMAT = "gradproof-checkpoint-1"
_NAME = re.compile(r"^epoch-(\d+)\.json$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-/]")


class CheckpointError(GradproofError, ValueError):
    """A checkpoint is missing, incomplete, corrupt or does not fit the run."""


# --- trees of arrays <-> JSON + arrays ---------------------------------------
def encode_tree(tree: Any, arrays: dict[str, np.ndarray], prefix: str) -> Any:
    """A JSON-ready copy of ``tree``; its arrays are added to ``arrays`` under ``prefix/...``."""
    if isinstance(tree, np.ndarray):
        if tree.dtype.hasobject:
            raise InputTypeError(f"{prefix}: object arrays cannot be checkpointed")
        key = _array_key(prefix, arrays)
        arrays[key] = tree
        return {"__array__": key}
    if isinstance(tree, np.generic):  # NumPy scalar: keep its dtype as a 0-d array
        return encode_tree(np.asarray(tree), arrays, prefix) | {"__scalar__": True}
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    if isinstance(tree, (list, tuple)):
        items = [encode_tree(v, arrays, f"{prefix}/{i}") for i, v in enumerate(tree)]
        return {"__tuple__": items} if isinstance(tree, tuple) else items
    if isinstance(tree, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in tree):
            return {k: encode_tree(v, arrays, f"{prefix}/{k}") for k, v in tree.items()}
        return {"__items__": [[encode_tree(k, arrays, f"{prefix}/key{i}"),
                               encode_tree(v, arrays, f"{prefix}/{i}")]
                              for i, (k, v) in enumerate(tree.items())]}
    raise InputTypeError(
        f"{prefix}: cannot checkpoint {describe(tree)}; state must be made of dicts, lists, "
        "numbers, strings, None and NumPy arrays"
    )


def _array_key(path: str, arrays: dict[str, np.ndarray]) -> str:
    """A unique, file-name-safe key for the array at ``path`` (``"state/model/0.weight"``).

    Dict keys may hold any character (a NUL, a slash) and two paths may collide
    (``{"a/b": ...}`` and ``{"a": {"b": ...}}``): odd characters become ``_`` and
    a taken key gets a ``~N`` suffix; the JSON records the key actually used.
    """
    key = _UNSAFE.sub("_", path)
    return key if key not in arrays else f"{key}~{len(arrays)}"


def decode_tree(tree: Any, arrays: dict[str, np.ndarray]) -> Any:
    """The inverse of :func:`encode_tree`: arrays are taken from ``arrays``."""
    if isinstance(tree, list):
        return [decode_tree(v, arrays) for v in tree]
    if not isinstance(tree, dict):
        return tree
    if "__array__" in tree:
        key = tree["__array__"]
        if key not in arrays:
            raise CheckpointError(f"the checkpoint's arrays lack {key!r}")
        value = arrays[key]
        return value[()] if tree.get("__scalar__") else value
    if "__tuple__" in tree:
        return tuple(decode_tree(v, arrays) for v in tree["__tuple__"])
    if "__items__" in tree:
        return {_hashable(decode_tree(k, arrays)): decode_tree(v, arrays)
                for k, v in tree["__items__"]}
    return {k: decode_tree(v, arrays) for k, v in tree.items()}


def _hashable(key: Any) -> Any:
    return key.item() if isinstance(key, np.generic) else key


# --- atomic files ------------------------------------------------------------
def _write_atomic(path: str, payload: bytes) -> None:
    """Write ``payload`` to ``path`` so that a reader sees the old file or the new, never half."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def checkpoint_paths(directory: str | os.PathLike, epoch: int) -> tuple[str, str]:
    """``(npz_path, json_path)`` of the checkpoint taken after ``epoch`` epochs."""
    stem = os.path.join(os.fspath(directory), f"epoch-{epoch:04d}")
    return stem + ".npz", stem + ".json"


def save_checkpoint(directory: str | os.PathLike, epoch: int, state: dict[str, Any],
                    keep_last: int | None = 2) -> str:
    """Write ``state`` (a tree, see :func:`encode_tree`) as checkpoint ``epoch``.

    Returns the JSON path.

    Older checkpoints beyond the newest ``keep_last`` are deleted after the new
    one is complete (``None`` keeps all).
    """
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    _, json_path = checkpoint_paths(directory, epoch)
    save_tree(json_path, state, epoch=epoch)
    if keep_last is not None:
        for old in _complete_or_not(directory)[:-keep_last]:
            _remove_checkpoint(old)
    return json_path


def save_tree(json_path: str | os.PathLike, state: Any, **meta: Any) -> str:
    """Write ``state`` (a tree, see :func:`encode_tree`) as ``json_path`` plus the
    ``.npz`` beside it (same stem), atomically: the arrays first, then the JSON
    that names them with their SHA-256. ``meta`` (JSON values) is stored too."""
    json_path = os.fspath(json_path)
    if not json_path.endswith(".json"):
        raise InputError(f"json_path must end in .json, got {json_path!r}")
    npz_path = json_path[: -len(".json")] + ".npz"
    arrays: dict[str, np.ndarray] = {}
    encoded = encode_tree(state, arrays, "state")
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    payload = buffer.getvalue()
    _write_atomic(npz_path, payload)
    record = {
        "format": FORMAT,
        **meta,
        "arrays": os.path.basename(npz_path),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "state": encoded,
    }
    _write_atomic(json_path, json.dumps(record, indent=1).encode())
    return json_path


def _complete_or_not(directory: str) -> list[str]:
    """JSON paths of the checkpoints in ``directory``, oldest first (not yet validated)."""
    found = []
    for path in glob.glob(os.path.join(glob.escape(directory), "epoch-*.json")):
        match = _NAME.match(os.path.basename(path))
        if match:
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


def _remove_checkpoint(json_path: str) -> None:
    for path in (json_path, json_path[: -len(".json")] + ".npz"):
        if os.path.exists(path):
            os.unlink(path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The state tree saved by :func:`save_checkpoint`, from its JSON path."""
    return load_tree(path)


def load_tree(path: str | os.PathLike) -> Any:
    """The state tree saved by :func:`save_tree`, from its JSON path.

    The .npz is verified against the hash in the JSON and read with
    ``allow_pickle=False``. Raises :class:`CheckpointError` if anything is
    missing or does not match.
    """
    json_path = os.fspath(path)
    try:
        with open(json_path, "rb") as handle:
            record = json.loads(handle.read())
    except FileNotFoundError as exc:
        raise CheckpointError(f"checkpoint {json_path!r} does not exist") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"checkpoint {json_path!r} is not valid JSON: {exc}") from exc
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CheckpointError(f"{json_path!r} is not a {FORMAT} file")
    npz_path = os.path.join(os.path.dirname(json_path), record["arrays"])
    try:
        with open(npz_path, "rb") as handle:
            payload = handle.read()
    except FileNotFoundError as exc:
        raise CheckpointError(f"checkpoint arrays {npz_path!r} are missing") from exc
    if hashlib.sha256(payload).hexdigest() != record["sha256"]:
        raise CheckpointError(
            f"checkpoint arrays {npz_path!r} do not match the hash in {json_path!r} "
            "(incomplete or modified)"
        )
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except ValueError as exc:  # e.g. an object array, which only unpickling could read
        raise CheckpointError(f"checkpoint arrays {npz_path!r} cannot be read safely: {exc}"
                              ) from exc
    return decode_tree(record["state"], arrays)


def latest_checkpoint(directory: str | os.PathLike) -> str | None:
    """The JSON path of the newest complete checkpoint in ``directory``, or None."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        if os.path.exists(directory):
            raise InputError(f"checkpoint_dir {directory!r} is not a directory")
        return None
    for path in reversed(_complete_or_not(directory)):
        try:
            load_checkpoint(path)
        except CheckpointError:
            continue
        return path
    return None
