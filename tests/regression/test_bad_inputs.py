"""Bad input to every public entry point gets a gradproof error that names the argument.

Issue 14 ("nothing lost, nothing silent") tried 2,836 bad inputs as a user
would: some were accepted silently, some got a raw NumPy/Python error from deep
inside, some ran away. Every case it listed is a row below (an explicit table),
and hypothesis draws more of the same kinds (dtypes, option keys, counts).
A row passes when the call raises a :class:`gradproof.errors.GradproofError`
subclass of the expected type whose message contains the expected text (which
names the argument); rows that must *work* (an empty batch, a 0-d input) say so.
The time budget is tested with a sleeping forward and a forward that never
returns; checkpoints have their own tests in ``tests/train/test_resume_damaged.py``.
"""

from __future__ import annotations

import textwrap
import time
import warnings
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradproof
import gradproof.nn as nn
import gradproof.nn.functional as F
from gradproof import optim
from gradproof.cli import main
from gradproof.errors import CostWarning, GradproofError, InputError, InputTypeError
from gradproof.train import Trainer


def _randn(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


X, W, B = _randn(4, 5), _randn(5, 3, seed=1), _randn(3, seed=2)
IMG, FILT, FB = _randn(2, 3, 5, 5), _randn(4, 3, 3, 3, seed=1), _randn(4, seed=2)
SEQ, H0 = _randn(2, 3, 4), _randn(2, 5, seed=1)
MHA = [_randn(4, 4, seed=i) for i in range(4)] + [_randn(4, seed=i) for i in range(4)]


def _rnn_cache():
    return F.rnn(SEQ, H0, _randn(4, 5), _randn(5, 5), _randn(5))[1]


def _lstm_cache():
    return F.lstm(SEQ, H0, _randn(4, 20), _randn(5, 20), _randn(20))[1]


def _adam_state(mutate: Callable[[dict], None]):
    model = nn.Linear(3, 4, rng=0)
    adam = optim.Adam(model.parameters())
    for p in model.parameters():
        p.grad[...] = 1.0
    adam.step()
    state = adam.state_dict()
    state = {"hyper": state["hyper"], "arrays": dict(state["arrays"])}
    mutate(state["arrays"])
    return lambda: optim.Adam(model.parameters()).load_state_dict(state)


def _nan_step():
    model = nn.Linear(3, 4, rng=0)
    sgd = optim.SGD(model.parameters(), lr=0.1)
    model.weight.grad[1, 2] = np.inf
    sgd.step()


def _trainer(**options):
    model = nn.Linear(3, 4, rng=0)
    optimizer = options.pop("optimizer", None) or optim.SGD(model.parameters(), lr=0.1)
    return Trainer(model, optimizer, progress=False, **options)


def _check(**options):
    return gradproof.check_vjp(F.affine, F.affine_backward, X, W, B, **options)


def _model_check(x, y):
    return gradproof.check_model(nn.MLP(5, [4], 3, rng=0), x, y)


X_NAN = X.copy()
X_NAN[1, 2] = np.nan

# name -> (call, error type, text the message must contain)
BAD: dict[str, tuple[Callable[[], object], type[GradproofError], str]] = {
    # --- silent: float16 / longdouble (never advise float16) ---------------------------------
    "affine x float16": (lambda: F.affine(X.astype(np.float16), W, B), InputTypeError,
                         "x must be a float32 or float64"),
    "affine w longdouble": (lambda: F.affine(X, W.astype(np.longdouble), B), InputTypeError,
                            "w must be a float32 or float64"),
    "conv2d x float16": (lambda: F.conv2d(IMG.astype(np.float16), FILT, FB), InputTypeError,
                         "x.astype(np.float32)"),
    "conv2d w float16": (lambda: F.conv2d(IMG, FILT.astype(np.float16), FB), InputTypeError,
                         "w.astype(np.float32)"),
    "Linear x float16": (lambda: nn.Linear(5, 3).forward(X.astype(np.float16)), InputTypeError,
                         "x must be float32 or float64"),
    # --- silent: option dicts and flags ------------------------------------------------------
    "bn_param typo": (lambda: F.batchnorm(X, np.ones(5), np.zeros(5),
                                          {"mode": "train", "momuntum": 0.5}),
                      InputError, "did you mean 'momentum'"),
    "bn_param unbiased not bool": (lambda: F.batchnorm(X, np.ones(5), np.zeros(5),
                                                       {"mode": "train",
                                                        "unbiased_running_var": "yes"}),
                                   InputTypeError, "bn_param['unbiased_running_var']"),
    "ln_param typo": (lambda: F.layernorm(X, np.ones(5), np.zeros(5), {"epsilon": 1e-5}),
                      InputError, "ln_param has an unknown key 'epsilon'"),
    "gn_param typo": (lambda: F.groupnorm(IMG[:, :2], np.ones(2), np.zeros(2), 2, {"esp": 1}),
                      InputError, "did you mean 'eps'"),
    "dropout_param typo": (lambda: F.dropout(X, {"p_drop": 0.5, "mode": "train", "sead": 1}),
                           InputError, "did you mean 'seed'"),
    "conv_param typo": (lambda: F.conv_forward_fast(IMG, FILT, FB, {"stride": 1, "padd": 1}),
                        InputError, "did you mean 'pad'"),
    "pool_param typo": (lambda: F.max_pool_forward_fast(IMG, {"pool_height": 2,
                                                              "pool_widht": 2, "stride": 2}),
                        InputError, "did you mean 'pool_width'"),
    "sdpa causal='yes'": (lambda: F.scaled_dot_product_attention(SEQ, SEQ, SEQ, causal="yes"),
                          InputTypeError, "causal must be True or False"),
    "mha causal='yes'": (lambda: F.multi_head_attention(SEQ, *MHA, 2, "yes"), InputTypeError,
                         "causal must be True or False"),
    "MultiHeadAttention causal='yes'": (lambda: nn.MultiHeadAttention(4, 2, causal="yes"),
                                        InputTypeError, "causal"),
    "TransformerBlock causal=1": (lambda: nn.TransformerBlock(4, 2, causal=1), InputTypeError,
                                  "causal"),
    "Linear bias='no'": (lambda: nn.Linear(3, 4, bias="no"), InputTypeError, "bias must be"),
    "Conv2d input_grad='no'": (lambda: nn.Conv2d(3, 4, 3, input_grad="no"), InputTypeError,
                               "input_grad"),
    "MLP input_grad=1": (lambda: nn.MLP(3, [4], 2, input_grad=1), InputTypeError, "input_grad"),
    "Module.train('no')": (lambda: nn.Linear(3, 4).train("no"), InputTypeError, "mode"),
    "Trainer hooks=[3, 'x']": (lambda: _trainer(hooks=[3, "x"]), InputTypeError, "hooks[0]"),
    "Trainer hooks=a hook": (lambda: _trainer(hooks=gradproof.train.EpochLogger()),
                             InputTypeError, "hooks=[hook]"),
    "Trainer drop_last='yes'": (lambda: _trainer(drop_last="yes"), InputTypeError, "drop_last"),
    "SGD nesterov=1": (lambda: optim.SGD(nn.Linear(3, 4).parameters(), momentum=0.9,
                                         nesterov=1), InputTypeError, "nesterov"),
    "Adam amsgrad typo": (lambda: optim.Adam(nn.Linear(3, 4).parameters(), amsgard=True),
                          InputTypeError, "did you mean 'amsgrad'"),
    "SGD on_nonfinite": (lambda: optim.SGD(nn.Linear(3, 4).parameters(), on_nonfinite="warn"),
                         InputError, "on_nonfinite"),
    # --- silent: batch norm, losses ----------------------------------------------------------
    "batchnorm empty batch": (lambda: F.batchnorm(np.zeros((0, 5)), np.ones(5), np.zeros(5),
                                                  {"mode": "train"}),
                              InputError, "empty batch"),
    "batchnorm negative running_var": (
        lambda: F.batchnorm(X, np.ones(5), np.zeros(5),
                            {"mode": "test", "running_mean": np.zeros(5),
                             "running_var": -np.ones(5)}),
        InputError, "bn_param['running_var'] must be finite and non-negative"),
    "temporal_softmax_loss NaN": (
        lambda: F.temporal_softmax_loss(np.full((2, 3, 4), np.nan), np.zeros((2, 3), int)),
        InputError, "x contains NaN"),
    # --- silent: optimizers ------------------------------------------------------------------
    "Adam moments deleted": (_adam_state(lambda a: a.pop("0.exp_avg")), InputError,
                             "lacks '0.exp_avg'"),
    "Adam negative exp_avg_sq": (_adam_state(lambda a: a.__setitem__("1.exp_avg_sq",
                                                                      -np.ones(4))),
                                 InputError, "arrays['1.exp_avg_sq'] must be finite and >= 0"),
    "SGD step with Inf gradient": (_nan_step, InputError, "gradient of parameter 0"),
    "Trainer with another model's optimizer": (
        lambda: _trainer(optimizer=optim.SGD(nn.Linear(3, 4).parameters(), lr=0.1)),
        InputError, "is not a parameter of model"),
    # --- unclear: sequence backwards, shapes, zero sizes -------------------------------------
    "rnn_backward(None, cache)": (lambda: F.rnn_backward(None, _rnn_cache()), InputTypeError,
                                  "dh must be a float NumPy array"),
    "rnn_backward(lstm's cache)": (lambda: F.rnn_backward(_randn(2, 3, 5), _lstm_cache()),
                                   InputError, "use lstm_backward()"),
    "lstm_backward(affine's cache)": (lambda: F.lstm_backward(_randn(2, 3, 5),
                                                              F.affine(X, W, B)[1]),
                                      InputTypeError, "cache must be the cache returned by lstm"),
    "affine_backward(embedding's cache)": (
        lambda: F.affine_backward(_randn(1, 2, 4), F.embedding(np.array([[0, 1]]), W)[1]),
        InputTypeError, "cache must be the (x, w, b) tuple returned by affine()"),
    "embedding_backward(affine's cache)": (
        lambda: F.embedding_backward(_randn(4, 3), F.affine(X, W, B)[1]), InputTypeError,
        "returned by embedding()"),
    "affine(x, w, b[0])": (lambda: F.affine(X, W, B[0]), InputTypeError,
                           "b must be a float32 or float64 NumPy array, got the NumPy scalar"),
    "conv2d zero-size kernel": (lambda: F.conv2d(IMG, np.ones((4, 3, 0, 0)), FB), InputError,
                                "w must have shape (F, C, HH, WW) with at least one filter"),
    "conv2d F=0": (lambda: F.conv2d(IMG, np.ones((0, 3, 3, 3)), np.ones(0)), InputError,
                   "F >= 1"),
    "conv2d C=0": (lambda: F.conv2d(np.ones((2, 0, 5, 5)), np.ones((4, 0, 3, 3)), FB),
                   InputError, "x must have shape (N, C, H, W) with C >= 1"),
    "groupnorm gamma of 3 channels": (
        lambda: F.groupnorm(_randn(2, 4, 3, 3, 3), np.ones((1, 3, 1, 1)), np.zeros(4), 2),
        InputError, "gamma must hold one value per channel of x"),
    # --- unclear: the checker's arguments ----------------------------------------------------
    "check_vjp seed=-1": (lambda: _check(seed=-1), InputError, "seed must be None or an int"),
    "check_vjp step='a'": (lambda: _check(step="a"), InputTypeError, "step must be"),
    "check_vjp step=2": (lambda: _check(step=2.0), InputError, "step must be"),
    "check_vjp max_evals=None": (lambda: _check(max_evals=None), InputTypeError, "max_evals"),
    "check_vjp wrt=1.5": (lambda: _check(wrt=1.5), InputTypeError, "wrt must be"),
    "check_vjp executor='pool'": (lambda: _check(executor="pool"), InputTypeError,
                                  "executor must be a concurrent.futures.Executor"),
    "check_vjp backward='oops'": (lambda: gradproof.check_vjp(F.affine, "oops", X, W, B),
                                  InputTypeError, "backward must be callable"),
    "check_vjp timeout=0": (lambda: _check(timeout=0), InputError, "timeout must be"),
    "check_vjp force_full='yes'": (lambda: _check(force_full="yes"), InputTypeError,
                                   "force_full"),
    "check_model label out of range": (lambda: _model_check(X, np.array([0, 1, 2, 7])),
                                       InputError, "y must hold class labels"),
    "check_model NaN in x": (lambda: _model_check(X_NAN, np.array([0, 1, 2, 1])), InputError,
                             "x contains NaN at index (1, 2)"),
    "Linear(10**6, 10**6)": (lambda: nn.Linear(10**6, 10**6), InputError,
                             "Linear(1000000, 1000000): its parameters"),
    # --- runaway ------------------------------------------------------------------------------
    "check_vjp n_directions=10**9": (lambda: _check(n_directions=10**9), InputError,
                                     "n_directions must be a positive int <= 1000"),
    "check_vjp mode='full' on 300x300": (
        lambda: gradproof.check_vjp(F.relu, F.relu_backward, _randn(300, 300), mode="full"),
        InputError, "force_full=True"),
    "load_mnist1d(num_train=10**9)": (lambda: gradproof.data.load_mnist1d(num_train=10**9),
                                      InputError, "num_train must be at most"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_raises_a_gradproof_error_naming_the_argument(case):
    call, error, text = BAD[case]
    with pytest.raises(error) as info:
        call()
    assert text in str(info.value), str(info.value)
    assert "float16)" not in str(info.value)  # never advise casting to float16


# --- hypothesis: more of the same kinds -----------------------------------------------------
LAYERS: dict[str, tuple[Callable, tuple]] = {
    "affine": (F.affine, (X, W, B)),
    "relu": (F.relu, (X,)),
    "gelu": (F.gelu, (X,)),
    "softmax_loss": (F.softmax_loss, (X, np.array([0, 1, 2, 3]))),
    "layernorm": (F.layernorm, (X, np.ones(5), np.zeros(5))),
    "batchnorm": (F.batchnorm, (X, np.ones(5), np.zeros(5), {"mode": "train"})),
    "conv2d": (F.conv2d, (IMG, FILT, FB)),
    "max_pool2d": (F.max_pool2d, (IMG,)),
    "rnn": (F.rnn, (SEQ, H0, _randn(4, 5), _randn(5, 5), _randn(5))),
    "scaled_dot_product_attention": (F.scaled_dot_product_attention, (SEQ, SEQ, SEQ)),
    "dropout": (F.dropout, (X, {"p_drop": 0.5, "mode": "train", "seed": 0})),
}


@settings(max_examples=60, deadline=None)
@given(layer=st.sampled_from(sorted(LAYERS)), dtype=st.sampled_from([np.float16, np.longdouble]),
       data=st.data())
def test_layers_refuse_float16_and_longdouble_naming_the_argument(layer, dtype, data):
    forward, args = LAYERS[layer]
    floats = [i for i, a in enumerate(args) if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    which = data.draw(st.sampled_from(floats))
    bad = list(args)
    bad[which] = args[which].astype(dtype)
    with pytest.raises(InputTypeError, match=r"float32 or float64") as info:
        forward(*bad)
    assert "float16)" not in str(info.value)


OPTION_DICTS = {
    "bn_param": (lambda p: F.batchnorm(X, np.ones(5), np.zeros(5), {"mode": "train", **p}),
                 ("mode", "eps", "momentum", "running_mean", "running_var",
                  "unbiased_running_var")),
    "dropout_param": (lambda p: F.dropout(X, {"p_drop": 0.5, "mode": "train", **p}),
                      ("p_drop", "p_keep", "p", "mode", "seed", "rng")),
    "conv_param": (lambda p: F.conv_forward_fast(IMG, FILT, FB, {"stride": 1, **p}),
                   ("stride", "pad")),
    "pool_param": (lambda p: F.max_pool_forward_fast(IMG, {"pool_height": 2, **p}),
                   ("pool_height", "pool_width", "stride")),
    "ln_param": (lambda p: F.layernorm(X, np.ones(5), np.zeros(5), p), ("eps", "mode")),
}


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(OPTION_DICTS)),
       key=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12))
def test_unknown_option_keys_are_errors_naming_the_key(name, key):
    call, allowed = OPTION_DICTS[name]
    if key in allowed:
        return
    with pytest.raises(InputError, match=f"{name} has an unknown key {key!r}"):
        call({key: 1})


BAD_COUNTS = st.one_of(st.integers(max_value=0), st.integers(min_value=1001, max_value=10**12),
                       st.floats(allow_nan=True), st.text(max_size=3), st.none(),
                       st.booleans())


@settings(max_examples=60, deadline=None)
@given(option=st.sampled_from(["n_directions", "max_evals", "seed", "step", "timeout"]),
       value=BAD_COUNTS)
def test_check_vjp_counts_and_numbers_are_validated_naming_the_option(option, value):
    valid = {
        "n_directions": lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 1000,
        "max_evals": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
        "seed": lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0),
        "step": lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)
                                        and 0 < v < 1),
        "timeout": lambda v: v is None or (isinstance(v, (int, float))
                                           and not isinstance(v, bool) and 0 < v < np.inf),
    }[option]
    if valid(value):
        return
    with pytest.raises((InputError, InputTypeError), match=option):
        _check(**{option: value})


