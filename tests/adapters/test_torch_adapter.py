"""check_torch / check_module: correct custom autograd Functions pass, buggy ones fail."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.autograd.gradcheck import GradcheckError  # noqa: E402

from gradproof.adapters.torch import (  # noqa: E402
    check_module,
    check_torch,
    gradcheck,
    gradgradcheck,
)


class Swish(torch.autograd.Function):
    """swish(x) = x * sigmoid(x); d/dx = s + x s (1 - s)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * torch.sigmoid(x)

    @staticmethod
    def backward(ctx, dout):
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(x)
        return dout * (s + x * s * (1 - s))


class SwishForgotProductRule(Swish):
    """Bug: the derivative of x * s(x) taken as s(x) only."""

    @staticmethod
    def backward(ctx, dout):
        (x,) = ctx.saved_tensors
        return dout * torch.sigmoid(x)


class MatMul(torch.autograd.Function):
    """out = x @ w, x (N, D), w (D, M); dx = dout w^T, dw = x^T dout."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return x @ w

    @staticmethod
    def backward(ctx, dout):
        x, w = ctx.saved_tensors
        return dout @ w.T, x.T @ dout


class MatMulDoubledWeightGrad(MatMul):
    """Bug: dw twice too large (a gradient accumulated twice)."""

    @staticmethod
    def backward(ctx, dout):
        x, w = ctx.saved_tensors
        return dout @ w.T, 2 * (x.T @ dout)


class Linear(torch.nn.Module):
    def __init__(self, fn, d=5, m=3):
        super().__init__()
        self.fn = fn
        self.weight = torch.nn.Parameter(rand(d, m, dtype=torch.float32, seed=1))
        self.bias = torch.nn.Parameter(rand(m, dtype=torch.float32, seed=2))

    def forward(self, x):
        return Swish.apply(self.fn.apply(x, self.weight) + self.bias)


def rand(*shape, dtype=torch.float64, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"))]
DTYPES = [torch.float64, torch.float32]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_correct_swish_passes(dtype, device):
    report = check_torch(Swish.apply, rand(4, 6), dtype=dtype, device=device)
    report.raise_if_failed()
    assert report.inputs[0].checked and report.inputs[0].dtype == str(np.dtype(
        {torch.float64: np.float64, torch.float32: np.float32}[dtype]))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_swish_missing_product_rule_fails(dtype, device):
    report = check_torch(SwishForgotProductRule.apply, rand(4, 6), dtype=dtype, device=device)
    assert not report.ok
    assert not report.inputs[0].ok


@pytest.mark.parametrize("dtype", DTYPES)
def test_matmul_names_the_wrong_input(dtype):
    x, w = rand(3, 5, seed=1), rand(5, 4, seed=2)
    good = check_torch(MatMul.apply, x, w, dtype=dtype)
    bad = check_torch(MatMulDoubledWeightGrad.apply, x, w, dtype=dtype)
    assert good.ok, str(good)
    assert [r.ok for r in bad.inputs] == [True, False]
    assert [r.name for r in bad.inputs] == ["x", "w"]


def test_default_dtype_follows_the_inputs():
    report = check_torch(Swish.apply, rand(3, dtype=torch.float32))
    assert report.inputs[0].dtype == "float32"


def test_unused_input_gets_zero_gradient_and_int_input_passes_through():
    def pick(x, unused, idx):
        return x[idx] * 3.0

    x, unused = rand(5), rand(2, seed=3)
    idx = torch.tensor([0, 3, 3])
    report = check_torch(pick, x, unused, idx)
    report.raise_if_failed()
    assert [r.checked for r in report.inputs[:2]] == [True, True]


def test_tuple_outputs_are_checked():
    def two(x, y):
        return x * y, torch.sin(x)

    check_torch(two, rand(3), rand(3, seed=4)).raise_if_failed()


def test_bfloat16_correct_swish_passes():
    report = check_torch(Swish.apply, rand(4, 6), dtype=torch.bfloat16)
    report.raise_if_failed()
    assert report.inputs[0].dtype == "float32"
    assert any("bfloat16" in n for n in report.notes)


def test_bfloat16_missing_product_rule_fails():
    report = check_torch(SwishForgotProductRule.apply, rand(4, 6), dtype=torch.bfloat16)
    assert not report.ok


class SwishWrongInLowPrecision(Swish):
    """Bug only in half precisions: a dtype branch that drops the second term."""

    @staticmethod
    def backward(ctx, dout):
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(x)
        if x.dtype in (torch.bfloat16, torch.float16):
            return dout * s
        return dout * (s + x * s * (1 - s))


def test_bfloat16_only_bug_is_caught_by_the_low_precision_stage():
    report = check_torch(SwishWrongInLowPrecision.apply, rand(4, 6), dtype=torch.bfloat16)
    assert not report.ok
    assert [p.kind for p in report.problems] == ["low_precision"]
    assert report.problems[0].input == 0 and not report.inputs[0].ok
    assert "SwishWrongInLowPrecision.apply" in str(report)
    assert check_torch(SwishWrongInLowPrecision.apply, rand(4, 6), dtype=torch.float32).ok


@pytest.mark.parametrize("dtype", DTYPES + [torch.bfloat16])
def test_module_checks_input_and_every_parameter(dtype):
    report = check_module(Linear(MatMul), rand(3, 5), dtype=dtype)
    report.raise_if_failed()
    assert [r.name for r in report.inputs] == ["input0", "weight", "bias"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_module_with_wrong_weight_gradient_fails_on_weight_only(dtype):
    module = Linear(MatMulDoubledWeightGrad)
    before = module.weight.detach().clone()
    report = check_module(module, rand(3, 5), dtype=dtype)
    assert {r.name: r.ok for r in report.inputs} == {"input0": True, "weight": False, "bias": True}
    assert torch.equal(module.weight.detach(), before) and module.weight.dtype == torch.float32


def test_bad_dtype_is_named():
    with pytest.raises(ValueError, match="dtype"):
        check_torch(Swish.apply, rand(3), dtype=torch.int64)


class GeluTanhDerivative(torch.autograd.Function):
    """Exact (erf) GELU whose backward is the tanh approximation's derivative:
    off by up to ~1e-3 relative, below float32's finite-difference resolution."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.nn.functional.gelu(x)

    @staticmethod
    def backward(ctx, dout):
        (x,) = ctx.saved_tensors
        c = (2 / torch.pi) ** 0.5
        t = torch.tanh(c * (x + 0.044715 * x**3))
        return dout * (0.5 * (1 + t) + 0.5 * x * (1 - t**2) * c * (1 + 3 * 0.044715 * x**2))


