"""The table of gradable functions: one :class:`Spec` per CS231n forward (or loss).

A spec says how to call the student's function (its arguments, which of them
are differentiable, how many outputs come before the cache), builds seeded
input sets (:class:`Case`: the notebooks' shapes plus edge cases), and gives the
reference from :mod:`gradproof.nn.functional`. Adding a layer is one entry in
:data:`SPECS` (see docs/grade.md)::

    Spec("affine_forward", ("affine_backward",), ("x", "w", "b"), wrt=(0, 1, 2),
         cases=(Case("notebook shapes", {"N": 4, "D": 6, "M": 5}, _affine_inputs), ...),
         reference=layer_reference(F.affine_forward, F.affine_backward))

Kinds: ``"layer"`` (``forward(*args) -> (*outs, cache)`` and
``backward(*douts, cache) -> grads``), ``"loss"`` (``loss(x, y, ...) -> (loss,
dx)``) and ``"classifier"`` (assignment 1: ``loss(W, X, y, reg) -> (loss, dW)``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..nn import functional as F

__all__ = ["Case", "Variant", "Ref", "Spec", "SPECS", "SPEC_BY_NAME", "ALL_NAMES",
           "layer_reference"]

Builder = Callable[[np.random.Generator, dict], tuple]


@dataclass(frozen=True)
class Case:
    """One seeded input set: ``build(rng, dims)`` returns the forward's arguments.

    ``dims`` names the sizes (``{"N": 4, "D": 6}``), distinct where possible so
    that a shape can be spoken in letters ("(1, C, 1, 1)"). ``backward`` False:
    the forward only (batch norm in test mode: the assignment's backward is the
    training-mode one).
    """

    label: str
    dims: dict[str, int]
    build: Builder
    backward: bool = True


@dataclass(frozen=True)
class Variant:
    """A calling convention that changed over the years; ``note`` says which was used."""

    note: str = ""
    adapt: Callable[[tuple], tuple] | None = None  # the arguments in this convention
    options: dict[str, Any] = field(default_factory=dict)  # for the reference


@dataclass
class Ref:
    """The reference at one input set: its outputs and its vector-Jacobian product."""

    outs: tuple[Any, ...]
    vjp: Callable[[tuple], tuple] | None = None  # douts -> grads in the spec's order
    state: dict[str, Any] = field(default_factory=dict)  # e.g. running statistics


@dataclass(frozen=True)
class Spec:
    """How to grade one CS231n forward (or loss) and its backward functions."""

    forward: str
    backwards: tuple[str, ...]
    args: tuple[str, ...]  # the forward's argument names, in order
    wrt: tuple[int, ...]  # differentiable arguments, in the order the backward returns them
    cases: tuple[Case, ...]
    reference: Callable[..., Ref]  # reference(args, **variant.options) -> Ref
    kind: str = "layer"
    n_outputs: int = 1  # outputs before the cache (lstm_step_forward: next_h, next_c)
    out_names: tuple[str, ...] = ("out",)
    variants: tuple[Variant, ...] = (Variant(),)
    forward_check: Callable | None = None  # replaces the comparison (dropout: random masks)
    state_check: Callable | None = None  # (args after the student's call, ref) -> findings
    forward_hints: tuple[tuple[str, Callable[[tuple], tuple]], ...] = ()  # classic bugs
    small_error_hint: str = ""  # said when every coordinate of a gradient is off a little
    # (args, grads, reference grads, variant options, dims) -> a sentence, or ""
    gradient_hint: Callable[..., str] | None = None
    exact_reference: bool = True  # False: the reference's values are not the only right ones
    seeded: bool = False  # re-seed NumPy's global generator before each call (dropout)

    @property
    def grad_names(self) -> tuple[str, ...]:
        return tuple("d" + self.args[i] for i in self.wrt)

    @property
    def label(self) -> str:
        return self.forward.replace("_forward", "")

    @property
    def functions(self) -> tuple[str, ...]:
        return (self.forward, *self.backwards)


# --------------------------------------------------------------------------------------
# references
def _as_tuple(grads: Any) -> tuple:
    return tuple(grads) if isinstance(grads, (tuple, list)) else (grads,)


def layer_reference(forward: Callable, backward: Callable, n_outputs: int = 1,
                    keep: tuple[int, ...] | None = None) -> Callable[..., Ref]:
    """A :class:`Ref` maker from a gradproof forward/backward with CS231n's conventions.

    ``keep``: which of the reference backward's gradients the spec grades (the
    ones of its ``wrt``); default all.
    """

    def reference(args: tuple, **_: Any) -> Ref:
        result = forward(*args)
        outs, cache = tuple(result[:n_outputs]), result[n_outputs]

        def vjp(douts: tuple) -> tuple:
            # in the reference's own dtypes (the student's outputs may be float64 for float32)
            douts = tuple(np.asarray(d, dtype=np.asarray(o).dtype) for d, o in zip(douts, outs))
            grads = _as_tuple(backward(*douts, cache))
            return grads if keep is None else tuple(grads[i] for i in keep)

        return Ref(outs, vjp)

    return reference


def _norm_reference(forward: Callable, backward: Callable) -> Callable[..., Ref]:
    plain = layer_reference(forward, backward)

    def reference(args: tuple, **_: Any) -> Ref:
        ref = plain(args)  # batch norm writes its running statistics into args[3]
        param = args[3] if len(args) > 3 and isinstance(args[3], dict) else {}
        ref.state = {k: param[k] for k in ("running_mean", "running_var") if k in param}
        return ref

    return reference


def _loss_reference(loss: Callable) -> Callable[..., Ref]:
    def reference(args: tuple, **_: Any) -> Ref:
        value, dx = loss(*args)
        return Ref((value,), lambda douts: (douts[0] * dx,))

    return reference


def _classifier_reference(loss: Callable) -> Callable[..., Ref]:
    """Assignment 1: ``loss(W, X, y, reg)``: mean data loss + reg_factor * reg * sum(W^2)."""

    def reference(args: tuple, reg_factor: float = 1.0) -> Ref:
        W, X, y, reg = args
        value, dscores = loss(X @ W, y)
        value += reg_factor * reg * float(np.sum(W * W))
        dW = (X.T @ dscores + 2 * reg_factor * reg * W).astype(W.dtype)
        return Ref((value,), lambda douts: (douts[0] * dW,))

    return reference


# --------------------------------------------------------------------------------------
# input builders: small shapes (every forward call of a naive loop must be cheap)
def _normal(rng, *shape, scale=1.0, shift=0.0, dtype=np.float64):
    return (shift + scale * rng.standard_normal(shape)).astype(dtype)


def _f32(build: Builder) -> Builder:
    """The same inputs in float32 (integers and dicts untouched)."""

    def build32(rng, dims):
        return tuple(a.astype(np.float32) if isinstance(a, np.ndarray) and a.dtype.kind == "f"
                     else a for a in build(rng, dims))

    return build32


def _affine_inputs(rng, d):
    N, D, M = d["N"], d["D"], d["M"]
    return (_normal(rng, N, 2, D // 2), _normal(rng, D, M, scale=0.5), _normal(rng, M))


def _relu_inputs(rng, d):
    return (_normal(rng, d["N"], d["D"]),)


def _bn_inputs(mode: str, spatial: bool = False) -> Builder:
    def build(rng, d):
        shape = (d["N"], d["C"], d["H"], d["W"]) if spatial else (d["N"], d["D"])
        C = shape[1]
        x = _normal(rng, *shape, scale=3.0, shift=10.0)  # as the notebook: far from 0 mean, 1 var
        gamma, beta = _normal(rng, C, scale=0.5, shift=1.0), _normal(rng, C)
        param: dict[str, Any] = {"mode": mode}
        if mode == "test":
            param["running_mean"] = _normal(rng, C, scale=0.5, shift=10.0)
            param["running_var"] = rng.uniform(8.0, 24.0, C)
        return (x, gamma, beta, param)

    return build


def _ln_inputs(rng, d):
    N, D = d["N"], d["D"]
    return (_normal(rng, N, D, scale=3.0, shift=5.0), _normal(rng, D, scale=0.5, shift=1.0),
            _normal(rng, D), {})


def _gn_inputs(rng, d):
    N, C, H, W, G = d["N"], d["C"], d["H"], d["W"], d["G"]
    gamma = _normal(rng, 1, C, 1, 1, scale=0.5, shift=1.0)
    return (_normal(rng, N, C, H, W, scale=3.0, shift=4.0), gamma, _normal(rng, 1, C, 1, 1),
            G, {})


def _gn_flat(args: tuple) -> tuple:
    x, gamma, beta, G, param = args
    return (x, gamma.reshape(-1), beta.reshape(-1), G, param)


def _dropout_inputs(mode: str, p: float) -> Builder:
    def build(rng, d):
        x = _normal(rng, d["N"], d["D"], shift=10.0)  # away from 0: out / x is the mask
        return (x, {"mode": mode, "p": p, "seed": 123})

    return build


def _conv_inputs(stride: int, pad: int) -> Builder:
    def build(rng, d):
        x = _normal(rng, d["N"], d["C"], d["H"], d["W"])
        w = _normal(rng, d["F"], d["C"], d["HH"], d["WW"], scale=0.5)
        return (x, w, _normal(rng, d["F"]), {"stride": stride, "pad": pad})

    return build


def _pool_inputs(ph: int, pw: int, stride: int) -> Builder:
    def build(rng, d):
        x = _normal(rng, d["N"], d["C"], d["H"], d["W"])
        return (x, {"pool_height": ph, "pool_width": pw, "stride": stride})

    return build


def _scores_inputs(rng, d):
    N, C = d["N"], d["C"]
    return (_normal(rng, N, C, scale=2.0), rng.integers(0, C, N))


def _rnn_step_inputs(lstm: bool) -> Builder:
    def build(rng, d):
        N, D, H = d["N"], d["D"], d["H"]
        G = 4 * H if lstm else H
        x, prev_h = _normal(rng, N, D), _normal(rng, N, H, scale=0.5)
        Wx, Wh = _normal(rng, D, G, scale=0.4), _normal(rng, H, G, scale=0.4)
        b = _normal(rng, G, scale=0.2)
        if lstm:
            return (x, prev_h, _normal(rng, N, H), Wx, Wh, b)
        return (x, prev_h, Wx, Wh, b)

    return build


def _rnn_inputs(lstm: bool) -> Builder:
    def build(rng, d):
        N, T, D, H = d["N"], d["T"], d["D"], d["H"]
        G = 4 * H if lstm else H
        return (_normal(rng, N, T, D), _normal(rng, N, H, scale=0.5),
                _normal(rng, D, G, scale=0.4), _normal(rng, H, G, scale=0.4),
                _normal(rng, G, scale=0.2))

    return build


def _embedding_inputs(rng, d):
    N, T, V, D = d["N"], d["T"], d["V"], d["D"]
    idx = rng.integers(0, V, (N, T))
    idx[0, :2] = idx[-1, -1] = 1  # repeated words: dW must add, not overwrite
    return (idx, _normal(rng, V, D))


def _temporal_affine_inputs(rng, d):
    N, T, D, M = d["N"], d["T"], d["D"], d["M"]
    return (_normal(rng, N, T, D), _normal(rng, D, M, scale=0.5), _normal(rng, M))


def _temporal_loss_inputs(rng, d):
    N, T, V = d["N"], d["T"], d["V"]
    mask = rng.random((N, T)) > 0.3
    mask[0, 0] = True
    return (_normal(rng, N, T, V, scale=2.0), rng.integers(0, V, (N, T)), mask)


def _classifier_inputs(reg: float) -> Builder:
    def build(rng, d):
        N, D, C = d["N"], d["D"], d["C"]
        W = _normal(rng, D, C, scale=0.1)
        return (W, _normal(rng, N, D, scale=2.0), rng.integers(0, C, N), reg)

    return build


# --------------------------------------------------------------------------------------
# checks and hints that need more than a comparison
def _unbiased_norm(axes: tuple[int, ...]) -> Callable[[tuple], tuple]:
    """The forward with the unbiased variance (divide by M - 1): a classic bug."""

    def alt(args: tuple) -> tuple:
        x, gamma, beta = args[:3]
        eps = (args[3] or {}).get("eps", 1e-5) if len(args) > 3 else 1e-5
        xhat = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(
            x.var(axis=axes, ddof=1, keepdims=True) + eps)
        if x.ndim == 4:  # spatial: one gamma per channel
            gamma, beta = gamma.reshape(1, -1, 1, 1), beta.reshape(1, -1, 1, 1)
        return (gamma * xhat + beta,)

    return alt


def _running_stats_check(args: tuple, ref: Ref) -> list[tuple[str, str]]:
    """Batch norm in train mode must update bn_param's running mean and variance."""
    param = args[3]
    if not isinstance(param, dict) or param.get("mode") != "train":
        return []
    found = []
    x = args[0]
    count = x.size // x.shape[1]
    for key in ("running_mean", "running_var"):
        expected = ref.state.get(key)
        got = param.get(key)
        if expected is None:
            continue
        accepted = [expected]
        if key == "running_var":  # from zeros: 0.1 * batch variance; the unbiased one is fine
            accepted.append(expected * count / max(count - 1, 1))
        # (1, C) instead of (C,) is harmless here: test mode broadcasts it the same way
        if got is None or np.size(got) != np.size(expected) or not any(
                np.allclose(np.asarray(got, np.float64).ravel(), a, rtol=1e-4, atol=1e-6)
                for a in accepted):
            found.append(("running-stats",
                          f"bn_param[{key!r}] is not updated in train mode as "
                          f"momentum * {key} + (1 - momentum) * batch statistic "
                          f"(momentum 0.9, starting from zeros): got "
                          f"{_short(got)}, expected {_short(expected)}"))
    return found


