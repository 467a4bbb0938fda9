"""The data format between the grading process and the student's process (grade/wire.py)."""

from __future__ import annotations

import json
import os
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gradproof.grade import wire

dtypes = st.sampled_from([np.float64, np.float32, np.int64, np.int32, np.uint8, np.bool_,
                          np.complex128])
arrays = dtypes.flatmap(lambda d: hnp.arrays(d, hnp.array_shapes(min_dims=0, max_dims=3,
                                                                   max_side=4)))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                    st.floats(allow_nan=False), st.text(max_size=8))
values = st.recursive(
    st.one_of(scalars, arrays),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.tuples(inner, inner),
                            st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=12)


def roundtrip(value, handles=None, sent=None):
    encoder = wire.Encoder(handles=handles)
    body = encoder.message({"v": encoder.node(value)})
    header, buffers = wire.parse(memoryview(body))
    decoder = wire.Decoder(buffers, sent=sent,
                           opaque=lambda n: wire.Opaque(n["o"], n.get("x", ""), n.get("n", "")))
    return decoder.value(header["v"]), encoder, decoder


def same(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape \
            and a.tobytes() == b.tobytes()
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@given(values)
def test_plain_values_cross_unchanged(value):
    back, _, _ = roundtrip(value)
    assert same(value, back)


def test_identity_within_a_message_and_write_flags_survive():
    x = np.arange(6.0).reshape(2, 3)
    x.flags.writeable = False
    back, _, _ = roundtrip((x, {"x": x}, [x]))
    assert back[0] is back[1]["x"] is back[2][0]
    assert not back[0].flags.writeable
    assert np.float32(2.5) == roundtrip(np.float32(2.5))[0]
    assert type(roundtrip(np.float32(2.5))[0]) is np.float32


def test_objects_that_cannot_cross_stay_behind_a_handle():
    handles = {}

    class Thing:
        def __repr__(self):
            return "Thing()"

    thing = Thing()
    back, _, _ = roundtrip((1, thing, lambda: 0), handles=handles)
    assert isinstance(back[1], wire.Opaque) and handles[back[1].handle] is thing
    assert "Thing" in back[1].text and isinstance(back[2], wire.Opaque)
    with pytest.raises(wire.WireError):  # the grader's side never sends objects
        wire.Encoder().node(thing)


def test_a_reply_refers_to_what_the_request_sent():
    request = wire.Encoder()
    x = np.ones(3)
    request.node((x, {"mode": "train"}))
    # the student's side sends back token 1 (x) by reference
    reply = wire.Decoder([], sent=request.sent)
    assert reply.value({"k": 1}) is x


def _body(header: dict, *buffers: bytes) -> memoryview:
    header = {**header, "sizes": [len(b) for b in buffers]}
    head = json.dumps(header).encode()
    return memoryview(struct.pack(">I", len(head)) + head + b"".join(buffers))


@pytest.mark.parametrize("node, buffers", [
    ({"a": 0, "y": "|O", "s": [1]}, [b"\0" * 8]),           # object dtype: never
    ({"a": 0, "y": "<f8", "s": [3]}, [b"\0" * 16]),         # bytes do not match the shape
    ({"a": 0, "y": "<f8", "s": [-1]}, [b"\0" * 8]),         # a negative size
    ({"a": 5, "y": "<f8", "s": [1]}, [b"\0" * 8]),          # a buffer that is not there
    ({"a": 0, "y": "[('a', '<f8')]", "s": [1]}, [b"\0" * 8]),  # structured dtype
    ({"k": 0}, []),                                        # a reference to nothing sent
    ({"r": 3}, []),                                        # an alias of nothing
    ({"zz": 1}, []),                                       # an unknown node
    ({"d": [[{"l": []}, 1]]}, []),                         # an unhashable key
    ({"o": 1}, []),                                        # a handle where none may be
])
def test_hostile_nodes_are_wire_errors(node, buffers):
    header, bufs = wire.parse(_body({"v": node}, *buffers))
    with pytest.raises(wire.WireError):
        wire.Decoder(bufs).value(header["v"])


def test_deep_nesting_and_bad_framing_are_wire_errors():
    node: dict = {"l": []}
    for _ in range(wire.MAX_DEPTH + 5):
        node = {"l": [node]}
    header, bufs = wire.parse(_body({"v": node}))
    with pytest.raises(wire.WireError):
        wire.Decoder(bufs).value(header["v"])
    for body in (b"", b"\0\0\0\x09{}", b"\0\0\0\x02[]", _body({"v": 1}, b"abc").tobytes()[:-1]):
        with pytest.raises(wire.WireError):
            wire.parse(memoryview(body))


def test_replies_are_found_after_junk_and_oversized_ones_refused():
    read_fd, write_fd = os.pipe()
    tag = wire.MAGIC + b"n" * (wire.TAG_BYTES - len(wire.MAGIC))
    body = wire.Encoder().message({"ok": True})
    wire.send(write_fd, b"junk " + wire.MAGIC + b"junk" + wire.frame(tag, body))
    reader = wire.ReplyReader(read_fd, max_bytes=1 << 20)
    header, _ = reader.read(tag)
    assert header["ok"] is True and reader.junk == len(b"junk " + wire.MAGIC + b"junk")
    wire.send(write_fd, tag + struct.pack(">Q", 1 << 30))
    with pytest.raises(wire.WireError):
        reader.read(tag)
    os.close(write_fd)
    with pytest.raises(EOFError):
        wire.ReplyReader(read_fd, 1 << 20).read(tag)
    os.close(read_fd)
