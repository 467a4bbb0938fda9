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
checkpoint intact.

Both halves are hashed: the JSON carries the SHA-256 of the .npz and
``record_sha256``, the SHA-256 of its own canonical form (sorted keys, that
field left out), so an edited ``"epoch"`` is refused like a modified array.
Anything that cannot be read -- a truncated, empty or garbage file, bad JSON,
a missing half, a hash mismatch, an array only unpickling could read -- is a
:class:`CheckpointError` naming the file and the cause.

:func:`find_resumable` returns the newest checkpoint that loads and moves
every newer, damaged one aside (``epoch-0003.json.damaged``, never deleted),
saying what it found; rotation only ever deletes ``epoch-*.json`` pairs, so
moved files stay.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import os
import re
import tempfile
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
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
    "find_resumable",
    "ResumePoint",
    "CheckpointWarning",
    "FORMAT",
]

FORMAT = "gradproof-checkpoint-2"  # -2: the JSON half is hashed too (record_sha256)
_OLD_FORMATS = ("gradproof-checkpoint-1",)  # read, with a warning: the JSON is unverified
_NAME = re.compile(r"^epoch-(\d+)\.json$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-/]")


class CheckpointError(GradproofError, ValueError):
    """A checkpoint is missing, incomplete, corrupt or does not fit the run."""


class CheckpointWarning(UserWarning):
    """A damaged checkpoint was found (and moved aside), or one could not be verified."""


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
    record["record_sha256"] = _record_hash(record)
    _write_atomic(json_path, json.dumps(record, indent=1).encode())
    return json_path


ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")  # a zip's first entry, or an empty zip


def _record_hash(record: dict) -> str:
    """SHA-256 of the JSON record in canonical form, its own hash field left out."""
    body = {k: v for k, v in record.items() if k != "record_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()


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
    except OSError as exc:
        raise CheckpointError(f"checkpoint {json_path!r} cannot be read: {exc}") from exc
    if not isinstance(record, dict) or record.get("format") not in (FORMAT, *_OLD_FORMATS):
        raise CheckpointError(f"{json_path!r} is not a {FORMAT} file")
    if record["format"] == FORMAT and record.get("record_sha256") != _record_hash(record):
        raise CheckpointError(
            f"checkpoint {json_path!r} does not match its own hash (record_sha256): the JSON "
            "was edited or is incomplete")
    if record["format"] != FORMAT:
        warnings.warn(f"checkpoint {json_path!r} has the older format {record['format']}, "
                      "whose JSON half is not hashed: it is read unverified", CheckpointWarning,
                      stacklevel=2)
    if not isinstance(record.get("arrays"), str) or not isinstance(record.get("sha256"), str):
        raise CheckpointError(f"checkpoint {json_path!r} does not name its arrays and their hash")
    npz_path = os.path.join(os.path.dirname(json_path), os.path.basename(record["arrays"]))
    try:
        with open(npz_path, "rb") as handle:
            payload = handle.read()
    except FileNotFoundError as exc:
        raise CheckpointError(f"checkpoint arrays {npz_path!r} are missing") from exc
    except OSError as exc:
        raise CheckpointError(f"checkpoint arrays {npz_path!r} cannot be read: {exc}") from exc
    if hashlib.sha256(payload).hexdigest() != record["sha256"]:
        raise CheckpointError(
            f"checkpoint arrays {npz_path!r} do not match the hash in {json_path!r} "
            f"(incomplete or modified; {len(payload)} bytes)"
        )
    arrays = read_npz(payload, f"checkpoint arrays {npz_path!r}")
    try:
        return decode_tree(record["state"], arrays)
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"checkpoint {json_path!r} has a malformed state tree: "
                              f"{type(exc).__name__}: {exc}") from exc


