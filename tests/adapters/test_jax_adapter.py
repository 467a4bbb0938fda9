"""check_jax: correct custom_vjp / custom_jvp rules pass, buggy ones fail."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = jax.numpy

from gradproof.adapters.jax import check_jax  # noqa: E402


def swish_value(x):
    return x * jax.nn.sigmoid(x)


def swish_fwd(x):
    return swish_value(x), x


def swish_bwd(x, dout):
    s = jax.nn.sigmoid(x)
    return (dout * (s + x * s * (1 - s)),)


def swish_bwd_forgot_product_rule(x, dout):
    return (dout * jax.nn.sigmoid(x),)


swish = jax.custom_vjp(swish_value)
swish.defvjp(swish_fwd, swish_bwd)
swish_buggy = jax.custom_vjp(swish_value)
swish_buggy.defvjp(swish_fwd, swish_bwd_forgot_product_rule)


def softplus_value(x):
    return jnp.logaddexp(x, 0.0)


def make_softplus(derivative):
    f = jax.custom_jvp(softplus_value)
    f.defjvp(lambda primals, tangents: (softplus_value(primals[0]),
                                        derivative(primals[0]) * tangents[0]))
    return f


softplus = make_softplus(jax.nn.sigmoid)
softplus_buggy = make_softplus(lambda x: jax.nn.sigmoid(-x))  # sign of the argument flipped


def scaled_matmul_value(x, w):
    return 0.5 * x @ w


def scaled_matmul_fwd(x, w):
    return scaled_matmul_value(x, w), (x, w)


def scaled_matmul_bwd(res, dout):
    x, w = res
    return 0.5 * dout @ w.T, x.T @ dout  # bug: dw misses the 0.5


scaled_matmul_buggy_dw = jax.custom_vjp(scaled_matmul_value)
scaled_matmul_buggy_dw.defvjp(scaled_matmul_fwd, scaled_matmul_bwd)

DTYPES = ["float32", "float64"]


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", [swish, softplus], ids=["custom_vjp", "custom_jvp"])
def test_correct_rule_passes(fn, dtype):
    report = check_jax(fn, rand(4, 5), dtype=dtype)
    report.raise_if_failed()
    assert report.inputs[0].dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", [swish_buggy, softplus_buggy], ids=["custom_vjp", "custom_jvp"])
def test_buggy_rule_fails(fn, dtype):
    report = check_jax(fn, rand(4, 5), dtype=dtype)
    assert not report.ok and not report.inputs[0].ok


def test_float64_really_computes_in_float64():
    # eps(float64) sized errors only: a silent float32 computation would fail this
    report = check_jax(swish, rand(6), dtype="float64")
    assert report.ok and report.inputs[0].max_rel_error < 1e-9
    assert jax.config.jax_enable_x64


def test_wrong_weight_gradient_is_pinned_on_w_and_integer_inputs_pass_through():
    def model(x, w, idx):
        return swish(scaled_matmul_buggy_dw(x, w))[idx]

    report = check_jax(model, rand(3, 4), rand(4, 2, seed=1), np.array([0, 2]), dtype="float64")
    assert [r.name for r in report.inputs[:2]] == ["x", "w"]
    assert [r.ok for r in report.inputs[:2]] == [True, False]


def test_tuple_outputs_are_checked():
    def two(x, y):
        return swish(x) * y, softplus(y)

    check_jax(two, rand(3), rand(3, seed=2), dtype="float64").raise_if_failed()


def test_bad_dtype_is_named():
    with pytest.raises(ValueError, match="dtype"):
        check_jax(swish, rand(3), dtype="float16")


# ----------------------------------------------------------------------
# pytree outputs and the second derivative
@pytest.mark.parametrize("name", ["eigh", "slogdet", "qr", "svd"])
def test_linalg_namedtuple_outputs_are_checked(name):
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 4))
    a = a @ a.T + 4 * np.eye(4)  # symmetric positive definite: distinct eigenvalues
    fn = {"eigh": jnp.linalg.eigh, "slogdet": jnp.linalg.slogdet, "qr": jnp.linalg.qr,
          "svd": lambda m: jnp.linalg.svd(m, full_matrices=False)}[name]
    report = check_jax(fn, a, dtype="float64")
    assert report.ok, report


def test_dict_and_integer_leaves_in_the_output():
    import jax.numpy as jnp

    x = np.random.default_rng(1).standard_normal(5)
    report = check_jax(lambda v: {"y": jnp.sin(v), "k": (jnp.argmax(v), v * 2)}, x)
    assert report.ok, report


def test_second_order_check_catches_a_bwd_rule_that_is_not_differentiable_right():
    from gradproof.adapters.jax import check_jax_second_order

    @jax.custom_vjp
    def cube(x):
        return x ** 3

    # right first derivative; stop_gradient hides 6 x dout from the second
    cube.defvjp(lambda x: (x ** 3, x),
                lambda x, dout: (dout * 3 * jax.lax.stop_gradient(x) ** 2,))
    x = np.random.default_rng(2).standard_normal(5)
    assert check_jax(cube, x, dtype="float64").ok
    assert check_jax_second_order(jax.numpy.tanh, x, dtype="float64").ok
    report = check_jax_second_order(cube, x, dtype="float64")
    assert report.verdict == "failed" and report.function.startswith("backward of ")
