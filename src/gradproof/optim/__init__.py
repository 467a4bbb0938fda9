"""gradproof.optim: optimizers, learning-rate schedules and gradient clipping.

Each follows its ``torch.optim`` counterpart step for step::

    opt = Adam(model.parameters(), lr=1e-3)
    sched = warmup_cosine(opt, warmup_steps=100, total_steps=1000)
    for x, y in batches:
        model.zero_grad()
        ...                                   # forward, loss, backward
        clip_grad_norm(model.parameters(), max_norm=1.0)
        opt.step()                            # updates p.data in place
        sched.step()

``opt.state_dict()`` is ``{"hyper": JSON-able, "arrays": {name: ndarray}}``;
see :mod:`gradproof.optim.optimizer` and docs/optim.md.
"""

from .adagrad import AdaGrad, Adagrad
from .adam import Adam, AdamW
from .clip import clip_grad_norm
from .lr_scheduler import (
    CosineAnnealingLR,
    ExponentialLR,
    LinearLR,
    LRScheduler,
    SequentialLR,
    StepLR,
    warmup_cosine,
)
from .optimizer import Optimizer
from .rmsprop import RMSProp, RMSprop
from .sgd import SGD

__all__ = [
    "Optimizer",
    "SGD",
    "AdaGrad",
    "Adagrad",
    "RMSProp",
    "RMSprop",
    "Adam",
    "AdamW",
    "LRScheduler",
    "StepLR",
    "ExponentialLR",
    "CosineAnnealingLR",
    "LinearLR",
    "SequentialLR",
    "warmup_cosine",
    "clip_grad_norm",
]