# --- rows that must work: an empty batch, a 0-d input ----------------------------------------
def test_an_empty_batch_flows_through_affine_conv_pooling_group_norm_and_flatten():
    out, cache = F.affine(np.zeros((0, 2, 3)), _randn(6, 4), _randn(4))
    assert out.shape == (0, 4)
    assert [g.shape for g in F.affine_backward(np.zeros((0, 4)), cache)] == [(0, 2, 3), (6, 4),
                                                                              (4,)]
    out, _ = F.groupnorm(np.zeros((0, 4, 3, 3)), np.ones(4), np.zeros(4), 2)
    assert out.shape == (0, 4, 3, 3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 2))
    assert model.forward(np.zeros((0, 2, 3))).shape == (0, 2)
    out, cache = F.conv2d(np.zeros((0, 3, 5, 5)), FILT, FB)
    assert out.shape == (0, 4, 3, 3) and F.conv2d_backward(out, cache)[0].shape == (0, 3, 5, 5)
    out, cache = F.max_pool2d(np.zeros((0, 3, 4, 4)))
    assert F.max_pool2d_backward(out, cache).shape == (0, 3, 4, 4)
    assert F.relu(np.zeros((0, 3)))[0].shape == (0, 3)


def test_group_norm_takes_a_cs231n_gamma_for_a_5d_input():
    out, cache = F.groupnorm(_randn(2, 4, 3, 3, 3), np.ones((1, 4, 1, 1)), np.zeros((1, 4, 1, 1)),
                             2)
    dx, dgamma, dbeta = F.groupnorm_backward(np.ones_like(out), cache)
    assert dgamma.shape == dbeta.shape == (1, 4, 1, 1)


