"""The checker's subcommands: ``gradproof demo``, ``gradproof zoo``, ``gradproof check``.

``gradproof check mylayer.py:affine --input x=4,10 --input w=10,3 --input b=3``
loads ``affine`` (and ``affine_backward``) from a file or an importable module,
draws random inputs of the given shapes, checks the backward and prints the
report. Exit status: 0 when every input is proven right, 1 when it finds a bug,
3 when the check is inconclusive (nothing proven either way), 2 for a usage
error (the message names the offending argument), 4 when the user's code
raised (at import, or in the unperturbed forward or backward call: its
traceback is printed on stderr). Output the user's module writes at import and
during the calls is captured and shown as a section of the report (in the
JSON, ``"captured"``), so ``--json`` prints only JSON. See docs/cli.md and
docs/report-schema.json.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import importlib.util
import inspect
import json
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..check.calls import TimeBudgetSpent, time_budget, watching_user_code
from ..check.usercode import CapturedOutput, Recorded, capture_output, user_traceback
from ..errors import CostWarning

__all__ = ["register", "InputSpec", "parse_input_spec", "make_inputs", "load_functions",
           "UsageError", "UserCodeError", "EXIT_CODES", "EXIT_USAGE", "EXIT_USER_ERROR"]

DTYPES = {"float64": np.float64, "float32": np.float32, "int": np.int64, "int64": np.int64,
          "int32": np.int32}
DEFAULT_INT_RANGE = (0, 10)
INPUT_SYNTAX = "NAME=SHAPE[:DTYPE][:LOW..HIGH], e.g. x=4,10  w=10,3:float32  y=4:int:0..10"


# exit status of ``gradproof check``: proven, bug found, not proven; usage error; the
# user's code raised
EXIT_CODES = {"ok": 0, "failed": 1, "inconclusive": 3}
EXIT_USAGE = 2
EXIT_USER_ERROR = 4
MAX_CAPTURED_LINES = 20  # lines of captured output shown under the text report


class UsageError(Exception):
    """The command line cannot be carried out; the message says why (exit status 2)."""


class UserCodeError(Exception):
    """The user's code raised (importing the module); ``exc`` is its exception (exit 4)."""

    def __init__(self, message: str, exc: BaseException):
        super().__init__(message)
        self.exc = exc


