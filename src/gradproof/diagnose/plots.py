"""Plots of a :class:`~gradproof.diagnose.stats.RunRecord` (matplotlib, the ``[plot]`` extra).

Each function draws one figure and returns it (``matplotlib.figure.Figure``,
Agg backend, no window): :func:`plot_grad_norms`, :func:`plot_activation_histograms`,
:func:`plot_update_ratios`, :func:`plot_loss`. :func:`run_figures` gives all
four by name; :func:`figure_png` renders one to PNG bytes; :func:`save_pngs`
writes them to a folder.

Drawn to be read at full page width (11 x 3.8 in at 100 dpi, 11-13 pt text).
A quantity that spans decades gets a log axis; a gradient norm that is
*exactly* zero (a dead network) is not dropped by the log scale: the axis
becomes symmetric-log with a linear band around 0, and the zeros sit on it.
"""

from __future__ import annotations

import io
import os

import numpy as np

from .stats import RunRecord

__all__ = ["plot_grad_norms", "plot_activation_histograms", "plot_update_ratios", "plot_loss",
           "run_figures", "figure_png", "save_pngs"]

_ACTIVATION_KINDS = ("relu", "sigmoid", "tanh", "rnn", "lstm", "gru")
WIDTH_IN, HEIGHT_IN, DPI = 11.0, 3.8, 100  # a figure fills a 1100-px column unscaled
LABEL_PT, TICK_PT, TITLE_PT, LEGEND_PT = 12, 11, 13, 10
DECADES_FOR_LOG = 2.0  # positive values spanning more than this many decades: log axis


def _figure(width: float = WIDTH_IN, height: float = HEIGHT_IN):
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _label(ax, xlabel: str, ylabel: str, title: str) -> None:
    ax.set_xlabel(xlabel, fontsize=LABEL_PT)
    ax.set_ylabel(ylabel, fontsize=LABEL_PT)
    ax.set_title(title, fontsize=TITLE_PT)
    ax.tick_params(labelsize=TICK_PT)
    ax.grid(True, which="major", alpha=0.3)