@pytest.mark.parametrize("name", ["relu", "gelu", "sigmoid", "tanh", "softplus"])
def test_a_0d_input_to_an_activation_is_proven(name):
    forward, backward = getattr(F, name), getattr(F, f"{name}_backward")
    assert isinstance(forward(np.array(0.7))[0], np.ndarray)
    assert gradproof.check_vjp(forward, backward, np.array(0.7)).verdict == "ok"


# --- silent results that are now failures or inconclusive -------------------------------------
def test_a_forward_with_only_integer_or_boolean_outputs_fails_the_check():
    for out in (lambda x: (x > 0).astype(np.int64), lambda x: x > 0):
        report = gradproof.check_vjp(lambda x, out=out: (out(x), x), lambda d, x: x * 0, X)
        assert report.verdict == "failed"
        assert "forward must return a float output" in report.problems[0]


def test_integer_gradients_are_a_dtype_failure():
    report = gradproof.check_vjp(lambda x: (2 * x, x), lambda d, x: (2 * d).astype(int), X)
    assert report.verdict == "failed"
    assert any(p.kind == "dtype" for p in report.problems)


def test_a_backward_returning_none_for_every_float_input_is_not_a_proof():
    report = gradproof.check_vjp(F.affine, lambda dout, cache: (None, None, None), X, W, B)
    assert report.verdict == "inconclusive"
    assert {r.status for r in report.inputs} == {"not checked"}