# ----------------------------------------------------------------------
# --input NAME=SHAPE[:DTYPE][:LOW..HIGH]
@dataclass(frozen=True)
class InputSpec:
    """One ``--input``: an array of ``shape`` and ``dtype`` drawn at random.

    Floats are standard normal, or uniform in ``[low, high)`` when a range is
    given (e.g. positive values for ``log``); integers are uniform in
    ``[low, high)`` (``0..10``: labels of 10 classes), default ``0..10``.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str = "float64"
    low: float | None = None
    high: float | None = None


def _parse_range(text: str, spec: str) -> tuple[float, float]:
    low_text, _, high_text = text.partition("..")
    try:
        low, high = float(low_text), float(high_text)
    except ValueError:
        raise UsageError(f"--input {spec!r}: range {text!r} must be LOW..HIGH with two "
                         "numbers, e.g. 0..10") from None
    if not low < high:
        raise UsageError(f"--input {spec!r}: range {text!r} must have LOW < HIGH")
    return low, high


def parse_input_spec(spec: str) -> InputSpec:
    """Parse ``NAME=SHAPE[:DTYPE][:LOW..HIGH]``; raise :class:`UsageError` naming ``spec``."""
    name, eq, rest = spec.partition("=")
    name = name.strip()
    if not eq or not name.isidentifier():
        raise UsageError(f"--input {spec!r}: expected {INPUT_SYNTAX}")
    shape_text, *options = rest.split(":")
    shape_text = shape_text.strip().strip("()")
    sizes = [s.strip() for s in shape_text.split(",")] if shape_text else []
    if len(sizes) > 1 and sizes[-1] == "":
        sizes.pop()  # "4," is (4,), as in Python
    try:
        if "" in sizes:
            raise ValueError
        shape = tuple(int(s) for s in sizes)
    except ValueError:
        raise UsageError(f"--input {spec!r}: shape {shape_text!r} must be comma-separated "
                         f"integers (e.g. 4,10; empty for a scalar); expected {INPUT_SYNTAX}"
                         ) from None
    if any(s < 0 for s in shape):
        raise UsageError(f"--input {spec!r}: shape {shape} has a negative size")
    dtype, low, high = "float64", None, None
    for option in options:
        option = option.strip()
        if ".." in option:
            low, high = _parse_range(option, spec)
        elif option in DTYPES:
            dtype = "int64" if option == "int" else option
        else:
            raise UsageError(f"--input {spec!r}: unknown dtype {option!r}; use one of "
                             f"{', '.join(DTYPES)} (or a range LOW..HIGH)")
    if dtype.startswith("int") and low is None:
        low, high = DEFAULT_INT_RANGE
    return InputSpec(name, shape, dtype, low, high)


def make_inputs(specs: Sequence[InputSpec], rng: np.random.Generator) -> list[np.ndarray]:
    """Random arrays for ``specs``, in order."""
    arrays = []
    for s in specs:
        dtype = DTYPES[s.dtype]
        if np.issubdtype(dtype, np.integer):
            x = rng.integers(int(np.ceil(s.low)), int(np.ceil(s.high)), size=s.shape)
        elif s.low is not None:
            x = rng.uniform(s.low, s.high, size=s.shape)
        else:
            x = rng.standard_normal(s.shape)
        arrays.append(np.asarray(x, dtype=dtype))
    return arrays


def _order_by_signature(forward: Callable, specs: list[InputSpec], fname: str) -> list[InputSpec]:
    """Put the inputs in the order of the forward's parameters (they are named)."""
    try:
        params = inspect.signature(forward).parameters
    except (TypeError, ValueError):
        return specs
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params.values()):
        return specs
    names = [s.name for s in specs]
    for s in specs:
        if s.name not in params:
            raise UsageError(f"--input {s.name}=...: {fname} has no parameter {s.name!r}; its "
                             f"parameters are {', '.join(params) or '(none)'}")
    if len(set(names)) != len(names):
        raise UsageError(f"--input: a name is given twice in {names}")
    missing = [p.name for p in params.values()
               if p.default is p.empty and p.name not in names]
    if missing:
        raise UsageError(f"{fname} needs an --input for {', '.join(missing)} "
                         f"(e.g. --input {missing[0]}=SHAPE)")
    order = list(params)
    return sorted(specs, key=lambda s: order.index(s.name))


# ----------------------------------------------------------------------
# MODULE:FUNCTION
def _load_file(path: Path, target: str) -> ModuleType:
    if not path.is_file():
        raise UsageError(f"file not found: {str(path)!r} (from {target!r}); give the path of "
                         "the file that defines the function")
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # its own imports, and pickling for --workers
    loaded = sys.modules.get(path.stem)
    same_file = loaded is not None and getattr(loaded, "__file__", None) is not None \
        and Path(loaded.__file__).resolve() == path.resolve()
    # the file's own name when free (or taken by this very file): worker processes
    # started by --workers import the function by that name
    name = path.stem if path.stem.isidentifier() and (loaded is None or same_file) \
        else f"gradproof_user_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        with watching_user_code():  # within --timeout
            spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:  # sys.exit(0) at import must not pass a CI gate
        del sys.modules[name]
        raise UserCodeError(f"importing {path} raised {type(exc).__name__}: {exc}",
                            exc) from exc
    return module


def _load_module(name: str, target: str) -> ModuleType:
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # as ``python -m`` does
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            raise UsageError(f"no module or file named {name!r} (from {target!r}); give a "
                             "file path (mylayer.py:affine) or an importable module") from exc
        raise UserCodeError(f"importing {name} raised ModuleNotFoundError: {exc}",
                            exc) from exc
    except (Exception, SystemExit) as exc:
        raise UserCodeError(f"importing {name} raised {type(exc).__name__}: {exc}",
                            exc) from exc


def _lookup(module: ModuleType, name: str, where: str) -> Callable | None:
    try:
        obj = functools.reduce(getattr, name.split("."), module)
    except AttributeError:
        return None
    if not callable(obj):
        raise UsageError(f"{name} in {where} is {type(obj).__name__}, not a function")
    return obj