def read_npz(payload: bytes, what: str) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file's bytes, read with ``allow_pickle=False``.

    Raises :class:`CheckpointError` naming ``what`` and the cause for an empty,
    truncated or garbage file, or one holding pickled (object) arrays.
    """
    if not payload:
        raise CheckpointError(f"{what} is an empty file")
    if payload[:4] not in ZIP_SIGNATURES:  # np.load would try to unpickle anything else
        raise CheckpointError(f"{what} is not an .npz archive (it does not start with the zip "
                              f"signature; {len(payload)} bytes, starting {payload[:8]!r})")
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
            if not hasattr(npz, "files"):  # a bare .npy, not an archive
                raise CheckpointError(f"{what} is a single .npy array, not an .npz archive")
            return {key: npz[key] for key in npz.files}
    except CheckpointError:
        raise
    except ValueError as exc:  # an object array, which only unpickling could read
        cause = ("it holds pickled (object) arrays, which are never unpickled"
                 if "pickle" in str(exc) else str(exc))
        raise CheckpointError(f"{what} cannot be read safely: {cause}") from exc
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, zlib.error) as exc:
        raise CheckpointError(f"{what} is not a readable .npz archive (truncated or "
                              f"garbage?): {type(exc).__name__}: {exc}") from exc


def latest_checkpoint(directory: str | os.PathLike) -> str | None:
    """The JSON path of the newest complete checkpoint in ``directory``, or None.

    Damaged ones are skipped with a :class:`CheckpointWarning` each (and left
    where they are: :func:`find_resumable` moves them aside).
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        if os.path.exists(directory):
            raise InputError(f"checkpoint_dir {directory!r} is not a directory")
        return None
    for path in reversed(_complete_or_not(directory)):
        try:
            load_checkpoint(path)
        except CheckpointError as exc:
            warnings.warn(f"skipping damaged checkpoint: {exc}", CheckpointWarning, stacklevel=2)
            continue
        return path
    return None


@dataclass
class ResumePoint:
    """What :func:`find_resumable` found: the checkpoint to resume from (``path``,
    ``state``, ``epoch``; all None when there is none) and the damaged ones moved
    aside, as ``(moved to, why)``."""

    directory: str
    path: str | None = None
    state: Any = None
    epoch: int | None = None
    damaged: list[tuple[str, str]] = field(default_factory=list)
    exists: bool = True  # whether the directory exists

    def describe(self) -> str:
        """What was found and what is used, in a few lines."""
        lines = [f"damaged checkpoint moved aside to {moved}: {why}"
                 for moved, why in self.damaged]
        if self.path is not None:
            lines.append(f"resumed from epoch {self.epoch} ({self.path})")
        elif not self.exists:
            lines.append(f"checkpoint directory {self.directory!r} does not exist")
        else:
            lines.append(f"no usable checkpoint in {self.directory!r}")
        return "\n".join(lines)


def find_resumable(directory: str | os.PathLike) -> ResumePoint:
    """The newest checkpoint in ``directory`` that loads, with its state.

    A newer one that fails to load is moved aside (both files get the suffix
    ``.damaged``, or ``.damaged-N`` when that name is taken), never deleted,
    and a :class:`CheckpointWarning` says what was wrong and where it went.
    """
    directory = os.fspath(directory)
    found = ResumePoint(directory)
    if not os.path.isdir(directory):
        if os.path.exists(directory):
            raise CheckpointError(f"checkpoint_dir {directory!r} is not a directory")
        found.exists = False
        return found
    for path in reversed(_complete_or_not(directory)):
        try:
            state = load_checkpoint(path)
        except CheckpointError as exc:
            moved = _move_aside(path)
            found.damaged.append((moved, str(exc)))
            warnings.warn(f"damaged checkpoint {path!r} moved aside to {moved!r}: {exc}",
                          CheckpointWarning, stacklevel=2)
            continue
        found.path, found.state = path, state
        found.epoch = int(_NAME.match(os.path.basename(path)).group(1))
        return found
    return found


def _move_aside(json_path: str) -> str:
    """Rename a damaged checkpoint's files to ``*.damaged`` (never deleted); the new JSON path."""
    stem = json_path[: -len(".json")]
    suffix, n = ".damaged", 1
    while os.path.exists(json_path + suffix) or os.path.exists(stem + ".npz" + suffix):
        n += 1
        suffix = f".damaged-{n}"
    for path in (stem + ".npz", json_path):
        if os.path.exists(path):
            os.replace(path, path + suffix)
    return json_path + suffix
