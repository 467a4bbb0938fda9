"""Functional layers: pure functions with explicit forward and backward.

Convention (CS231n): ``out, cache = layer(x, ...)`` and
``grads = layer_backward(dout, cache)`` with one gradient per array input, in
argument order (a single array when there is one). ``dout`` must have the
shape and dtype of ``out`` exactly: every backward checks it (``gradproof._validate.upstream``)
and raises for one that only broadcasts, is truncated or transposed. Losses
return ``(loss, dx)``: the scalar mean loss and its gradient with respect to ``x``.

Every module's public names are gathered here; each module lists its own in
``__all__``. The helpers behind them are not re-exported: ``_recurrence`` (the
scan shared by the RNN, LSTM and GRU) and ``windows`` (the sliding windows of
convolution and pooling); the argument checks are gradproof's own vocabulary,
:mod:`gradproof._validate`.
"""

from .activations import *  # noqa: F401,F403
from .attention import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .conv_naive import *  # noqa: F401,F403
from .dense import *  # noqa: F401,F403
from .dropout import *  # noqa: F401,F403
from .embedding import *  # noqa: F401,F403
from .gru import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .norm import *  # noqa: F401,F403
from .pool import *  # noqa: F401,F403
from .recurrent import *  # noqa: F401,F403
from .temporal import *  # noqa: F401,F403
from .transformer import *  # noqa: F401,F403
