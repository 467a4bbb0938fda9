"""The data format between the grader and the process that runs a student's code.

Only data crosses: ``None``, booleans, numbers, strings, tuples, lists, dicts,
and NumPy arrays and scalars of numeric dtypes (raw bytes plus dtype and
shape, never pickle). Anything else a student's function returns (a class
instance, a lambda in a cache) stays in the student's process and crosses as
an opaque handle (:class:`Opaque`) that the grader can pass back but never
opens. What the grader decodes from the student's side is checked as it is
read (numeric dtypes, sizes that add up, a cap on the message), so a hostile
message is an error, not code.

Identity is kept where the grading needs it: an object that appears twice in
one message arrives as one object twice (a cache holding ``x`` twice), and an
object the grader sent comes back as the grader's own object (a cache holding
the input ``x``), see ``known`` and ``sent``.

A message on the pipe: a tag (8 bytes of magic and a 16-byte nonce that the
reply repeats), 8 bytes of length, then 4 bytes of header length, the header
(JSON), then the array buffers one after another.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

import numpy as np

from .findings import as_text

__all__ = ["Opaque", "Encoder", "Decoder", "WireError", "ReplyReader", "frame", "send",
           "receive_request", "parse", "MAGIC", "TAG_BYTES", "MAX_DEPTH"]

MAX_DEPTH = 32  # containers nested deeper than this cross as opaque handles
MAX_NODES = 200_000


class WireError(Exception):
    """A message that does not decode: truncated, oversized, or not in this format."""


class Opaque:
    """An object that stayed in the student's process: a handle and how it looked."""

    __slots__ = ("handle", "text", "type_name")

    def __init__(self, handle: int, text: str, type_name: str):
        self.handle, self.text, self.type_name = handle, text, type_name

    def __repr__(self) -> str:
        return f"<{self.type_name} in the student's process: {self.text}>"


def _numeric(dtype: np.dtype) -> bool:
    return dtype.kind in "biufc" and not dtype.hasobject and dtype.fields is None


class Encoder:
    """Turns a value into a header node and buffers.

    ``handles`` (the student's side only) keeps objects that cannot cross and
    returns a handle for each; without it such an object is a :class:`WireError`
    (a grader bug). ``known`` maps ``id(obj)`` to the token under which the other
    side sent ``obj``: it goes back as that token. ``sent`` collects every
    array, list and dict encoded, in order: the token of an object is its index.
    """

    def __init__(self, handles: dict[int, Any] | None = None,
                 known: dict[int, int] | None = None):
        self.handles = handles
        self.known = known or {}
        self.buffers: list[bytes] = []
        self.sent: list[Any] = []
        self._seen: dict[int, int] = {}
        self._nodes = 0

    def node(self, value: Any, depth: int = 0) -> Any:
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise WireError(f"more than {MAX_NODES} values in one message")
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, (int, float)) and type(value) in (int, float):
            return value
        if isinstance(value, Opaque):
            return {"o": value.handle}
        key = id(value)
        if key in self.known:
            return {"k": self.known[key]}
        if key in self._seen:
            return {"r": self._seen[key]}
        if isinstance(value, np.generic) and _numeric(value.dtype):
            self.buffers.append(np.asarray(value).tobytes())
            return {"g": len(self.buffers) - 1, "y": value.dtype.str}
        if isinstance(value, np.ndarray) and _numeric(value.dtype):
            self._remember(value)
            self.buffers.append(np.ascontiguousarray(value).tobytes())
            return {"a": len(self.buffers) - 1, "y": value.dtype.str, "s": list(value.shape),
                    "w": bool(value.flags.writeable)}
        if depth < MAX_DEPTH:
            if type(value) is tuple:
                self._remember(value)
                return {"t": [self.node(v, depth + 1) for v in value]}
            if type(value) is list:
                self._remember(value)
                return {"l": [self.node(v, depth + 1) for v in value]}
            if type(value) is dict:
                self._remember(value)
                return {"d": [[self.node(k, depth + 1), self.node(v, depth + 1)]
                              for k, v in value.items()]}
        if self.handles is None:
            raise WireError(f"cannot send {type(value).__name__} to the student's process")
        handle = id(value)
        self.handles[handle] = value
        try:
            text = as_text(value)
        except Exception:  # noqa: BLE001 - the student's __repr__ / __len__
            text = f"a {type(value).__name__}"
        return {"o": handle, "x": text, "n": type(value).__name__}

    def _remember(self, value: Any) -> None:
        self._seen[id(value)] = len(self.sent)
        self.sent.append(value)

    def message(self, header: dict) -> bytes:
        """``header`` (plus the buffers' sizes) and the buffers: a message's body."""
        header = {**header, "sizes": [len(b) for b in self.buffers]}
        head = json.dumps(header, separators=(",", ":")).encode()
        return struct.pack(">I", len(head)) + head + b"".join(self.buffers)