def _functions_in(module: ModuleType) -> str:
    names = sorted(n for n, v in vars(module).items()
                   if inspect.isfunction(v) and not n.startswith("_")
                   and v.__module__ == module.__name__)
    return ", ".join(names) if names else "(no public functions)"


def load_functions(target: str, backward: str | None = None
                   ) -> tuple[Callable, Callable | None, str | None, str]:
    """``(forward, backward or None, backward's name, where)`` for ``MODULE:FUNCTION``.

    Without ``backward`` the module's ``FUNCTION_backward`` is used (for a
    ``NAME_forward`` also ``NAME_backward``); ``None`` when there is neither,
    for closure style.
    """
    module_text, colon, fname = target.rpartition(":")
    if not colon or not module_text or not fname:
        raise UsageError(f"target {target!r}: expected MODULE:FUNCTION, e.g. "
                         "mylayer.py:affine or mypackage.layers:affine")
    is_file = module_text.endswith(".py") or "/" in module_text or "\\" in module_text
    module = _load_file(Path(module_text), target) if is_file else _load_module(module_text,
                                                                              target)
    forward = _lookup(module, fname, module_text)
    if forward is None:
        raise UsageError(f"function {fname!r} not found in {module_text}; it defines: "
                         f"{_functions_in(module)}")
    if backward is not None:
        found = _lookup(module, backward, module_text)
        if found is None:
            raise UsageError(f"--backward {backward}: not found in {module_text}; it defines: "
                             f"{_functions_in(module)}")
        return forward, found, backward, module_text
    candidates = [fname + "_backward"]
    if fname.endswith("_forward"):
        candidates.insert(0, fname[: -len("_forward")] + "_backward")
    for name in candidates:
        found = _lookup(module, name, module_text)
        if found is not None:
            return forward, found, name, module_text
    return forward, None, None, module_text


def _closure_style(forward: Callable, inputs: list[np.ndarray]) -> bool:
    """Whether ``forward`` returns ``(out, backprop)`` (a probe call on copies).

    A forward that raises (or calls sys.exit) here is left to the check, which
    reports the error."""
    try:
        with watching_user_code():  # within --timeout
            result = forward(*[x.copy() for x in inputs])
    except (Exception, SystemExit):
        return True
    return isinstance(result, tuple) and len(result) == 2 and callable(result[1])


# ----------------------------------------------------------------------
@dataclass
class _Outcome:
    """What ``gradproof check`` ran into: a report, or an error (with the user's output)."""

    report: Any = None
    full: Any = None
    backward_name: str | None = None
    captured: CapturedOutput = field(default_factory=CapturedOutput)
    user_exc: BaseException | None = None  # the user's code raised
    message: str = ""  # what went wrong, in one line
    error_kind: str = ""  # "usage", "user-code" or "timeout" when there is no report


def _run_check(args: argparse.Namespace, outcome: _Outcome) -> None:
    """Load, check, and fill ``outcome`` (raises UsageError / UserCodeError)."""
    from .. import check_vjp, process_pool
    from ..errors import GradproofError

    errors: dict[str, BaseException] = {}
    with capture_output() as outcome.captured:
        forward, backward, backward_name, where = load_functions(args.target, args.backward)
    fname = args.target.rpartition(":")[2]
    if not args.input:
        raise UsageError(f"no --input given: describe each input of {fname}, "
                         f"{INPUT_SYNTAX}")
    specs = _order_by_signature(forward, [parse_input_spec(s) for s in args.input], fname)
    inputs = make_inputs(specs, np.random.default_rng(args.seed))
    options: dict[str, Any] = dict(seed=args.seed, method=args.method,
                                   names=[s.name for s in specs], upcast=not args.no_upcast)
    executor = None
    calls = CapturedOutput()
    try:
        with capture_output() as calls:
            closure = backward is None and _closure_style(forward, inputs)
            if backward is None and not closure:
                raise UsageError(f"no backward for {fname}: {where} defines no "
                                 f"{fname}_backward and {fname} does not return "
                                 "(out, backprop); pass --backward NAME")
            forward = Recorded(forward, "forward", errors, closure=closure)
            backward = None if backward is None else Recorded(backward, "backward", errors)
            if args.workers > 1:
                executor = process_pool(args.workers)
            report = check_vjp(forward, backward, *inputs, mode=args.mode, executor=executor,
                               force_full=args.force_full,
                               **options)
            full = None
            if args.html and args.mode != "full":
                small = [i for i, x in enumerate(inputs) if np.issubdtype(x.dtype, np.floating)
                         and 0 < x.size <= args.heatmap_limit]
                if small:
                    with warnings.catch_warnings():  # asked for by --heatmap-limit: no
                        warnings.simplefilter("ignore", CostWarning)  # cost warning
                        full = check_vjp(forward, backward, *inputs, mode="full", wrt=small,
                                         executor=executor, force_full=True, **options)
    except GradproofError as exc:  # an option or input the checker rejects
        raise UsageError(str(exc)) from exc
    finally:
        if executor is not None:
            executor.shutdown()
        outcome.captured.stdout += calls.stdout
        outcome.captured.stderr += calls.stderr
    report.function = report.function or fname
    outcome.report, outcome.full, outcome.backward_name = report, full, backward_name
    raised = [r for r in report.inputs if r.status == "ERROR"]
    if raised:
        role = "backward" if raised[0].reason.startswith("backward") else "forward"
        outcome.user_exc = errors.get(role) or next(iter(errors.values()), None)
        outcome.message = raised[0].reason


