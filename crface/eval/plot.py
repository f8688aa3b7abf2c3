"""Precision-recall curves of WIDER FACE evaluations (needs matplotlib)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from crface._optional import require
from crface.eval.wider import EvalResult


def plot_pr_curves(
    results: EvalResult | Mapping[str, EvalResult],
    path: str | os.PathLike,
    *,
    title: str | None = None,
    dpi: int = 120,
) -> Path:
    """Save a PNG with one precision-recall subplot per setting, one curve per result.

    Args:
        results: ``label -> EvalResult`` (legend entries read ``label (AP)``), or one result.
        path: the image file to write (its folder is created).
        title: an optional figure title.
        dpi: resolution of the saved image.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: no results.
        TypeError: a value that is not an :class:`~crface.eval.wider.EvalResult`.
        ImportError: matplotlib is not installed.

    Example:
        >>> plot_pr_curves({"baseline": base, "crface": ours}, "pr.png")   # doctest: +SKIP
        PosixPath('pr.png')
    """
    if isinstance(results, EvalResult):
        results = {results.dataset or "predictions": results}
    if not results:
        raise ValueError("plot_pr_curves needs at least one EvalResult")
    for label, res in results.items():
        if not isinstance(res, EvalResult):
            raise TypeError(f"results[{label!r}] must be an EvalResult; got {type(res).__name__}")
    # The Figure API, not pyplot: no global backend or figure state in a library call.
    figure = require("matplotlib.figure", "plotting PR curves")
    settings = list(dict.fromkeys(s for res in results.values() for s in res.pr))
    fig = figure.Figure(figsize=(4.5 * len(settings), 4.2), layout="constrained")
    axes = fig.subplots(1, len(settings), squeeze=False)[0]
    for ax, setting in zip(axes, settings, strict=True):
        for label, res in results.items():
            if setting in res.pr:
                precision, recall = res.pr[setting]
                ax.plot(recall, precision, label=f"{label} ({res.ap[setting]:.3f})")
        ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="Recall", ylabel="Precision")
        ax.set_title(setting.capitalize())
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", fontsize="small", title="AP")
    if title:
        fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path
