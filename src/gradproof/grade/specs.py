"""The table of gradable functions: one :class:`Spec` per CS231n forward (or loss).

A spec says how to call the student's function (its arguments, which of them
are differentiable, how many outputs come before the cache), builds seeded
input sets (:class:`Case`: the notebooks' shapes plus edge cases), and gives the
reference from :mod:`gradproof.nn.functional`. Adding a layer is one entry in
:data:`SPECS` (see docs/grade.md)::

    Spec("affine_forward", ("affine_backward",), ("x", "w", "b"), wrt=(0, 1, 2),
         cases=(Case("notebook shapes", {"N": 4, "D": 6, "M": 5}, inputs.affine_inputs), ...),
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
from . import inputs
from . import layer_checks as checks

__all__ = ["Case", "Variant", "Ref", "Spec", "SPECS", "SPEC_BY_NAME", "ALL_NAMES",
           "layer_reference"]


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
    build: inputs.Builder
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
# the table
_NORM_HINT = ("the size of eps / (2 var): is eps used in the forward but not in the backward "
              "(or the other way round)?")
_BN_DIMS = {"N": 6, "D": 4}
_SBN_DIMS = {"N": 2, "C": 3, "H": 4, "W": 5}

SPECS: tuple[Spec, ...] = (
    Spec("affine_forward", ("affine_backward",), ("x", "w", "b"), (0, 1, 2), (
        Case("notebook shapes", {"N": 4, "D": 6, "M": 5}, inputs.affine_inputs),
        Case("N = 1", {"N": 1, "D": 4, "M": 3}, inputs.affine_inputs),
        Case("float32", {"N": 3, "D": 8, "M": 5}, inputs.f32(inputs.affine_inputs)),
    ), layer_reference(F.affine_forward, F.affine_backward)),
    Spec("relu_forward", ("relu_backward",), ("x",), (0,), (
        Case("notebook shapes", {"N": 4, "D": 6}, inputs.relu_inputs),
        Case("float32", {"N": 3, "D": 5}, inputs.f32(inputs.relu_inputs)),
    ), layer_reference(F.relu_forward, F.relu_backward)),
    Spec("batchnorm_forward", ("batchnorm_backward", "batchnorm_backward_alt"),
         ("x", "gamma", "beta", "bn_param"), (0, 1, 2), (
             Case("train mode", _BN_DIMS, inputs.bn_inputs("train")),
             Case("test mode", {"N": 3, "D": 5}, inputs.bn_inputs("test"), backward=False),
             Case("float32", {"N": 5, "D": 3}, inputs.f32(inputs.bn_inputs("train"))),
         ), _norm_reference(F.batchnorm_forward, F.batchnorm_backward_alt),
         state_check=checks.running_stats_check,
         forward_hints=(("the variance is the unbiased one (divided by N - 1); batch norm "
                         "uses the biased variance (divide by N)", checks.unbiased_norm((0,))),),
         small_error_hint=_NORM_HINT),
    Spec("layernorm_forward", ("layernorm_backward",), ("x", "gamma", "beta", "ln_param"),
         (0, 1, 2), (
             Case("notebook shapes", {"N": 4, "D": 5}, inputs.ln_inputs),
             Case("N = 1", {"N": 1, "D": 6}, inputs.ln_inputs),
             Case("float32", {"N": 3, "D": 4}, inputs.f32(inputs.ln_inputs)),
         ), layer_reference(F.layernorm_forward, F.layernorm_backward),
         forward_hints=(("the variance is the unbiased one (divided by D - 1); layer norm "
                         "uses the biased variance (divide by D)", checks.unbiased_norm((1,))),),
         small_error_hint=_NORM_HINT),
    Spec("dropout_forward", ("dropout_backward",), ("x", "dropout_param"), (0,), (
        Case("train mode, p = 0.3", {"N": 100, "D": 60}, inputs.dropout_inputs("train", 0.3)),
        Case("train mode, p = 0.75", {"N": 40, "D": 50}, inputs.dropout_inputs("train", 0.75)),
        Case("test mode", {"N": 4, "D": 5}, inputs.dropout_inputs("test", 0.3)),
    ), layer_reference(F.dropout_forward, F.dropout_backward),
         forward_check=checks.dropout_forward_check, exact_reference=False, seeded=True),
    Spec("conv_forward_naive", ("conv_backward_naive",), ("x", "w", "b", "conv_param"),
         (0, 1, 2), (
             Case("stride 1, pad 1 (the notebook's)", {"N": 2, "C": 3, "H": 5, "W": 5, "F": 4,
                                                       "HH": 3, "WW": 3}, inputs.conv_inputs(1, 1)),
             Case("stride 2, pad 0, non-square image", {"N": 2, "C": 2, "H": 7, "W": 5,
                                                        "F": 3, "HH": 3, "WW": 3},
                  inputs.conv_inputs(2, 0)),
             Case("N = 1, non-square image and filter, float32",
                  {"N": 1, "C": 2, "H": 5, "W": 4, "F": 3, "HH": 3, "WW": 2},
                  inputs.f32(inputs.conv_inputs(1, 1))),
         ), layer_reference(F.conv_forward_naive, F.conv_backward_naive)),
    Spec("max_pool_forward_naive", ("max_pool_backward_naive",), ("x", "pool_param"), (0,), (
        Case("2x2, stride 2 (the notebook's)", {"N": 2, "C": 3, "H": 4, "W": 4},
             inputs.pool_inputs(2, 2, 2)),
        Case("overlapping windows: 3x3, stride 2, non-square image",
             {"N": 2, "C": 2, "H": 5, "W": 7}, inputs.pool_inputs(3, 3, 2)),
        Case("N = 1, 2x3 window, stride 1, float32", {"N": 1, "C": 2, "H": 3, "W": 5},
             inputs.f32(inputs.pool_inputs(2, 3, 1))),
    ), layer_reference(F.max_pool_forward_naive, F.max_pool_backward_naive)),
    Spec("spatial_batchnorm_forward", ("spatial_batchnorm_backward",),
         ("x", "gamma", "beta", "bn_param"), (0, 1, 2), (
             Case("train mode", _SBN_DIMS, inputs.bn_inputs("train", spatial=True)),
             Case("test mode", {"N": 2, "C": 4, "H": 3, "W": 2},
                  inputs.bn_inputs("test", spatial=True), backward=False),
             Case("N = 1, float32", {"N": 1, "C": 2, "H": 3, "W": 4},
                  inputs.f32(inputs.bn_inputs("train", spatial=True))),
         ), _norm_reference(F.spatial_batchnorm_forward, F.spatial_batchnorm_backward),
         state_check=checks.running_stats_check,
         forward_hints=(("the variance is the unbiased one (divided by N*H*W - 1); batch norm "
                         "uses the biased variance", checks.unbiased_norm((0, 2, 3))),),
         small_error_hint=_NORM_HINT),
    Spec("spatial_groupnorm_forward", ("spatial_groupnorm_backward",),
         ("x", "gamma", "beta", "G", "gn_param"), (0, 1, 2), (
             Case("notebook shapes", {"N": 2, "C": 6, "H": 3, "W": 4, "G": 2}, inputs.gn_inputs),
             Case("G = C (one channel per group)", {"N": 2, "C": 3, "H": 2, "W": 4, "G": 3},
                  inputs.gn_inputs),
             Case("N = 1, float32", {"N": 1, "C": 4, "H": 3, "W": 2, "G": 2},
                  inputs.f32(inputs.gn_inputs)),
         ), layer_reference(F.spatial_groupnorm_forward, F.spatial_groupnorm_backward),
         variants=(Variant("gamma and beta of shape (1, C, 1, 1) (the 2018-2020 notebooks)"),
                   Variant("gamma and beta of shape (C,)", adapt=inputs.gn_flat)),
         small_error_hint=_NORM_HINT),
    Spec("svm_loss", (), ("x", "y"), (0,), (
        Case("notebook shapes", {"N": 8, "C": 5}, inputs.scores_inputs),
        Case("N = 1", {"N": 1, "C": 4}, inputs.scores_inputs),
        Case("float32", {"N": 6, "C": 3}, inputs.f32(inputs.scores_inputs)),
    ), _loss_reference(F.svm_loss), kind="loss", out_names=("loss",)),
    Spec("softmax_loss", (), ("x", "y"), (0,), (
        Case("notebook shapes", {"N": 8, "C": 5}, inputs.scores_inputs),
        Case("N = 1", {"N": 1, "C": 4}, inputs.scores_inputs),
        Case("float32", {"N": 6, "C": 3}, inputs.f32(inputs.scores_inputs)),
    ), _loss_reference(F.softmax_loss), kind="loss", out_names=("loss",)),
    Spec("rnn_step_forward", ("rnn_step_backward",), ("x", "prev_h", "Wx", "Wh", "b"),
         (0, 1, 2, 3, 4), (
             Case("notebook shapes", {"N": 3, "D": 4, "H": 5}, inputs.rnn_step_inputs(False)),
             Case("N = 1, float32", {"N": 1, "D": 3, "H": 2},
                  inputs.f32(inputs.rnn_step_inputs(False))),
         ), layer_reference(F.rnn_step_forward, F.rnn_step_backward),
         out_names=("next_h",)),
    Spec("rnn_forward", ("rnn_backward",), ("x", "h0", "Wx", "Wh", "b"), (0, 1, 2, 3, 4), (
        Case("notebook shapes", {"N": 2, "T": 3, "D": 4, "H": 5}, inputs.rnn_inputs(False)),
        Case("T = 1", {"N": 3, "T": 1, "D": 2, "H": 4}, inputs.rnn_inputs(False)),
        Case("float32", {"N": 2, "T": 4, "D": 3, "H": 5}, inputs.f32(inputs.rnn_inputs(False))),
    ), layer_reference(F.rnn_forward, F.rnn_backward), out_names=("h",)),
    Spec("word_embedding_forward", ("word_embedding_backward",), ("x", "W"), (1,), (
        Case("repeated words", {"N": 2, "T": 4, "V": 5, "D": 3}, inputs.embedding_inputs),
        Case("float32", {"N": 3, "T": 2, "V": 4, "D": 5}, inputs.f32(inputs.embedding_inputs)),
    ), layer_reference(F.word_embedding_forward, F.word_embedding_backward)),
    Spec("temporal_affine_forward", ("temporal_affine_backward",), ("x", "w", "b"), (0, 1, 2), (
        Case("notebook shapes", {"N": 2, "T": 3, "D": 4, "M": 5}, inputs.temporal_affine_inputs),
        Case("T = 1, float32", {"N": 3, "T": 1, "D": 2, "M": 4},
             inputs.f32(inputs.temporal_affine_inputs)),
    ), layer_reference(F.temporal_affine_forward, F.temporal_affine_backward)),
    Spec("temporal_softmax_loss", (), ("x", "y", "mask"), (0,), (
        Case("masked steps", {"N": 3, "T": 4, "V": 5}, inputs.temporal_loss_inputs),
        Case("T = 1", {"N": 4, "T": 1, "V": 3}, inputs.temporal_loss_inputs),
    ), _loss_reference(F.temporal_softmax_loss), kind="loss", out_names=("loss",)),
    Spec("lstm_step_forward", ("lstm_step_backward",),
         ("x", "prev_h", "prev_c", "Wx", "Wh", "b"), (0, 1, 2, 3, 4, 5), (
             Case("notebook shapes", {"N": 3, "D": 4, "H": 5}, inputs.rnn_step_inputs(True)),
             Case("N = 1, float32", {"N": 1, "D": 3, "H": 2},
                  inputs.f32(inputs.rnn_step_inputs(True))),
         ), layer_reference(F.lstm_step_forward, F.lstm_step_backward, n_outputs=2),
         n_outputs=2, out_names=("next_h", "next_c")),
    Spec("lstm_forward", ("lstm_backward",), ("x", "h0", "Wx", "Wh", "b"), (0, 1, 2, 3, 4), (
        Case("notebook shapes", {"N": 2, "T": 3, "D": 4, "H": 5}, inputs.rnn_inputs(True)),
        Case("T = 1", {"N": 3, "T": 1, "D": 2, "H": 4}, inputs.rnn_inputs(True)),
        Case("float32", {"N": 2, "T": 2, "D": 3, "H": 4}, inputs.f32(inputs.rnn_inputs(True))),
    ), layer_reference(F.lstm_forward, F.lstm_backward), out_names=("h",)),
)

_REG_VARIANTS = (Variant("regularization reg * sum(W**2) (gradient 2 * reg * W)"),
                 Variant("regularization 0.5 * reg * sum(W**2) (gradient reg * W; before 2017)",
                         options={"reg_factor": 0.5}))


def _classifier(name: str, loss: Callable) -> Spec:
    return Spec(name, (), ("W", "X", "y", "reg"), (0,), (
        Case("notebook shapes, reg = 0.1", {"N": 12, "D": 7, "C": 4},
             inputs.classifier_inputs(0.1)),
        Case("no regularization", {"N": 9, "D": 5, "C": 3}, inputs.classifier_inputs(0.0)),
        Case("N = 1", {"N": 1, "D": 6, "C": 5}, inputs.classifier_inputs(0.5)),
    ), _classifier_reference(loss), kind="classifier", out_names=("loss",),
        variants=_REG_VARIANTS, gradient_hint=checks.classifier_hint)


SPECS = SPECS + (
    _classifier("svm_loss_naive", F.svm_loss),
    _classifier("svm_loss_vectorized", F.svm_loss),
    _classifier("softmax_loss_naive", F.softmax_loss),
    _classifier("softmax_loss_vectorized", F.softmax_loss),
)

# every gradable function name -> (its spec, its role: "forward" or the backward's name)
SPEC_BY_NAME: dict[str, Spec] = {name: s for s in SPECS for name in s.functions}
ALL_NAMES: tuple[str, ...] = tuple(SPEC_BY_NAME)
