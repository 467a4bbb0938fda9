"""Scale benchmark: gradproof's default check vs torch.autograd.gradcheck on real layer sizes.

    python benchmarks/scale/run.py [--markdown out.md] [--full-limit 60] [--cases affine conv]

Vectorised layers from the zoo, each checked correct and with one planted
bug: the gradient of ONE input multiplied by 1.05 on a small region. Blocks:
one row of dw, one filter of dw, four coordinates of dx in one row, the output
gate's columns of dWh. Structures (issue 10): one column and every 16th column
of dw of a 64x256 -> 128 affine, every 16th column of dv in multi-head
attention (one feature of each head), one column of a layer norm's dx, the
label entries of a softmax loss (one entry per row). For gradproof it prints
whether the bug was caught, whether it was localised (the planted input is the
only one that fails and every one of its worst coordinates lies in the planted
region), forward calls, their ratio to a full Jacobian by central differences
(2 calls per input element) and to gradproof's own ``mode="full"`` (4 calls
per element), and seconds. A layer planted in several ways is run correct once.
For torch.autograd.gradcheck: fast mode always; full mode when its estimated
time (2 forwards per input element + 1 backward per output element, each
timed as the fastest of a few calls) is under --full-limit seconds and its two
dense Jacobians fit in --full-memory GB; otherwise its forward-call count
without running it.

BLAS is pinned to one thread (unless the environment says otherwise) so the
seconds are comparable between runs and machines with busy cores.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from functools import partial  # noqa: E402

import numpy as np  # noqa: E402

import gradproof  # noqa: E402
from gradproof.zoo import conv, dense, norm, recurrent, structured  # noqa: E402
from gradproof.zoo.case import Case, normal  # noqa: E402
from gradproof.zoo.runners import CountingForward, run_case  # noqa: E402

FACTOR = 1.05


@dataclass(frozen=True)
class Plant:
    """A planted bug: gradient ``input`` multiplied by FACTOR on ``region``.

    ``region`` is a NumPy index, or a function of the case's inputs that returns
    one (the label entries depend on the labels).
    """

    input: int
    region: object
    where: str

    def index(self, inputs):
        return self.region(inputs) if callable(self.region) else self.region

    def mask(self, inputs) -> np.ndarray:
        mask = np.zeros(inputs[self.input].shape, dtype=bool)
        mask[self.index(inputs)] = True
        return mask

    def into(self, backward, inputs):
        index = self.index(inputs)

        def buggy(*args):
            grads = list(backward(*args))
            grads[self.input] = grads[self.input].copy()
            grads[self.input][index] *= FACTOR
            return tuple(grads)

        return buggy


@dataclass(frozen=True)
class ScaleCase:
    name: str
    forward: object
    backward: object
    make_inputs: object
    plant: Plant

    def case(self, bugged: bool) -> Case:
        correct = Case(self.name, "scale", "correct", self.plant.where, self.forward,
                       self.backward, self.make_inputs)
        if not bugged:
            return correct
        return Case(self.name, "scale", "bug", self.plant.where, self.forward,
                    self.plant.into(self.backward, correct.inputs()), self.make_inputs,
                    expect=self.plant.where)


def _lstm_inputs(rng):
    return recurrent.lstm_inputs(32, 64, 128)(rng)


def _label_entries(inputs):
    return np.arange(len(inputs[1])), inputs[1]


HID = 128
AFFINE_WIDE = "affine 64x256 -> 128"
SCALE_CASES = {
    "affine": ScaleCase(
        "affine 32x128 -> 64", dense.affine_forward, dense.affine_backward,
        lambda rng: (normal(rng, 32, 128), normal(rng, 128, 64, scale=0.1), normal(rng, 64)),
        Plant(1, (17, slice(None)), "dw row 17")),
    "affine_column": ScaleCase(
        AFFINE_WIDE, dense.affine_forward, dense.affine_backward, structured.affine_inputs,
        Plant(1, (slice(None), 40), "dw column 40")),
    "affine_stride": ScaleCase(
        AFFINE_WIDE, dense.affine_forward, dense.affine_backward, structured.affine_inputs,
        Plant(1, (slice(None), slice(None, None, 16)), "dw every 16th column")),
    "conv": ScaleCase(
        "conv 3x3 pad 1, x (8, 16, 16, 16), 16 filters",
        partial(conv.conv_forward, stride=1, pad=1), conv.conv_backward,
        conv.conv_inputs(8, 16, 16, 16, 3), Plant(1, (5,), "dw filter 5")),
    "layernorm": ScaleCase(
        "layer norm 64x512", norm.layernorm_forward, norm.layernorm_backward,
        norm.norm_inputs(64, 512), Plant(0, (10, slice(100, 104)), "dx[10, 100:104]")),
    "layernorm_column": ScaleCase(
        "layer norm 64x512", norm.layernorm_forward, norm.layernorm_backward,
        norm.norm_inputs(64, 512), Plant(0, (slice(None), 511), "dx column 511")),
    "mha_stride": ScaleCase(
        "multi-head attention q, k, v (4, 16, 128), 8 heads", structured.mha_forward,
        structured.mha_backward, structured.mha_inputs,
        Plant(2, (..., slice(None, None, 16)), "dv every 16th column (one feature per head)")),
    "softmax_rows": ScaleCase(
        "softmax loss 256x100", dense.softmax_loss_forward, dense.softmax_loss_backward,
        dense.scores_and_labels(256, 100),
        Plant(0, _label_entries, "dx label entries (one per row)")),
    "lstm": ScaleCase(
        "LSTM step N=32, D=64, H=128", recurrent.lstm_step_forward,
        recurrent.lstm_step_backward, _lstm_inputs,
        Plant(4, (slice(None), slice(2 * HID, 3 * HID)), "dWh output-gate columns")),
}


def _n_elements(inputs) -> int:
    return sum(x.size for x in inputs if isinstance(x, np.ndarray) and x.dtype.kind == "f")


def run_gradproof(case: Case, plant: Plant) -> dict:
    inputs = case.inputs()
    forward = CountingForward(case.forward)
    start = time.perf_counter()
    report = gradproof.check_vjp(forward, case.backward, *inputs)
    seconds = time.perf_counter() - start
    row = {"flagged": not report.ok, "calls": forward.calls, "seconds": seconds,
           "ratio": forward.calls / (2 * _n_elements(inputs)),
           "ratio_full_mode": forward.calls / (4 * _n_elements(inputs))}
    if case.kind == "bug":
        mask = plant.mask(inputs)
        target = report.inputs[plant.input]
        others_ok = all(r.ok for r in report.inputs if r.index != plant.input)
        coords = [c for c, _, _ in target.worst]
        row["localised"] = (not target.ok and others_ok and bool(coords)
                            and all(mask[c] for c in coords))
        row["worst"] = coords[:3]
    return row


def _time_torch_calls(case: Case) -> tuple[float, float, int]:
    """Seconds per forward and per backward through the torch wrapper, and output size."""
    import torch

    from gradproof.zoo.runners import _numpy_function

    inputs = case.inputs()
    args = [torch.from_numpy(x).requires_grad_(x.dtype.kind == "f") for x in inputs]
    float_args = [a for a in args if a.requires_grad]
    layer = _numpy_function(case, CountingForward(case.forward))
    t_forward = _best_of(5, lambda: layer.apply(*args))
    outs = layer.apply(*args)
    outs = outs if isinstance(outs, tuple) else (outs,)
    ones = [torch.ones_like(o) for o in outs]
    t_backward = _best_of(5, lambda: torch.autograd.grad(outs, float_args, ones,
                                                         retain_graph=True))
    return t_forward, t_backward, sum(o.numel() for o in outs)


def _best_of(repeats: int, call) -> float:
    """Fastest of a few timed calls (a lower bound: the estimate is optimistic for torch)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def run_torch(case: Case, full_limit: float, full_memory_gb: float) -> dict:
    fast = run_case("torch_fast", case)
    row = {"fast": fast}
    n_in = _n_elements(case.inputs())
    t_forward, t_backward, n_out = _time_torch_calls(case)
    estimate = 2 * n_in * t_forward + n_out * t_backward
    memory_gb = 2 * n_in * n_out * 8 / 1e9
    if estimate <= full_limit and memory_gb <= full_memory_gb:
        row["full"] = run_case("torch_full", case)
    else:
        row["full_skipped"] = (f"not run: {2 * n_in} forward calls, est. {estimate:.0f} s, "
                               f"Jacobians {memory_gb:.1f} GB")
    return row


