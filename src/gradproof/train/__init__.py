"""gradproof.train: the training loop, its hooks, checkpoints and curves.

:class:`Trainer` fits a model on a :class:`gradproof.data.Dataset` and can be
killed and resumed bit for bit from its checkpoints (.npz + JSON, never
pickled). The recipes that use it, and the ``gradproof train`` command, are in
:mod:`gradproof.recipes`.
"""

from .checkpoint import CheckpointError, latest_checkpoint, load_checkpoint  # noqa: F401
from .history import History, plot_history  # noqa: F401
from .hooks import EpochInfo, EpochLogger, Hook, StepInfo  # noqa: F401
from .trainer import Trainer, accuracy  # noqa: F401
