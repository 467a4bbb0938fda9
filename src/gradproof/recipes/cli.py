"""``gradproof train KIND --data NAME ...``: the recipes on the command line.

``KIND`` is one of :data:`KINDS`, the model kinds of the recipe modules
(``mlp``, ``cnn``, ``gru``), or ``charlm``, which trains on text instead of a
``--data`` set. Options left out take the kind's defaults for the data set,
chosen so that e.g. ``gradproof train mlp --data digits`` reaches its
documented accuracy (docs/train.md). Prints one line per epoch and the final
test accuracy (``--json``: a JSON summary on stdout, epoch lines on stderr).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import textwrap
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import optim
from ..data.sources import DATASETS, load_dataset
from ..errors import GradproofError
from ..train.history import plot_history
from ..train.hooks import EpochLogger
from ..train.trainer import Trainer
from . import charlm
from .cnn import CNN_KIND
from .gru import GRU_KIND
from .kind import ModelKind
from .mlp import MLP_KIND
from .threads import add_threads_argument, blas_threads

__all__ = ["register", "KINDS", "COMMON_DEFAULTS", "OPTIMIZERS", "run"]

#: The model kinds trained on a ``--data`` set, by name (add one here to add a sub-choice).
KINDS: dict[str, ModelKind] = {kind.name: kind for kind in (MLP_KIND, CNN_KIND, GRU_KIND)}

COMMON_DEFAULTS: dict[str, Any] = {
    "epochs": 20,
    "lr": 1e-3,
    "batch_size": 64,
    "optimizer": "adam",
    "weight_decay": 0.0,
    "schedule": "cosine",
    "clip_norm": None,
    "patience": None,
}

# optimizer name -> (class name in gradproof.optim, extra keyword arguments)
OPTIMIZERS: dict[str, tuple[str, dict[str, Any]]] = {
    "sgd": ("SGD", {"momentum": 0.9}),
    "adam": ("Adam", {}),
    "adamw": ("AdamW", {}),
    "rmsprop": ("RMSProp", {}),
    "adagrad": ("AdaGrad", {}),
}
SCHEDULES = ("cosine", "none")


def _data_choice(text: str) -> str:
    if text in DATASETS or text.endswith(".npz"):
        return text
    raise argparse.ArgumentTypeError(
        f"expected one of {sorted(DATASETS)} or a path to a .npz file, got {text!r}"
    )


def _int_at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an int >= ``low`` (argparse names the option in its message)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}"
                                             ) from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
        return value

    parse.__name__ = f"int >= {low}"
    return parse


def _number(low: float, inclusive: bool) -> Callable[[str], float]:
    """An argparse type: a finite float > ``low`` (>= with ``inclusive``)."""
    sign = ">=" if inclusive else ">"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not (math.isfinite(value) and (value >= low if inclusive else value > low)):
            raise argparse.ArgumentTypeError(f"expected a number {sign} {low:g}, got {text!r}")
        return value

    parse.__name__ = f"number {sign} {low:g}"
    return parse


def _add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=_data_choice, required=True,
                        help="digits, mnist1d, spiral, or a .npz file with x_train, y_train, "
                             "x_test, y_test")
    parser.add_argument("--epochs", type=_int_at_least(1), default=None)
    parser.add_argument("--lr", type=_number(0, False), default=None,
                        help="(peak) learning rate")
    parser.add_argument("--batch-size", type=_int_at_least(1), default=None)
    parser.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default=None)
    parser.add_argument("--weight-decay", type=_number(0, True), default=None)
    parser.add_argument("--schedule", choices=SCHEDULES, default=None,
                        help="learning-rate schedule over the epochs (default cosine)")
    parser.add_argument("--clip-norm", type=_number(0, False), default=None,
                        help="clip the global gradient norm to this value")
    parser.add_argument("--patience", type=_int_at_least(1), default=None,
                        help="early stopping: epochs without a better validation accuracy")
    parser.add_argument("--seed", type=_int_at_least(0), default=0,
                        help="seed of the weights, the dropout masks and the shuffling (the "
                             "data splits are fixed, so runs of any seed share a test set)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--checkpoint-dir", default=None, help="save a checkpoint every epoch")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest checkpoint in --checkpoint-dir that "
                             "loads (damaged ones are moved aside); an error when there is "
                             "none, unless --allow-fresh")
    parser.add_argument("--allow-fresh", action="store_true",
                        help="with --resume: start from epoch 1 when there is no usable "
                             "checkpoint yet")
    parser.add_argument("--plot", default=None, metavar="PNG", help="save training curves")
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_threads_argument(parser)


def _fill_defaults(args: argparse.Namespace, kind: ModelKind) -> None:
    """Replace options left at None by the kind's defaults for the data set, then common ones."""
    defaults = {**COMMON_DEFAULTS, **kind.defaults_for(args.data)}
    for name, value in defaults.items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)


