"""Checkpoint files: exact round trips, atomic writes, refusal to unpickle, pruning."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradproof.train import checkpoint as ckpt
from gradproof.train.checkpoint import (
    CheckpointError,
    CheckpointWarning,
    decode_tree,
    encode_tree,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)


def assert_same_tree(a, b, path="state"):
    """Equal values AND equal types: a tuple stays a tuple, an int key an int, a dtype a dtype."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, path
        assert np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"), path
    elif isinstance(a, dict):
        assert list(a) == list(b), path
        for key in a:
            assert_same_tree(a[key], b[key], f"{path}/{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_tree(x, y, f"{path}/{i}")
    elif isinstance(a, (float, np.floating)) and math.isnan(a):
        assert math.isnan(b), path
    else:
        assert a == b, path


arrays = st.sampled_from([np.float32, np.float64, np.int64, np.uint8, np.bool_]).flatmap(
    lambda dtype: st.builds(
        lambda shape, seed: (np.random.default_rng(seed).standard_normal(shape) * 100)
        .astype(dtype),
        st.lists(st.integers(0, 3), max_size=3).map(tuple),
        st.integers(0, 2**16),
    )
)
leaves = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**130), 2**130), st.floats(allow_nan=True),
    st.text(max_size=8), arrays, st.builds(np.float32, st.floats(width=32)),
)
trees = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(st.text(max_size=6), children, max_size=3),
        st.dictionaries(st.integers(0, 9), children, max_size=3),
    ),
    max_leaves=8,
)


@settings(max_examples=15, deadline=None)
@given(tree=trees)
def test_encode_decode_round_trip_is_exact_through_json_and_npz(tree):
    arrays_out: dict[str, np.ndarray] = {}
    encoded = json.loads(json.dumps(encode_tree(tree, arrays_out, "state")))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays_out)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as npz:
        loaded = {k: npz[k] for k in npz.files}
    assert_same_tree(tree, decode_tree(encoded, loaded))


def test_dict_keys_that_look_like_tags_or_paths_survive():
    tree = {"__array__": 1, "__tuple__": [2], "a/b": np.ones(2), "a": {"b": np.zeros(3)},
            "\x00/é": np.arange(4)}
    arrays_out: dict[str, np.ndarray] = {}
    assert_same_tree(tree, decode_tree(encode_tree(tree, arrays_out, "s"), arrays_out))


def test_objects_that_are_not_plain_data_are_refused():
    with pytest.raises(TypeError, match="cannot checkpoint"):
        encode_tree({"f": print}, {}, "state")
    with pytest.raises(TypeError, match="object arrays"):
        encode_tree(np.array([None]), {}, "state")


def sample_state(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"w": rng.standard_normal((3, 4)).astype(np.float32), "step": 7, "lr": 0.1,
            "rng": np.random.default_rng(seed).bit_generator.state, "betas": (0.9, 0.999)}


def test_save_and_load_give_back_the_state(tmp_path):
    state = sample_state()
    path = save_checkpoint(tmp_path, 3, state)
    assert os.path.basename(path) == "epoch-0003.json"
    assert_same_tree(state, load_checkpoint(path))
    assert latest_checkpoint(tmp_path) == path


def test_only_the_newest_checkpoints_are_kept(tmp_path):
    for epoch in range(1, 5):
        save_checkpoint(tmp_path, epoch, sample_state(epoch), keep_last=2)
    assert sorted(os.listdir(tmp_path)) == [
        "epoch-0003.json", "epoch-0003.npz", "epoch-0004.json", "epoch-0004.npz"]


def test_a_crash_while_saving_leaves_the_previous_checkpoint_and_no_temp_files(tmp_path,
                                                                              monkeypatch):
    good = save_checkpoint(tmp_path, 1, sample_state(1))
    real_replace = os.replace

    def crash_on_json(src, dst):
        if dst.endswith(".json"):
            raise KeyboardInterrupt("killed")
        real_replace(src, dst)

    monkeypatch.setattr(ckpt.os, "replace", crash_on_json)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, 2, sample_state(2))
    monkeypatch.undo()
    assert latest_checkpoint(tmp_path) == good
    assert_same_tree(sample_state(1), load_checkpoint(good))
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".tmp-")]


def test_modified_arrays_are_detected_and_skipped_by_latest(tmp_path):
    good = save_checkpoint(tmp_path, 1, sample_state(1))
    bad = save_checkpoint(tmp_path, 2, sample_state(2))
    with open(bad[:-5] + ".npz", "r+b") as handle:
        handle.seek(-10, os.SEEK_END)
        handle.write(b"0123456789")
    with pytest.raises(CheckpointError, match="do not match the hash"):
        load_checkpoint(bad)
    with pytest.warns(CheckpointWarning, match="skipping damaged checkpoint"):
        assert latest_checkpoint(tmp_path) == good


def test_pickled_arrays_are_refused_even_with_a_valid_hash(tmp_path):
    buffer = io.BytesIO()
    np.savez(buffer, **{"state/x": np.array([{"evil": 1}], dtype=object)})
    payload = buffer.getvalue()
    (tmp_path / "epoch-0001.npz").write_bytes(payload)
    record = {"format": ckpt.FORMAT, "epoch": 1, "arrays": "epoch-0001.npz",
              "sha256": hashlib.sha256(payload).hexdigest(),
              "state": {"x": {"__array__": "state/x"}}}
    record["record_sha256"] = ckpt._record_hash(record)  # a valid pair, but pickled arrays
    (tmp_path / "epoch-0001.json").write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="cannot be read safely"):
        load_checkpoint(tmp_path / "epoch-0001.json")


@pytest.mark.parametrize(
    "content, message",
    [(b"{not json", "not valid JSON"), (b'{"format": "other"}', "is not a gradproof")],
)
def test_unreadable_json_is_a_checkpoint_error(tmp_path, content, message):
    path = tmp_path / "epoch-0001.json"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)
    with pytest.warns(CheckpointWarning, match="skipping damaged checkpoint"):
        assert latest_checkpoint(tmp_path) is None


def test_missing_files_are_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "epoch-0009.json")
    path = save_checkpoint(tmp_path, 1, sample_state())
    os.unlink(path[:-5] + ".npz")
    with pytest.raises(CheckpointError, match="are missing"):
        load_checkpoint(path)
    assert latest_checkpoint(tmp_path / "nothing-here") is None