def _short(a: Any) -> str:
    if a is None:
        return "None"
    arr = np.asarray(a, dtype=np.float64).ravel()
    body = ", ".join(f"{v:.4g}" for v in arr[:4])
    return f"[{body}{', ...' if arr.size > 4 else ''}]"


def dropout_forward_check(args: tuple, outs: tuple) -> tuple[list[tuple[str, str]], str]:
    """Dropout's output is random: check its structure instead of its values.

    Train mode: every output is 0 or ``x / q`` with one ``q`` (the keep
    probability: ``p`` in CS231n since 2017, ``1 - p`` where ``p`` was the drop
    probability) and about a fraction ``q`` of the units are kept. Test mode:
    ``out == x``. Returns ``(findings, note)``.
    """
    x, param = args
    out = np.asarray(outs[0], dtype=np.float64)
    if out.shape != x.shape:
        return [("shape", f"out has shape {out.shape}, expected {x.shape} (x's shape)")], ""
    if param["mode"] == "test":
        if not np.allclose(out, x, rtol=1e-6, atol=0):
            return [("mismatch", "in test mode dropout must return x unchanged (inverted "
                                 "dropout scales at training time only)")], ""
        return [], ""
    p = float(param["p"])
    kept = out != 0
    frac = float(kept.mean())
    sd = np.sqrt(0.25 / x.size)
    for q, note in ((p, "dropout_param['p'] is the probability of KEEPING a unit (CS231n "
                        "since 2017)"),
                    (1 - p, "dropout_param['p'] is the probability of DROPPING a unit (the "
                            "2016 assignment, and torch)")):
        if abs(frac - q) <= 6 * sd and np.allclose(out[kept], x[kept] / q, rtol=1e-5):
            return [], note
    ratio = out[kept] / x[kept] if kept.any() else np.array([0.0])
    if kept.any() and np.allclose(ratio, 1.0, rtol=1e-6):
        why = ("the kept units are not scaled: inverted dropout divides them by the keep "
               "probability at training time")
    else:
        why = (f"{frac:.0%} of the units are kept and the kept ones are multiplied by "
               f"{np.median(ratio):.4g}; expected a fraction p = {p} (or 1 - p) kept and "
               f"scaled by 1/p (or 1/(1 - p))")
    return [("mismatch", f"train-mode output is not inverted dropout: {why}")], ""


