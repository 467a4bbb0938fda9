"""Tutorial: write a layer's backward pass, let gradproof catch its bug, fix it.

Run it as a script (``python examples/tutorial.py``) or cell by cell in an
editor that understands ``# %%`` cells (VS Code, PyCharm, Jupytext). In a
notebook, a report displays itself as an HTML table with heat maps.
"""

# %% [markdown]
# ## 1. A layer: Swish (also called SiLU)
#
# ``swish(x) = x * sigmoid(x)``. A layer in gradproof's (CS231n's) convention
# is two functions: ``forward(x) -> (out, cache)`` keeps what the backward
# needs, ``backward(dout, cache) -> dx`` returns the vector-Jacobian product
# ``dx = dout * d swish / dx``, of ``x``'s shape.

# %%
import numpy as np

import gradproof


def swish(x):
    """x: (N, D) -> out: (N, D); cache: (x, sigmoid(x))."""
    s = 1.0 / (1.0 + np.exp(-x))
    return x * s, (x, s)


# %% [markdown]
# ## 2. A first backward, with a classic bug
#
# By the product rule ``d(x * s)/dx = s + x * s'`` with ``s' = s * (1 - s)``.
# A common slip is to forget the first term:

# %%
def swish_backward_buggy(dout, cache):
    """dout: (N, D) -> dx: (N, D). BUG: the product rule's ``s`` term is missing."""
    x, s = cache
    return dout * x * s * (1 - s)


# %% [markdown]
# ## 3. Check it
#
# ``check_vjp`` draws a random upstream gradient ``dout`` and compares the
# backward with numerical derivatives of the forward. It does not raise by
# itself: read ``report.ok``, print the report, or call
# ``report.raise_if_failed()`` in a test.

# %%
rng = np.random.default_rng(0)
x = rng.standard_normal((8, 16))

report = gradproof.check_vjp(swish, swish_backward_buggy, x)
print(report)
print()
print("bug caught:", not report.ok)

# %% [markdown]
# The report says which input is wrong, the worst coordinates (analytic vs
# numeric) and a diagnosis. In a notebook, ``report`` alone displays an HTML
# page with a heat map. From the command line, the same buggy backward (at
# inputs the command draws itself, so the numbers differ) is checked with
#
#     gradproof check examples/tutorial.py:swish --backward swish_backward_buggy \
#         --input x=8,16 --html report.html
#
# which prints the report, writes the page with its heat map and exits with
# status 1 (a bug found). Without ``--backward`` it would check
# ``swish_backward``, the fixed version written below.
#
# ## 4. Fix it and check again

# %%
def swish_backward(dout, cache):
    """dout: (N, D) -> dx: (N, D) = dout * (s + x * s * (1 - s))."""
    x, s = cache
    return dout * (s + x * s * (1 - s))


report = gradproof.check_vjp(swish, swish_backward, x)
print(report)
print()
print("fixed backward passes:", report.ok)

# %% [markdown]
# ## 5. Make it a test
#
# ``raise_if_failed`` raises ``gradproof.GradientError`` (an ``AssertionError``
# whose message is the table), so a pytest test is one line. Check float32
# too: the tolerances follow the dtype, so a correct float32 layer passes.

# %%
gradproof.check_vjp(swish, swish_backward, x).raise_if_failed()
gradproof.check_vjp(swish, swish_backward, x.astype(np.float32)).raise_if_failed()
print("float64 and float32 checks pass")

# %% [markdown]
# ## 6. A bug that hides in one place
#
# Bugs are not always everywhere. This backward is right except for the last
# column (a typical off-by-one in a loop); gradproof bisects its way to it.

# %%
def swish_backward_last_column(dout, cache):
    dx = swish_backward(dout, cache)
    dx[:, -1] *= 2.0  # BUG: only the last feature is wrong
    return dx


report = gradproof.check_vjp(swish, swish_backward_last_column, x)
for problem in report.problems:
    print("-", problem)
print("bug caught in the last column:", not report.ok and report.inputs[0].worst[0][0][1] == 15)
