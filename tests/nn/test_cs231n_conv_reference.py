"""Forward values against the numbers PUBLISHED with CS231n assignment 2 (ConvolutionalNetworks).

The setups (np.linspace inputs) and ``correct_out`` arrays are copied from the
assignment notebook ``ConvolutionalNetworks.ipynb`` (cells "Convolution: Naive
forward pass" and "Max-Pooling: Naive forward"), as reproduced verbatim in
many public copies of the assignment; the notebook accepts a relative error
around 1e-8 (the values are printed with 8 decimals), and so do we.
"""

import numpy as np
import pytest

from gradproof.nn import functional as F


def rel_error(x, y):
    """CS231n's relative error."""
    return np.max(np.abs(x - y) / (np.maximum(1e-8, np.abs(x) + np.abs(y))))


CONV_CORRECT_OUT = np.array(
    [
        [
            [[-0.08759809, -0.10987781], [-0.18387192, -0.2109216]],
            [[0.21027089, 0.21661097], [0.22847626, 0.23004637]],
            [[0.50813986, 0.54309974], [0.64082444, 0.67101435]],
        ],
        [
            [[-0.98053589, -1.03143541], [-1.19128892, -1.24695841]],
            [[0.69108355, 0.66880383], [0.59480972, 0.56776003]],
            [[2.36270298, 2.36904306], [2.38090835, 2.38247847]],
        ],
    ]
)

MAX_POOL_CORRECT_OUT = np.array(
    [
        [
            [[-0.26315789, -0.24842105], [-0.20421053, -0.18947368]],
            [[-0.14526316, -0.13052632], [-0.08631579, -0.07157895]],
            [[-0.02736842, -0.01263158], [0.03157895, 0.04631579]],
        ],
        [
            [[0.09052632, 0.10526316], [0.14947368, 0.16421053]],
            [[0.20842105, 0.22315789], [0.26736842, 0.28210526]],
            [[0.32631579, 0.34105263], [0.38526316, 0.4]],
        ],
    ]
)


@pytest.mark.parametrize("conv_forward", [F.conv_forward_naive, F.conv_forward_fast])
def test_conv_forward_matches_cs231n_published_values(conv_forward):
    x_shape = (2, 3, 4, 4)
    w_shape = (3, 3, 4, 4)
    x = np.linspace(-0.1, 0.5, num=np.prod(x_shape)).reshape(x_shape)
    w = np.linspace(-0.2, 0.3, num=np.prod(w_shape)).reshape(w_shape)
    b = np.linspace(-0.1, 0.2, num=3)
    conv_param = {"stride": 2, "pad": 1}

    out, _ = conv_forward(x, w, b, conv_param)

    assert out.shape == CONV_CORRECT_OUT.shape
    assert rel_error(out, CONV_CORRECT_OUT) < 1e-7


@pytest.mark.parametrize("pool_forward", [F.max_pool_forward_naive, F.max_pool_forward_fast])
def test_max_pool_forward_matches_cs231n_published_values(pool_forward):
    x_shape = (2, 3, 4, 4)
    x = np.linspace(-0.3, 0.4, num=np.prod(x_shape)).reshape(x_shape)
    pool_param = {"pool_width": 2, "pool_height": 2, "stride": 2}

    out, _ = pool_forward(x, pool_param)

    assert out.shape == MAX_POOL_CORRECT_OUT.shape
    assert rel_error(out, MAX_POOL_CORRECT_OUT) < 1e-7