# --------------------------------------------------------------------------------------
# the table
_NORM_HINT = ("the size of eps / (2 var): is eps used in the forward but not in the backward "
              "(or the other way round)?")
_BN_DIMS = {"N": 6, "D": 4}
_SBN_DIMS = {"N": 2, "C": 3, "H": 4, "W": 5}

SPECS: tuple[Spec, ...] = (
    Spec("affine_forward", ("affine_backward",), ("x", "w", "b"), (0, 1, 2), (
        Case("notebook shapes", {"N": 4, "D": 6, "M": 5}, _affine_inputs),
        Case("N = 1", {"N": 1, "D": 4, "M": 3}, _affine_inputs),
        Case("float32", {"N": 3, "D": 8, "M": 5}, _f32(_affine_inputs)),
    ), layer_reference(F.affine_forward, F.affine_backward)),
    Spec("relu_forward", ("relu_backward",), ("x",), (0,), (
        Case("notebook shapes", {"N": 4, "D": 6}, _relu_inputs),
        Case("float32", {"N": 3, "D": 5}, _f32(_relu_inputs)),
    ), layer_reference(F.relu_forward, F.relu_backward)),
    Spec("batchnorm_forward", ("batchnorm_backward", "batchnorm_backward_alt"),
         ("x", "gamma", "beta", "bn_param"), (0, 1, 2), (
             Case("train mode", _BN_DIMS, _bn_inputs("train")),
             Case("test mode", {"N": 3, "D": 5}, _bn_inputs("test"), backward=False),
             Case("float32", {"N": 5, "D": 3}, _f32(_bn_inputs("train"))),
         ), _norm_reference(F.batchnorm_forward, F.batchnorm_backward_alt),
         state_check=_running_stats_check,
         forward_hints=(("the variance is the unbiased one (divided by N - 1); batch norm "
                         "uses the biased variance (divide by N)", _unbiased_norm((0,))),),
         small_error_hint=_NORM_HINT),
    Spec("layernorm_forward", ("layernorm_backward",), ("x", "gamma", "beta", "ln_param"),
         (0, 1, 2), (
             Case("notebook shapes", {"N": 4, "D": 5}, _ln_inputs),
             Case("N = 1", {"N": 1, "D": 6}, _ln_inputs),
             Case("float32", {"N": 3, "D": 4}, _f32(_ln_inputs)),
         ), layer_reference(F.layernorm_forward, F.layernorm_backward),
         forward_hints=(("the variance is the unbiased one (divided by D - 1); layer norm "
                         "uses the biased variance (divide by D)", _unbiased_norm((1,))),),
         small_error_hint=_NORM_HINT),
    Spec("dropout_forward", ("dropout_backward",), ("x", "dropout_param"), (0,), (
        Case("train mode, p = 0.3", {"N": 100, "D": 60}, _dropout_inputs("train", 0.3)),
        Case("train mode, p = 0.75", {"N": 40, "D": 50}, _dropout_inputs("train", 0.75)),
        Case("test mode", {"N": 4, "D": 5}, _dropout_inputs("test", 0.3)),
    ), layer_reference(F.dropout_forward, F.dropout_backward),
         forward_check=dropout_forward_check, exact_reference=False, seeded=True),
    Spec("conv_forward_naive", ("conv_backward_naive",), ("x", "w", "b", "conv_param"),
         (0, 1, 2), (
             Case("stride 1, pad 1 (the notebook's)", {"N": 2, "C": 3, "H": 5, "W": 5, "F": 4,
                                                       "HH": 3, "WW": 3}, _conv_inputs(1, 1)),
             Case("stride 2, pad 0, non-square image", {"N": 2, "C": 2, "H": 7, "W": 5,
                                                        "F": 3, "HH": 3, "WW": 3},
                  _conv_inputs(2, 0)),
             Case("N = 1, non-square image and filter, float32",
                  {"N": 1, "C": 2, "H": 5, "W": 4, "F": 3, "HH": 3, "WW": 2},
                  _f32(_conv_inputs(1, 1))),
         ), layer_reference(F.conv_forward_naive, F.conv_backward_naive)),
    Spec("max_pool_forward_naive", ("max_pool_backward_naive",), ("x", "pool_param"), (0,), (
        Case("2x2, stride 2 (the notebook's)", {"N": 2, "C": 3, "H": 4, "W": 4},
             _pool_inputs(2, 2, 2)),
        Case("overlapping windows: 3x3, stride 2, non-square image",
             {"N": 2, "C": 2, "H": 5, "W": 7}, _pool_inputs(3, 3, 2)),
        Case("N = 1, 2x3 window, stride 1, float32", {"N": 1, "C": 2, "H": 3, "W": 5},
             _f32(_pool_inputs(2, 3, 1))),
    ), layer_reference(F.max_pool_forward_naive, F.max_pool_backward_naive)),
    Spec("spatial_batchnorm_forward", ("spatial_batchnorm_backward",),
         ("x", "gamma", "beta", "bn_param"), (0, 1, 2), (
             Case("train mode", _SBN_DIMS, _bn_inputs("train", spatial=True)),
             Case("test mode", {"N": 2, "C": 4, "H": 3, "W": 2},
                  _bn_inputs("test", spatial=True), backward=False),
             Case("N = 1, float32", {"N": 1, "C": 2, "H": 3, "W": 4},
                  _f32(_bn_inputs("train", spatial=True))),
         ), _norm_reference(F.spatial_batchnorm_forward, F.spatial_batchnorm_backward),
         state_check=_running_stats_check,
         forward_hints=(("the variance is the unbiased one (divided by N*H*W - 1); batch norm "
                         "uses the biased variance", _unbiased_norm((0, 2, 3))),),
         small_error_hint=_NORM_HINT),
    Spec("spatial_groupnorm_forward", ("spatial_groupnorm_backward",),
         ("x", "gamma", "beta", "G", "gn_param"), (0, 1, 2), (
             Case("notebook shapes", {"N": 2, "C": 6, "H": 3, "W": 4, "G": 2}, _gn_inputs),
             Case("G = C (one channel per group)", {"N": 2, "C": 3, "H": 2, "W": 4, "G": 3},
                  _gn_inputs),
             Case("N = 1, float32", {"N": 1, "C": 4, "H": 3, "W": 2, "G": 2}, _f32(_gn_inputs)),
         ), layer_reference(F.spatial_groupnorm_forward, F.spatial_groupnorm_backward),
         variants=(Variant("gamma and beta of shape (1, C, 1, 1) (the 2018-2020 notebooks)"),
                   Variant("gamma and beta of shape (C,)", adapt=_gn_flat)),
         small_error_hint=_NORM_HINT),
    Spec("svm_loss", (), ("x", "y"), (0,), (
        Case("notebook shapes", {"N": 8, "C": 5}, _scores_inputs),
        Case("N = 1", {"N": 1, "C": 4}, _scores_inputs),
        Case("float32", {"N": 6, "C": 3}, _f32(_scores_inputs)),
    ), _loss_reference(F.svm_loss), kind="loss", out_names=("loss",)),
    Spec("softmax_loss", (), ("x", "y"), (0,), (
        Case("notebook shapes", {"N": 8, "C": 5}, _scores_inputs),
        Case("N = 1", {"N": 1, "C": 4}, _scores_inputs),
        Case("float32", {"N": 6, "C": 3}, _f32(_scores_inputs)),
    ), _loss_reference(F.softmax_loss), kind="loss", out_names=("loss",)),
    Spec("rnn_step_forward", ("rnn_step_backward",), ("x", "prev_h", "Wx", "Wh", "b"),
         (0, 1, 2, 3, 4), (
             Case("notebook shapes", {"N": 3, "D": 4, "H": 5}, _rnn_step_inputs(False)),
             Case("N = 1, float32", {"N": 1, "D": 3, "H": 2}, _f32(_rnn_step_inputs(False))),
         ), layer_reference(F.rnn_step_forward, F.rnn_step_backward),
         out_names=("next_h",)),
    Spec("rnn_forward", ("rnn_backward",), ("x", "h0", "Wx", "Wh", "b"), (0, 1, 2, 3, 4), (
        Case("notebook shapes", {"N": 2, "T": 3, "D": 4, "H": 5}, _rnn_inputs(False)),
        Case("T = 1", {"N": 3, "T": 1, "D": 2, "H": 4}, _rnn_inputs(False)),
        Case("float32", {"N": 2, "T": 4, "D": 3, "H": 5}, _f32(_rnn_inputs(False))),
    ), layer_reference(F.rnn_forward, F.rnn_backward), out_names=("h",)),
    Spec("word_embedding_forward", ("word_embedding_backward",), ("x", "W"), (1,), (
        Case("repeated words", {"N": 2, "T": 4, "V": 5, "D": 3}, _embedding_inputs),
        Case("float32", {"N": 3, "T": 2, "V": 4, "D": 5}, _f32(_embedding_inputs)),
    ), layer_reference(F.word_embedding_forward, F.word_embedding_backward)),
    Spec("temporal_affine_forward", ("temporal_affine_backward",), ("x", "w", "b"), (0, 1, 2), (
        Case("notebook shapes", {"N": 2, "T": 3, "D": 4, "M": 5}, _temporal_affine_inputs),
        Case("T = 1, float32", {"N": 3, "T": 1, "D": 2, "M": 4},
             _f32(_temporal_affine_inputs)),
    ), layer_reference(F.temporal_affine_forward, F.temporal_affine_backward)),
    Spec("temporal_softmax_loss", (), ("x", "y", "mask"), (0,), (
        Case("masked steps", {"N": 3, "T": 4, "V": 5}, _temporal_loss_inputs),
        Case("T = 1", {"N": 4, "T": 1, "V": 3}, _temporal_loss_inputs),
    ), _loss_reference(F.temporal_softmax_loss), kind="loss", out_names=("loss",)),
    Spec("lstm_step_forward", ("lstm_step_backward",),
         ("x", "prev_h", "prev_c", "Wx", "Wh", "b"), (0, 1, 2, 3, 4, 5), (
             Case("notebook shapes", {"N": 3, "D": 4, "H": 5}, _rnn_step_inputs(True)),
             Case("N = 1, float32", {"N": 1, "D": 3, "H": 2}, _f32(_rnn_step_inputs(True))),
         ), layer_reference(F.lstm_step_forward, F.lstm_step_backward, n_outputs=2),
         n_outputs=2, out_names=("next_h", "next_c")),
    Spec("lstm_forward", ("lstm_backward",), ("x", "h0", "Wx", "Wh", "b"), (0, 1, 2, 3, 4), (
        Case("notebook shapes", {"N": 2, "T": 3, "D": 4, "H": 5}, _rnn_inputs(True)),
        Case("T = 1", {"N": 3, "T": 1, "D": 2, "H": 4}, _rnn_inputs(True)),
        Case("float32", {"N": 2, "T": 2, "D": 3, "H": 4}, _f32(_rnn_inputs(True))),
    ), layer_reference(F.lstm_forward, F.lstm_backward), out_names=("h",)),
)

