"""Run the bug zoo through gradproof, torch.autograd.gradcheck, scipy and the CS231n recipe.

    python benchmarks/zoo/run.py [--markdown out.md] [--tools gradproof cs231n] [--verbose]

Prints, per tool, bugs caught / bug cases, false alarms / correct and kink cases,
forward calls and seconds. See docs/zoo.md and gradproof.zoo.runners for what
each tool receives.
"""

import os
import sys

# one BLAS thread: timings comparable between runs and across busy machines
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from gradproof.zoo.table import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
