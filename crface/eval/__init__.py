"""Evaluation: the WIDER FACE protocol, prediction files and PR-curve plots.

>>> from crface.data import load_dataset
>>> from crface.eval import evaluate, read_predictions
>>> preds = read_predictions("preds/")                        # doctest: +SKIP
>>> print(evaluate(preds, load_dataset("wider_val200")))      # doctest: +SKIP
"""

from __future__ import annotations

from crface.eval.plot import plot_pr_curves
from crface.eval.wider import (
    THRESHOLDS,
    EvalResult,
    evaluate,
    read_predictions,
    voc_ap,
    write_predictions,
)

__all__ = [
    "THRESHOLDS",
    "EvalResult",
    "evaluate",
    "plot_pr_curves",
    "read_predictions",
    "voc_ap",
    "write_predictions",
]