_REG_VARIANTS = (Variant("regularization reg * sum(W**2) (gradient 2 * reg * W)"),
                 Variant("regularization 0.5 * reg * sum(W**2) (gradient reg * W; before 2017)",
                         options={"reg_factor": 0.5}))


def _classifier_hint(args: tuple, grads: tuple, ref_grads: tuple, options: dict,
                     dims: dict) -> str:
    """dW = a * (data term) + b * reg * W: which of the two is off, and by how much."""
    from .findings import name_factor

    W, _, _, reg = args
    g = np.asarray(grads[0], np.float64).ravel()
    c = options.get("reg_factor", 1.0)
    data = np.asarray(ref_grads[0], np.float64).ravel() - 2 * c * reg * W.ravel()
    columns = [data, reg * W.ravel()] if reg else [data]
    basis = np.stack(columns, axis=1)
    coef, *_ = np.linalg.lstsq(basis, g, rcond=None)
    if np.linalg.norm(basis @ coef - g) > 1e-6 * np.linalg.norm(g):
        return ""
    words = []
    if abs(coef[0] - 1) > 1e-3:
        words.append(f"the data term of dW is off: {name_factor(coef[0], dims)}")
    if reg and abs(coef[1] - 2 * c) > 1e-3:
        loss_words = "reg * sum(W**2)" if c == 1 else f"{c:g} * reg * sum(W**2)"
        words.append(f"the regularization term of dW is {coef[1]:.3g} * reg * W; the "
                     f"gradient of the loss's {loss_words} is {2 * c:g} * reg * W")
    return "; ".join(words)


def _classifier(name: str, loss: Callable) -> Spec:
    return Spec(name, (), ("W", "X", "y", "reg"), (0,), (
        Case("notebook shapes, reg = 0.1", {"N": 12, "D": 7, "C": 4}, _classifier_inputs(0.1)),
        Case("no regularization", {"N": 9, "D": 5, "C": 3}, _classifier_inputs(0.0)),
        Case("N = 1", {"N": 1, "D": 6, "C": 5}, _classifier_inputs(0.5)),
    ), _classifier_reference(loss), kind="classifier", out_names=("loss",),
        variants=_REG_VARIANTS, gradient_hint=_classifier_hint)


SPECS = SPECS + (
    _classifier("svm_loss_naive", F.svm_loss),
    _classifier("svm_loss_vectorized", F.svm_loss),
    _classifier("softmax_loss_naive", F.softmax_loss),
    _classifier("softmax_loss_vectorized", F.softmax_loss),
)

# every gradable function name -> (its spec, its role: "forward" or the backward's name)
SPEC_BY_NAME: dict[str, Spec] = {name: s for s in SPECS for name in s.functions}
ALL_NAMES: tuple[str, ...] = tuple(SPEC_BY_NAME)