def _exit_status(outcome: _Outcome) -> int:
    if outcome.report is None:
        return EXIT_USER_ERROR if outcome.user_exc is not None else EXIT_USAGE
    if any(r.status == "ERROR" for r in outcome.report.inputs):
        return EXIT_USER_ERROR
    return EXIT_CODES[outcome.report.verdict]


def _json_document(outcome: _Outcome, status: int) -> dict[str, Any]:
    """The one JSON document ``--json`` prints (docs/report-schema.json)."""
    from ..check.report import REPORT_SCHEMA_VERSION

    traceback_text = user_traceback(outcome.user_exc) if outcome.user_exc else None
    if outcome.report is not None:
        doc = outcome.report.to_dict()
    else:
        kind = outcome.error_kind or ("user-code" if outcome.user_exc else "usage")
        doc = {"version": REPORT_SCHEMA_VERSION, "verdict": "error",
               "error": {"kind": kind, "message": outcome.message}}
    doc["exit_status"] = status
    doc["captured"] = outcome.captured.to_dict()
    doc["traceback"] = traceback_text
    return doc


def _emit(outcome: _Outcome, args: argparse.Namespace, status: int) -> None:
    from ..check.terminal import print_report

    report = outcome.report
    info = sys.stderr if args.json else sys.stdout
    if outcome.user_exc is not None:
        print(f"gradproof check: error: the checked code raised (exit status "
              f"{EXIT_USER_ERROR}); its traceback:\n{user_traceback(outcome.user_exc)}",
              file=sys.stderr)
    elif report is None:
        print(f"gradproof check: error: {outcome.message}", file=sys.stderr)
    if args.json:
        print(json.dumps(_json_document(outcome, status), indent=2))
    elif report is not None:
        print_report(report, sys.stdout, color=args.color)
        lines = outcome.captured.lines()
        if lines:
            print(f"output of the checked code (captured during import and calls, "
                  f"{len(lines)} lines):")
            for line in lines[:MAX_CAPTURED_LINES]:
                print(f"  | {line}")
            if len(lines) > MAX_CAPTURED_LINES:
                print(f"  ... {len(lines) - MAX_CAPTURED_LINES} more lines (--json holds all)")
    elif outcome.captured.lines():  # an error: the user's output may explain it
        print("output of the checked code (captured):", file=sys.stderr)
        print("\n".join(f"  | {line}" for line in outcome.captured.lines()), file=sys.stderr)
    if args.html and report is not None:
        from ..check.html import write_html

        path = write_html(report, args.html, full=outcome.full)
        print(f"HTML report: {path}", file=info)
    if report is not None and outcome.backward_name is None and not args.json:
        print("(closure style: the forward returned (out, backprop))", file=info)


