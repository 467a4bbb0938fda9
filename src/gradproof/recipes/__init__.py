"""gradproof.recipes: how to train each model, from Python and from ``gradproof train``.

One module per model kind, standing on :mod:`gradproof.train`, :mod:`gradproof.optim`,
:mod:`gradproof.data` and the models of :mod:`gradproof.nn`: ``mlp``, ``cnn``
(:func:`train_cnn_mnist1d`), ``gru`` (:func:`train_gru_mnist1d`) and ``charlm``
(:func:`train_charlm`);
``kind`` says what a model kind of the command is, and ``cli`` is the
``gradproof train`` command that lists them.
"""

from .charlm import train_charlm  # noqa: F401
from .cnn import train_cnn_mnist1d  # noqa: F401
from .gru import train_gru_mnist1d  # noqa: F401