def _build_optimizer(args: argparse.Namespace, model, steps_per_epoch: int) -> tuple[Any, Any]:
    """The optimizer named by ``--optimizer`` and, for ``--schedule cosine``, a per-step
    cosine decay of the learning rate to 0 over the whole run."""
    class_name, extra = OPTIMIZERS[args.optimizer]
    optimizer = getattr(optim, class_name)(
        model.parameters(), lr=args.lr, weight_decay=args.weight_decay, **extra
    )
    scheduler = None
    if args.schedule == "cosine":
        scheduler = optim.CosineAnnealingLR(optimizer, T_max=args.epochs * steps_per_epoch)
    return optimizer, scheduler


def run(args: argparse.Namespace) -> int:
    """Load the data, build the model, train, evaluate on the test split; exit status 0.

    A gradproof error (a bad option value, a damaged or missing checkpoint, a bad
    data file) is printed as one line naming the cause, exit status 2.
    """
    with blas_threads(args.threads):
        return _reporting_errors(_run, args)


def _reporting_errors(run_kind: Callable[[argparse.Namespace], int],
                      args: argparse.Namespace) -> int:
    """``run_kind(args)``; a gradproof error is one line on stderr and exit status 2."""
    try:
        return run_kind(args)
    except GradproofError as exc:
        print(f"gradproof train {args.kind}: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    kind = KINDS[args.kind]
    _fill_defaults(args, kind)
    if args.resume and args.checkpoint_dir is None:
        raise SystemExit("gradproof train: --resume needs --checkpoint-dir")
    log = sys.stderr if args.json else sys.stdout
    start = time.perf_counter()
    data = load_dataset(args.data, dtype=np.dtype(args.dtype), **kind.data_options)
    model = kind.build(args, data)
    # a last batch of one example would stop batch norm: skip it then, only then
    num_train = len(data.y_train)
    drop_last = num_train % args.batch_size == 1
    steps_per_epoch = num_train // args.batch_size if drop_last else -(-num_train //
                                                                        args.batch_size)
    optimizer, scheduler = _build_optimizer(args, model, steps_per_epoch)
    print(f"{data}\n{model!r}", file=log)
    trainer = Trainer(
        model, optimizer, batch_size=args.batch_size, epochs=args.epochs, seed=args.seed,
        drop_last=drop_last,
        scheduler=scheduler, scheduler_interval="step", clip_norm=args.clip_norm,
        early_stopping_patience=args.patience,
        hooks=[EpochLogger(log)], progress=not args.no_progress,
        checkpoint_dir=args.checkpoint_dir,
    )
    history = trainer.fit(data, resume=args.resume, allow_fresh=args.allow_fresh)
    if trainer.resume_point is not None:  # what --resume found and used, said loudly
        found = trainer.resume_point
        print(found.describe() if found.path is not None else
              f"{found.describe()}: starting from epoch 1 (--allow-fresh)", file=log)
    test_loss, test_acc = trainer.evaluate(data.x_test, data.y_test)
    seconds = time.perf_counter() - start
    if args.plot:
        plot_history(history, args.plot, title=f"{args.kind} on {data.name}")
    # epochs are counted from 1 in the text and the JSON alike (History counts from 0)
    best = None if history.best_epoch is None else history.best_epoch + 1
    print(f"test loss {test_loss:.4f}  test accuracy {test_acc:.4f}  "
          f"(best epoch {'-' if best is None else best}, {seconds:.1f}s)", file=log)
    if args.json:
        summary = {
            "kind": args.kind, "data": data.name, "test_loss": test_loss, "test_acc": test_acc,
            "seconds": seconds, "epochs_run": history.epochs, "best_epoch": best,
            "history": history.to_dict() | {"best_epoch": best},
            "options": {k: v for k, v in vars(args).items() if k not in ("func",)},
        }
        print(json.dumps(summary))
    return 0


def _defaults_epilog(kind: ModelKind) -> str:
    """The defaults of options left out, per data set, for ``--help``."""
    sections = [("defaults:", COMMON_DEFAULTS | kind.defaults_for("*"))]
    sections += [(f"with --data {name}:", kind.defaults[name])
                 for name in sorted(kind.defaults) if name != "*"]
    return "\n".join(textwrap.fill(f"{title} {_options_text(options)}", width=78,
                                    subsequent_indent="    ", break_on_hyphens=False)
                      for title, options in sections)


def _options_text(options: dict[str, Any]) -> str:
    def show(value: Any) -> str:
        return ",".join(map(str, value)) if isinstance(value, list) else str(value)

    return " ".join(f"--{k.replace('_', '-')} {show(v)}" for k, v in options.items()
                    if v is not None)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``gradproof train`` with one sub-choice per model kind, and ``charlm``."""
    train = subparsers.add_parser("train", help="train a model on a built-in data set")
    kinds = train.add_subparsers(dest="kind", metavar="KIND", required=True)
    for kind in KINDS.values():
        parser = kinds.add_parser(kind.name, help=kind.help, description=kind.help,
                                  epilog=_defaults_epilog(kind),
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        _add_common_arguments(parser)
        kind.add_arguments(parser)
        parser.set_defaults(func=run)
    # the character-level language model trains on text, not on a --data set
    lm = kinds.add_parser("charlm", help="character-level language model on Python's own source",
                          description=charlm.__doc__.splitlines()[0] if charlm.__doc__ else None)
    charlm.add_arguments(lm)
    lm.set_defaults(func=lambda args: _reporting_errors(charlm.run, args))