def test_float32_check_is_repeated_in_float64_and_sees_a_subtle_bug():
    x = torch.linspace(-3, 3, 40, dtype=torch.float64).reshape(5, 8)
    plain = check_torch(GeluTanhDerivative.apply, x, dtype=torch.float32, upcast=False)
    assert plain.ok  # float32 cannot resolve it
    report = check_torch(GeluTanhDerivative.apply, x, dtype=torch.float32)
    assert not report.ok
    assert "float64" in report.problems[0]
    correct = check_torch(Swish.apply, rand(4, 6), dtype=torch.float32)
    assert correct.ok
    assert any("also checked in float64" in n for n in correct.notes), correct.notes


# ----------------------------------------------------------------------
# nested outputs, the upstream gradient, raw gradient shapes
def test_lstm_with_nested_outputs_is_checked():
    lstm = torch.nn.LSTM(3, 4, batch_first=True).double()
    report = check_module(lstm, rand(2, 5, 3))  # returns (out, (h, c))
    assert report.ok, report
    assert [r.name for r in report.inputs][:2] == ["input0", "weight_ih_l0"]


def test_dict_outputs_are_flattened():
    report = check_torch(lambda x: {"a": torch.tanh(x), "b": [x * 2, x.sum()]}, rand(3, 2))
    assert report.ok, report