def _verdict(flagged: bool, bugged: bool) -> str:
    word = "FLAG" if flagged else "pass"
    return word if flagged == bugged else f"{word} (wrong)"


def format_row(name: str, bugged: bool, gp: dict, tr: dict | None) -> str:
    cells = [name, "bug" if bugged else "correct", _verdict(gp["flagged"], bugged)]
    cells.append(("yes " + str(gp["worst"]) if gp["localised"] else f"NO {gp['worst']}")
                 if bugged else "-")
    cells += [str(gp["calls"]), f"{100 * gp['ratio']:.3f}%",
              f"{100 * gp['ratio_full_mode']:.3f}%", f"{gp['seconds']:.2f}"]
    if tr is not None:
        fast = tr["fast"]
        cells += [f"{_verdict(fast.flagged, bugged)}, {fast.forward_calls} calls, "
                  f"{fast.seconds:.2f} s"]
        full = tr.get("full")
        cells += [f"{_verdict(full.flagged, bugged)}, {full.forward_calls} calls, "
                  f"{full.seconds:.1f} s" if full else tr["full_skipped"]]
    return "| " + " | ".join(cells) + " |"


HEADER = ("| layer | variant | gradproof | localised (worst coords) | calls | "
          "calls / full Jacobian | calls / mode=full | seconds | torch fast | torch full |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=list(SCALE_CASES),
                        default=list(SCALE_CASES))
    parser.add_argument("--full-limit", type=float, default=60.0,
                        help="run gradcheck full mode only when estimated under this (s)")
    parser.add_argument("--full-memory", type=float, default=2.0,
                        help="... and when its two dense Jacobians fit in this many GB")
    parser.add_argument("--no-torch", action="store_true", help="gradproof only")
    parser.add_argument("--markdown", metavar="PATH", help="also write the table here")
    args = parser.parse_args(argv)

    if not args.no_torch:  # warm torch up now, so that no case's seconds include it
        from gradproof.zoo import cases

        run_case("torch_fast", cases()["l2_reg"])

    lines = [HEADER, "|---" * 10 + "|"]
    print(lines[0], flush=True)
    seen = set()  # a layer planted in several ways is run correct once
    for key in args.cases:
        spec = SCALE_CASES[key]
        variants = (True,) if spec.name in seen else (False, True)
        seen.add(spec.name)
        for bugged in variants:
            case = spec.case(bugged)
            gp = run_gradproof(case, spec.plant)
            tr = None if args.no_torch else run_torch(case, args.full_limit, args.full_memory)
            lines.append(format_row(f"{spec.name} [{spec.plant.where}]" if bugged
                                    else spec.name, bugged, gp, tr))
            print(lines[-1], flush=True)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
