"""gradproof.diagnose: training leaks made visible.

* :class:`Diagnostics` (a trainer hook, or called from your own loop) records
  per-layer activation statistics, gradient norms, update ratios and the loss
  into a :class:`RunRecord` (:mod:`.stats`);
* :func:`detect` turns a record into plain-language :class:`Finding` warnings
  with a suggested fix; :func:`check_overfit` tries to overfit a tiny batch
  (:mod:`.detectors`);
* :mod:`.plots` (matplotlib) and :func:`write_html` (one self-contained page);
* :mod:`.demos`: ``gradproof diagnose sigmoid-init | relu-lr | rnn-long``.

Plots and the HTML page import matplotlib when called; the rest needs NumPy.
"""

from .detectors import DETECTORS, Finding, OverfitResult, Thresholds, check_overfit, detect
from .stats import Diagnostics, RunRecord


def write_html(*args, **kwargs):
    """See :func:`gradproof.diagnose.html.write_html` (imports matplotlib)."""
    from .html import write_html as _write_html

    return _write_html(*args, **kwargs)


__all__ = ["Diagnostics", "RunRecord", "detect", "Finding", "Thresholds", "DETECTORS",
           "check_overfit", "OverfitResult", "write_html"]