class WritesIntoGradOutput(torch.autograd.Function):
    """Bug: the backward scales grad_output in place (the caller's tensor)."""

    @staticmethod
    def forward(ctx, x):
        return 2 * x

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output.mul_(2)  # 2 * grad_output is right, but the caller's is changed


def test_a_backward_writing_into_grad_output_is_caught():
    report = check_torch(WritesIntoGradOutput.apply, rand(3, 4))
    assert report.verdict == "failed"
    assert "mutated-dout" in [p.kind for p in report.problems]


class BiasAddKeepdimGrad(torch.autograd.Function):
    """Bug: db has shape (1, M) for b of shape (M,); torch sums it away."""

    @staticmethod
    def forward(ctx, x, b):
        return x + b

    @staticmethod
    def backward(ctx, dout):
        return dout, dout.sum(0, keepdim=True)


def test_a_raw_bias_gradient_of_shape_1_m_is_a_shape_problem():
    x, b = rand(3, 4), rand(4, seed=1)
    assert torch.autograd.gradcheck(BiasAddKeepdimGrad.apply,
                                    (x.requires_grad_(), b.requires_grad_()))  # torch passes
    report = check_torch(BiasAddKeepdimGrad.apply, x, b)
    assert report.verdict == "failed" and report.inputs[1].status == "SHAPE"
    shape = [p for p in report.problems if p.kind == "shape"]
    assert shape and "shape (1, 4)" in shape[0] and shape[0].input == 1


# ----------------------------------------------------------------------
# gradcheck / gradgradcheck: torch's signatures and behaviour


def test_gradcheck_returns_true_for_a_correct_function():
    x = rand(3, 4).requires_grad_()
    assert gradcheck(Swish.apply, (x,)) is True
    assert gradcheck(Swish.apply, x, eps=1e-6, atol=1e-5, rtol=1e-3, fast_mode=True) is True


def test_gradcheck_raises_torchs_error_or_returns_false():
    x = rand(3, 4).requires_grad_()
    with pytest.raises(GradcheckError, match="FAILED") as info:
        gradcheck(SwishForgotProductRule.apply, (x,))
    assert isinstance(info.value, RuntimeError) and not info.value.report.ok
    assert gradcheck(SwishForgotProductRule.apply, (x,), raise_exception=False) is False


def test_gradcheck_checks_only_inputs_that_require_grad():
    x, w = rand(3, 4).requires_grad_(), rand(4, 2, seed=1)
    assert gradcheck(MatMulDoubledWeightGrad.apply, (x, w)) is True  # w is not checked
    assert gradcheck(MatMulDoubledWeightGrad.apply, (x, w.requires_grad_()),
                     raise_exception=False) is False
    with pytest.raises(ValueError, match="require gradient"):
        gradcheck(MatMul.apply, (rand(3, 4), rand(4, 2)))


class CubeDetachedBackward(torch.autograd.Function):
    """Right first derivative, wrong second: the backward detaches x, so its own
    derivative (the double backward) misses 6 x dout."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, dout):
        (x,) = ctx.saved_tensors
        return dout * 3 * x.detach() ** 2


def test_gradgradcheck_catches_a_wrong_second_derivative():
    x = rand(3, 4).requires_grad_()
    assert gradcheck(CubeDetachedBackward.apply, (x,)) is True
    assert gradgradcheck(torch.tanh, (x,)) is True
    assert gradgradcheck(CubeDetachedBackward.apply, (x,), raise_exception=False) is False
    with pytest.raises(GradcheckError, match="backward of"):
        gradgradcheck(CubeDetachedBackward.apply, (x,), grad_outputs=(rand(3, 4, seed=3),))