def test_user_code_calling_sys_exit_is_an_error_not_a_success(tmp_path):
    module = tmp_path / "exits.py"
    module.write_text(textwrap.dedent("""
        import sys
        def f(x):
            sys.exit(0)
        def f_backward(dout, cache):
            return dout
        def g(x):
            return x * 2, x
        def g_backward(dout, x):
            sys.exit(0)
    """))
    for target in ("f", "g"):
        report = gradproof.check_vjp(*_load(module, target), X)
        assert report.verdict == "failed" and "sys.exit(0)" in report.problems[0]
        assert main(["check", f"{module}:{target}", "-i", "x=3,4"]) not in (0, None)
    importing = tmp_path / "exits_on_import.py"
    importing.write_text("import sys\nsys.exit(0)\ndef f(x):\n    return x, x\n")
    assert main(["check", f"{importing}:f", "-i", "x=3,4"]) not in (0, None)


def _load(path, name):
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    return namespace[name], namespace[f"{name}_backward"]


def test_gradproof_train_refuses_bad_counts_naming_the_option(capsys):
    for option, value in (("--epochs", "-1"), ("--batch-size", "0"), ("--seed", "-1")):
        with pytest.raises(SystemExit) as info:
            main(["train", "mlp", "--data", "spiral", option, value])
        assert info.value.code == 2
        assert f"argument {option}" in capsys.readouterr().err