class Decoder:
    """Turns a header node and its buffers back into values.

    ``sent`` is what this side encoded into the request the message answers:
    ``{"k": token}`` is ``sent[token]`` itself. ``opaque`` turns a handle into
    an object (the student's side resolves its own handles; the grader makes
    :class:`Opaque`). ``received`` collects every array, list and dict decoded,
    in order, and ``originals`` the bytes each array arrived with.
    """

    def __init__(self, buffers: list[memoryview], sent: list[Any] | None = None,
                 opaque=None):
        self.buffers = buffers
        self.sent = sent or []
        self.opaque = opaque
        self.received: list[Any] = []
        self.originals: dict[int, memoryview] = {}
        self._nodes = 0

    def value(self, node: Any, depth: int = 0) -> Any:
        self._nodes += 1
        if self._nodes > MAX_NODES or depth > MAX_DEPTH + 1:
            raise WireError("a message nested too deep or too large")
        if node is None or isinstance(node, (bool, str, int, float)):
            return node
        if not isinstance(node, dict) or len(node) < 1:
            raise WireError(f"not a value node: {str(node)[:60]}")
        if "a" in node:
            return self._array(node)
        if "g" in node:
            dtype = self._dtype(node["y"])
            data = self._buffer(node["g"])
            if len(data) != dtype.itemsize:
                raise WireError("a scalar's size does not match its dtype")
            return np.frombuffer(data, dtype=dtype)[0]
        if "r" in node:
            return self._index(self.received, node["r"])
        if "k" in node:
            return self._index(self.sent, node["k"])
        if "o" in node:
            if self.opaque is None:
                raise WireError("an opaque handle where none may be")
            return self.opaque(node)
        if "t" in node:
            slot = len(self.received)
            self.received.append(None)
            items = self._items(node["t"])
            value = tuple(self.value(v, depth + 1) for v in items)
            self.received[slot] = value
            return value
        if "l" in node:
            value: Any = []
            self.received.append(value)
            value.extend(self.value(v, depth + 1) for v in self._items(node["l"]))
            return value
        if "d" in node:
            value = {}
            self.received.append(value)
            for pair in self._items(node["d"]):
                if not isinstance(pair, list) or len(pair) != 2:
                    raise WireError("a dict entry that is not a pair")
                key = self.value(pair[0], depth + 1)
                try:
                    value[key] = self.value(pair[1], depth + 1)
                except TypeError as exc:  # an unhashable key
                    raise WireError(f"a dict key that is not hashable: {exc}") from exc
            return value
        raise WireError(f"unknown node {sorted(node)[:3]}")

    @staticmethod
    def _items(items: Any) -> list:
        if not isinstance(items, list):
            raise WireError("a container node without a list")
        return items

    @staticmethod
    def _index(table: list, i: Any) -> Any:
        if not isinstance(i, int) or not 0 <= i < len(table):
            raise WireError(f"a reference to nothing ({i!r})")
        return table[i]

    @staticmethod
    def _dtype(text: Any) -> np.dtype:
        try:
            dtype = np.dtype(str(text))
        except TypeError as exc:
            raise WireError(f"not a dtype: {str(text)[:20]}") from exc
        if not _numeric(dtype):
            raise WireError(f"not a numeric dtype: {dtype}")
        return dtype

    def _buffer(self, i: Any) -> memoryview:
        return self._index(self.buffers, i)

    def _array(self, node: dict) -> np.ndarray:
        dtype = self._dtype(node.get("y"))
        shape = node.get("s")
        if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise WireError("an array shape that is not a list of sizes")
        data = self._buffer(node["a"])
        count = 1
        for n in shape:
            count *= n
        if count * dtype.itemsize != len(data):
            raise WireError("an array's bytes do not match its shape and dtype")
        array = np.frombuffer(data, dtype=dtype).reshape(shape).copy()
        array.flags.writeable = bool(node.get("w", True))
        self.originals[len(self.received)] = data
        self.received.append(array)
        return array