def _check(args: argparse.Namespace) -> int:
    outcome = _Outcome()
    try:
        with time_budget(args.timeout):  # check_vjp inherits it
            _run_check(args, outcome)
    except TimeBudgetSpent:  # while importing or probing, before check_vjp started
        outcome.message = (f"inconclusive: the time budget (--timeout {args.timeout:g} s) "
                           "was spent before the check started")
        outcome.error_kind = "timeout"
        _emit(outcome, args, EXIT_CODES["inconclusive"])
        return EXIT_CODES["inconclusive"]
    except UsageError as exc:
        outcome.message = str(exc)
    except UserCodeError as exc:
        outcome.message = str(exc)
        outcome.user_exc = exc.exc
    status = _exit_status(outcome)
    _emit(outcome, args, status)
    return status


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(seed=args.seed)
    return 0


def _zoo(args: argparse.Namespace) -> int:
    from ..zoo.table import run_from_args

    return run_from_args(args)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def _add_check_parser(subparsers: argparse._SubParsersAction) -> None:
    from ..check.terminal import COLOR_CHOICES

    check = subparsers.add_parser(
        "check",
        help="check a backward pass in your own file: gradproof check mylayer.py:affine ...",
        description="Check FUNCTION's backward at random inputs. Exit status: 0 every input "
                    "proven right, 1 a bug found, 3 inconclusive (nothing proven either way), "
                    "2 usage error, 4 the checked code raised (its traceback is printed). "
                    "What the checked module prints is captured and shown under the report.",
        epilog="example: gradproof check mylayer.py:affine --input x=4,10 --input w=10,3 "
               "--input b=3",
    )
    check.add_argument("target", metavar="MODULE:FUNCTION",
                       help="a file and function (mylayer.py:affine) or module:function")
    check.add_argument("--input", "-i", action="append", metavar="NAME=SHAPE[:DTYPE][:LO..HI]",
                       help=f"one per input of FUNCTION: {INPUT_SYNTAX}")
    check.add_argument("--backward", metavar="NAME",
                       help="the backward function (default FUNCTION_backward; closure style "
                            "when there is none and FUNCTION returns (out, backprop))")
    check.add_argument("--seed", type=int, default=0, help="seed of the inputs and the check")
    check.add_argument("--mode", choices=("auto", "full"), default="auto",
                       help="auto: random projections (cheap); full: every coordinate")
    check.add_argument("--force-full", action="store_true",
                       help="run --mode full even above its cap of 200,000 forward calls "
                            "(bound it with --timeout)")
    check.add_argument("--method", choices=("fd", "complex"), default="fd",
                       help="central differences, or complex step where the forward allows")
    check.add_argument("--no-upcast", action="store_true",
                       help="do not re-check float32 inputs in float64")
    check.add_argument("--json", action="store_true",
                       help="print only JSON on stdout: the report (docs/report-schema.json) "
                            "with the captured output of the checked code")
    check.add_argument("--html", metavar="FILE", help="write a self-contained HTML report")
    check.add_argument("--heatmap-limit", type=int, default=4096, metavar="N",
                       help="with --html in auto mode, run a full check of the inputs with at "
                            "most N elements for the heat maps (default 4096; 0: none)")
    check.add_argument("--timeout", type=_seconds, default=None, metavar="SECONDS",
                       help="time budget: when spent, the inputs not yet proven are "
                            "inconclusive (exit 3); on POSIX a forward that never returns "
                            "is interrupted")
    check.add_argument("--workers", type=int, default=1, metavar="N",
                       help="evaluate the forward in N processes (FUNCTION must be picklable)")
    check.add_argument("--color", choices=COLOR_CHOICES, default="auto",
                       help="colour the table (auto: on a terminal without NO_COLOR)")
    check.set_defaults(func=_check)


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo", help="check a handful of layers, three of them buggy, and print the reports",
        description="Check a handful of gradproof.nn layers and three buggy student versions "
                    "(a batch-norm backward without the variance path, a (1, M) bias "
                    "gradient, a ReLU backward that writes into dout) and print the reports."
    )
    demo.add_argument("--seed", type=int, default=0, help="seed of the inputs and the check")
    demo.set_defaults(func=_demo)

    zoo = subparsers.add_parser(
        "zoo", help="run the bug zoo through gradproof and other checkers and print the table"
    )
    from ..zoo.table import add_arguments

    add_arguments(zoo)
    zoo.set_defaults(func=_zoo)
    _add_check_parser(subparsers)