def test_a_garbage_data_file_is_named(tmp_path, capsys):
    path = tmp_path / "data.npz"
    for content in (b"", b"garbage, not a zip", b"PK\x03\x04truncated"):
        path.write_bytes(content)
        assert main(["train", "mlp", "--data", str(path)]) == 2
        assert "data file" in capsys.readouterr().err


def test_mode_full_above_the_warning_threshold_says_what_it_costs():
    with pytest.warns(CostWarning, match="forward calls"):
        gradproof.check_vjp(F.relu, F.relu_backward, _randn(80, 80), mode="full", timeout=0.5)


# --- the time budget ----------------------------------------------------------------------------
def _sleepy_affine(x, w, b):
    time.sleep(0.03)
    return F.affine(x, w, b)


def test_a_spent_time_budget_leaves_the_inputs_inconclusive_with_the_reason():
    report = gradproof.check_vjp(_sleepy_affine, F.affine_backward, X, W, B, timeout=0.5)
    assert report.verdict == "inconclusive"
    for result in report.inputs:
        assert result.verdict == "inconclusive"
        assert result.reason.startswith("time budget spent after ")
        assert result.reason.endswith(" forward calls")
    assert any("time budget spent" in note for note in report.notes)


def test_a_forward_that_never_returns_is_interrupted_by_the_time_budget():
    calls = {"n": 0, "finished": False}

    def hangs_from_the_third_call(x):
        calls["n"] += 1
        if calls["n"] >= 3:
            time.sleep(3600)  # interrupted by SIGALRM long before
            calls["finished"] = True
        return F.relu(x)

    from gradproof.check.calls import _alarm_usable

    if not _alarm_usable():  # pragma: no cover - Windows, a thread: checked between calls only
        pytest.skip("a forward that never returns is interrupted on POSIX, in the main thread")
    report = gradproof.check_vjp(hangs_from_the_third_call, F.relu_backward, X, timeout=0.5)
    assert report.verdict == "inconclusive" and not calls["finished"]
    assert report.inputs[0].reason.startswith("time budget spent after")


def test_gradproof_check_timeout_exits_inconclusive(tmp_path, capsys):
    module = tmp_path / "slow.py"
    module.write_text(textwrap.dedent("""
        import time
        import numpy as np
        def f(x):
            time.sleep(0.05)
            return np.tanh(x), x
        def f_backward(dout, x):
            return dout * (1 - np.tanh(x) ** 2)
    """))
    assert main(["check", f"{module}:f", "-i", "x=3,4", "--timeout", "0.5"]) == 3
    assert "time budget spent" in capsys.readouterr().out


def test_a_check_within_its_budget_is_unaffected():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _check(timeout=60).verdict == "ok"