def spans_decades(values) -> bool:
    """Whether the positive finite ``values`` span more than :data:`DECADES_FOR_LOG`."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v) & (v > 0)]
    return v.size > 1 and np.log10(v.max() / v.min()) > DECADES_FOR_LOG


def _log_lines(ax, steps, series: dict[str, list[float]], ylabel: str) -> bool:
    """One line per series on a log axis; exact zeros kept (symlog). Returns whether any
    value was exactly zero."""
    every = [np.asarray(v, dtype=np.float64) for v in series.values()]
    joined = np.concatenate(every) if every else np.zeros(0)
    positive = joined[np.isfinite(joined) & (joined > 0)]
    has_zero = bool(np.any(joined == 0))
    for name, values in zip(series, every):
        ax.plot(steps[: len(values)], np.where(np.isfinite(values), values, np.nan),
                label=name, lw=1.6, marker="o" if len(values) <= 30 else None, ms=3)
    if has_zero:
        # a log axis would drop the zeros: linear within a decade below the smallest value
        floor = float(positive.min()) if positive.size else 1.0
        ax.set_yscale("symlog", linthresh=floor / 10, linscale=2.0)
        ax.axhline(0.0, color="#b42318", lw=1.2, ls=":", label="exactly 0")
    elif positive.size:
        ax.set_yscale("log")
    if series:
        ax.legend(fontsize=LEGEND_PT, ncol=min(5, len(series) + has_zero), loc="best")
    return has_zero


def _per_weight(record: RunRecord, table: dict, ylabel: str, title: str):
    """One log-scale line per weight (model order) over the recorded steps."""
    fig = _figure()
    ax = fig.add_subplot()
    names = record.weight_names() or list(table)
    _log_lines(ax, np.asarray(record.steps), {n: table[n] for n in names if n in table}, ylabel)
    _label(ax, "optimizer step", ylabel, title)
    return fig, ax


def plot_grad_norms(record: RunRecord):
    """Gradient norm of each weight (model order) per recorded step, log scale (symmetric
    log when a norm is exactly 0, so a dead layer shows as a line on 0)."""
    fig, _ = _per_weight(record, record.grad_norm, "||dL/dw||", "gradient norm per layer")
    return fig


def plot_update_ratios(record: RunRecord):
    """``||update|| / ||w||`` per weight per recorded step; the 1e-3 rule of thumb dashed."""
    fig, ax = _per_weight(record, record.update_ratio, "||update|| / ||w||",
                          "update-to-parameter ratio (rule of thumb ~1e-3, dashed)")
    ax.axhline(1e-3, color="gray", ls="--", lw=1.2)
    return fig


def plot_loss(record: RunRecord):
    """Training loss at every step (log scale when positive)."""
    fig = _figure()
    ax = fig.add_subplot()
    loss = np.asarray(record.loss, dtype=np.float64)
    ax.plot(record.loss_steps, np.where(np.isfinite(loss), loss, np.nan), lw=1.6)
    if record.num_classes and record.loss_name in (None, "softmax"):
        ax.axhline(np.log(record.num_classes), color="gray", ls="--", lw=1.2,
                   label=f"log {record.num_classes} (chance)")
        ax.legend(fontsize=LEGEND_PT)
    finite = loss[np.isfinite(loss)]
    if finite.size and finite.min() > 0 and spans_decades(finite):
        ax.set_yscale("log")
    _label(ax, "optimizer step", "loss", "training loss")
    return fig


def plot_activation_histograms(record: RunRecord):
    """One panel per activation layer: histograms at the first and last recorded steps."""
    names = [n for n, k in record.layers.items() if k in _ACTIVATION_KINDS
             and record.activations.get(n, {}).get("hist")]
    if not names:
        names = [n for n in record.layers if record.activations.get(n, {}).get("hist")]
    cols = min(3, max(1, len(names)))
    rows = max(1, -(-len(names) // cols))
    fig = _figure(WIDTH_IN, 3.0 * rows + 0.4)
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        hists = record.activations[name]["hist"]
        fractions = []
        for (counts, edges), label, color in ((hists[0], f"step {record.steps[0]}", "C0"),
                                              (hists[-1], f"step {record.steps[-1]}", "C1")):
            fraction = counts / max(counts.sum(), 1)
            fractions.append(fraction)
            ax.stairs(fraction, edges, label=label, color=color,
                      fill=label.endswith(str(record.steps[0])), alpha=0.6)
        if spans_decades(np.concatenate(fractions)):
            ax.set_yscale("log")  # a spike at 0 (dead ReLUs) and a thin tail
        ax.set_title(f"{name} ({record.layers[name]})", fontsize=LABEL_PT)
        ax.set_xlabel("activation value", fontsize=TICK_PT)
        ax.set_ylabel("fraction of units", fontsize=TICK_PT)
        ax.tick_params(labelsize=TICK_PT - 1)
        if i == 0:
            ax.legend(fontsize=LEGEND_PT)
    fig.suptitle("activation histograms, first and last recorded step", fontsize=TITLE_PT)
    return fig


PLOTS = {
    "loss": plot_loss,
    "grad_norms": plot_grad_norms,
    "update_ratios": plot_update_ratios,
    "activations": plot_activation_histograms,
}


def run_figures(record: RunRecord) -> dict:
    """All four figures of a run, by name (``loss``, ``grad_norms``, ``update_ratios``,
    ``activations``)."""
    return {name: plot(record) for name, plot in PLOTS.items()}


def figure_png(fig) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def save_pngs(record: RunRecord, folder: str | os.PathLike, prefix: str = "") -> list[str]:
    """Write the run's four figures as ``<prefix><name>.png`` into ``folder``; return paths."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for name, fig in run_figures(record).items():
        path = os.path.join(os.fspath(folder), f"{prefix}{name}.png")
        with open(path, "wb") as handle:
            handle.write(figure_png(fig))
        paths.append(path)
    return paths
