"""Run the bug zoo through gradproof, torch.autograd.gradcheck, scipy and the CS231n recipe.

    python benchmarks/zoo/run.py [--markdown out.md] [--tools gradproof cs231n] [--verbose]

Prints, per tool, bugs caught / bug cases, false alarms / correct and kink cases,
forward calls and seconds. See docs/zoo.md and gradproof.zoo.runners for what
each tool receives.
"""

import sys

from gradproof.zoo.table import main

if __name__ == "__main__":
    sys.exit(main())
