"""Plots of a :class:`~gradproof.diagnose.stats.RunRecord` (matplotlib, the ``[plot]`` extra).

Each function draws one figure and returns it (``matplotlib.figure.Figure``,
Agg backend, no window): :func:`plot_grad_norms`, :func:`plot_activation_histograms`,
:func:`plot_update_ratios`, :func:`plot_loss`. :func:`run_figures` gives all
four by name; :func:`figure_png` renders one to PNG bytes; :func:`save_pngs`
writes them to a folder.
"""

from __future__ import annotations

import io
import os

import numpy as np

from .stats import RunRecord

__all__ = ["plot_grad_norms", "plot_activation_histograms", "plot_update_ratios", "plot_loss",
           "run_figures", "figure_png", "save_pngs"]

_ACTIVATION_KINDS = ("relu", "sigmoid", "tanh", "rnn", "lstm", "gru")


def _figure(width: float = 6.4, height: float = 3.6):
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _log_lines(ax, steps, series: dict[str, list[float]], ylabel: str) -> None:
    for name, values in series.items():
        values = np.asarray(values, dtype=np.float64)
        ax.plot(steps[: len(values)], np.where(values > 0, values, np.nan), label=name, lw=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(ylabel)
    if series:
        ax.legend(fontsize=7, ncol=2)


def _per_weight(record: RunRecord, table: dict, ylabel: str, title: str):
    """One log-scale line per weight (model order) over the recorded steps."""
    fig = _figure()
    ax = fig.add_subplot()
    names = record.weight_names() or list(table)
    _log_lines(ax, np.asarray(record.steps), {n: table[n] for n in names if n in table}, ylabel)
    ax.set_title(title)
    return fig, ax


def plot_grad_norms(record: RunRecord):
    """Gradient norm of each weight (model order) per recorded step, log scale."""
    fig, _ = _per_weight(record, record.grad_norm, "||dL/dw||", "gradient norm per layer")
    return fig


def plot_update_ratios(record: RunRecord):
    """``||update|| / ||w||`` per weight per recorded step; the 1e-3 rule of thumb dashed."""
    fig, ax = _per_weight(record, record.update_ratio, "||update|| / ||w||",
                          "update-to-parameter ratio (rule of thumb ~1e-3, dashed)")
    ax.axhline(1e-3, color="gray", ls="--", lw=1)
    return fig


def plot_loss(record: RunRecord):
    """Training loss at every step (log scale when positive)."""
    fig = _figure()
    ax = fig.add_subplot()
    loss = np.asarray(record.loss, dtype=np.float64)
    ax.plot(record.loss_steps, np.where(np.isfinite(loss), loss, np.nan), lw=1.2)
    if record.num_classes and record.loss_name in (None, "softmax"):
        ax.axhline(np.log(record.num_classes), color="gray", ls="--", lw=1,
                   label=f"log {record.num_classes}")
        ax.legend(fontsize=7)
    finite = loss[np.isfinite(loss)]
    if finite.size and finite.min() > 0:
        ax.set_yscale("log")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title("training loss")
    return fig


def plot_activation_histograms(record: RunRecord):
    """One panel per activation layer: histograms at the first and last recorded steps."""
    names = [n for n, k in record.layers.items() if k in _ACTIVATION_KINDS
             and record.activations.get(n, {}).get("hist")]
    if not names:
        names = [n for n in record.layers if record.activations.get(n, {}).get("hist")]
    cols = min(4, max(1, len(names)))
    rows = max(1, -(-len(names) // cols))
    fig = _figure(3.2 * cols, 2.4 * rows)
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        hists = record.activations[name]["hist"]
        for (counts, edges), label, color in ((hists[0], f"step {record.steps[0]}", "C0"),
                                              (hists[-1], f"step {record.steps[-1]}", "C1")):
            ax.stairs(counts / max(counts.sum(), 1), edges, label=label, color=color,
                      fill=label.endswith(str(record.steps[0])), alpha=0.6)
        ax.set_title(f"{name} ({record.layers[name]})", fontsize=9)
        ax.tick_params(labelsize=7)
        if i == 0:
            ax.legend(fontsize=7)
    fig.suptitle("activation histograms, first and last recorded step", fontsize=10)
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