MAGIC = b"GPWIRE01"
TAG_BYTES = len(MAGIC) + 16


def frame(tag: bytes, body: bytes) -> bytes:
    """A message on the pipe: the tag (MAGIC and a nonce), the body's length, the body."""
    return tag + struct.pack(">Q", len(body)) + body


def send(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd``."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_exactly(fd: int, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError("the other process closed the pipe")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def receive_request(fd: int) -> tuple[bytes, dict, list[memoryview]]:
    """The student's side: one request from the grader, ``(tag, header, buffers)``.

    Only the grader writes into this pipe, so a request starts where the last ended.
    """
    tag = _read_exactly(fd, TAG_BYTES)
    if not tag.startswith(MAGIC):
        raise WireError("a request without the magic")
    (size,) = struct.unpack(">Q", _read_exactly(fd, 8))
    header, buffers = parse(memoryview(_read_exactly(fd, size)))
    return tag, header, buffers


class ReplyReader:
    """The grader's side of the student's replies.

    The student's code can write anything into this pipe (it holds its write
    end): each reply starts with the tag of the request it answers (MAGIC and a
    fresh nonce), and whatever comes before that tag is skipped and counted in
    ``junk``. A student who forges a reply with the right tag only chooses the
    data its function returns, which it can do anyway.
    """

    def __init__(self, fd: int, max_bytes: int):
        self.fd, self.max_bytes = fd, max_bytes
        self.buffer = bytearray()
        self.junk = 0

    def _more(self) -> None:
        chunk = os.read(self.fd, 1 << 20)
        if not chunk:
            raise EOFError("the other process closed the pipe")
        self.buffer += chunk

    def read(self, tag: bytes) -> tuple[dict, list[memoryview]]:
        while True:
            at = self.buffer.find(tag)
            if at >= 0:
                self.junk += at
                del self.buffer[:at]
                break
            keep = len(tag) - 1
            if len(self.buffer) > keep:
                self.junk += len(self.buffer) - keep
                del self.buffer[:len(self.buffer) - keep]
            if self.junk > self.max_bytes:
                raise WireError(f"more than {self.max_bytes} bytes of junk in the pipe")
            self._more()
        while len(self.buffer) < len(tag) + 8:
            self._more()
        (size,) = struct.unpack(">Q", bytes(self.buffer[len(tag):len(tag) + 8]))
        if size > self.max_bytes:
            raise WireError(f"a message of {size} bytes (more than the {self.max_bytes} allowed)")
        end = len(tag) + 8 + size
        while len(self.buffer) < end:
            self._more()
        body = bytes(self.buffer[len(tag) + 8:end])
        del self.buffer[:end]
        return parse(memoryview(body))


def parse(body: memoryview) -> tuple[dict, list[memoryview]]:
    """A message's body as ``(header, buffers)``; WireError when it is not one."""
    size = len(body)
    if size < 4:
        raise WireError("a message without a header")
    (head_size,) = struct.unpack(">I", body[:4])
    if 4 + head_size > size:
        raise WireError("a header longer than its message")
    try:
        header = json.loads(bytes(body[4:4 + head_size]))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise WireError(f"a header that is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise WireError("a header that is not an object")
    sizes = header.get("sizes", [])
    if not isinstance(sizes, list) or not all(isinstance(n, int) and n >= 0 for n in sizes) \
            or 4 + head_size + sum(sizes) != size:
        raise WireError("buffer sizes that do not add up to the message")
    buffers, at = [], 4 + head_size
    for n in sizes:
        buffers.append(body[at:at + n])
        at += n
    return header, buffers
