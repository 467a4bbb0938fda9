"""``gradproof diagnose DEMO``: run a demo's bad recipe and its fix, print the warnings.

    gradproof diagnose sigmoid-init [--epochs 1] [--html page.html] [--png-dir DIR]
    gradproof diagnose relu-lr
    gradproof diagnose rnn-long

The exit status is 0 when every bad run raised its warning and every fix
removed it, 1 otherwise.
"""

from __future__ import annotations

import argparse

from .demos import DEMOS, RunResult, run_demo

__all__ = ["register", "format_result"]

# ``--help`` shows plain text (the module docstring is reStructuredText)
DESCRIPTION = """\
Run a demo's bad recipe and its fix, print the warnings each run raised.

  gradproof diagnose sigmoid-init   too-large init: saturated sigmoids, initial loss far
                                    above log(classes)
  gradproof diagnose relu-lr        learning rate 1.0: exploding gradients, dead ReLUs
  gradproof diagnose rnn-long       T=50: a plain RNN explodes (clipping fixes it) or
                                    vanishes (a gated LSTM/GRU fixes it)

Exit status: 0 when every bad run raised its warning and every fix removed it,
1 otherwise. --html writes one self-contained page with every run's plots."""


def format_result(result: RunResult) -> str:
    """A few lines about one run: its role, figures and warnings (with the epoch they came in)."""
    spec = result.spec
    verdict = "as expected" if result.expected_fired() else "NOT as expected"
    head = (f"[{spec.role}] {spec.label}: train loss {result.train_loss[-1]:.3f}, "
            f"val acc {result.val_acc[-1]:.3f}, {result.seconds:.2f} s "
            f"({'expects' if spec.role == 'bad' else 'must not show'} "
            f"{', '.join(spec.expect)}: {verdict})")
    lines = [head]
    for finding in result.findings:
        when = ""
        if finding.step is not None and result.steps_per_epoch:
            when = f" (step {finding.step}, epoch {finding.step // result.steps_per_epoch + 1})"
        lines.append("  " + str(finding).replace("\n", f"{when}\n  ", 1))
    if not result.findings:
        lines.append("  no warnings")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    title, _ = DEMOS[args.demo]
    print(f"gradproof diagnose {args.demo}: {title}\n")
    results = run_demo(args.demo, epochs=args.epochs, every=args.every)
    for result in results:
        print(format_result(result), end="\n\n")
    runs = [(f"[{r.spec.role}] {r.spec.label}", r.record, r.findings) for r in results]
    if args.html:
        from .html import write_html

        print(f"wrote {write_html(args.html, runs, f'gradproof diagnose {args.demo}: {title}')}")
    if args.png_dir:
        from .plots import save_pngs

        for index, (_, record, _) in enumerate(runs):
            save_pngs(record, args.png_dir, prefix=f"{args.demo}-{index}-")
        print(f"wrote PNGs to {args.png_dir}")
    return 0 if all(r.expected_fired() for r in results) else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``gradproof diagnose`` to the command line."""
    parser = subparsers.add_parser(
        "diagnose", help="demos of training leaks (saturation, dead ReLUs, exploding/vanishing)",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("demo", choices=sorted(DEMOS), help="which demo to run")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per run (default 1)")
    parser.add_argument("--every", type=int, default=1, help="record statistics every k steps")
    parser.add_argument("--html", metavar="PATH", help="write a self-contained HTML page")
    parser.add_argument("--png-dir", metavar="DIR", help="write each run's plots as PNGs")
    parser.set_defaults(func=_run)
