"""gradproof.nn: layers with explicit, proven backward passes.

``gradproof.nn.functional`` holds the pure forward/backward pairs (CS231n
style); the modules below hold parameters and compose them.
"""

from . import functional, init  # noqa: F401
from .activation import ELU, GELU, LeakyReLU, ReLU, Sigmoid, SiLU, Softplus, Tanh  # noqa: F401
from .charlm import CharLM  # noqa: F401
from .cnn import CNN1d, SmallCNN  # noqa: F401
from .containers import Flatten, Residual, Sequential  # noqa: F401
from .conv import AvgPool1d, AvgPool2d, Conv1d, Conv2d, MaxPool1d, MaxPool2d  # noqa: F401
from .dropout import Dropout  # noqa: F401
from .dtypes import to_dtype  # noqa: F401
from .functional.losses import loss_function  # noqa: F401
from .gru_classifier import GRUClassifier  # noqa: F401
from .linear import Linear  # noqa: F401
from .models import MLP, loss_and_backward  # noqa: F401
from .module import Module, Parameter  # noqa: F401
from .norm import BatchNorm1d, LayerNorm  # noqa: F401
from .numeric_layer import NotElementwiseWarning, NumericCostWarning, numeric  # noqa: F401
from .sequence import GRU, LSTM, RNN, Embedding, MultiHeadAttention, TransformerBlock  # noqa: F401
