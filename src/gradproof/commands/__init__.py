"""The ``gradproof`` command's subcommands that stand on everything else.

``check.py`` (``gradproof check``, ``demo``, ``zoo``: the checker run on a
user's file, on nn's layers and on the zoo) and ``demo.py`` (the layers the demo
checks). They live on the top floor, beside :mod:`gradproof.cli`, because they
import the checker, nn and the zoo alike (see docs/architecture.md).
"""
