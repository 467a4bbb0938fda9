"""``python -m gradproof`` is the ``gradproof`` command."""

import sys

from .cli import main

sys.exit(main())
