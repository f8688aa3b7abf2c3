"""Pieces the example scripts share: arguments, error reporting, the before/after comparison and
the dataset evaluation. Not part of the crface API; read the examples first.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from crface.detectors import RUNNERS
from crface.imageio import load_image
from crface.weights import ASSETS

if TYPE_CHECKING:
    from crface.cache import CandidateCache
    from crface.data import FaceDataset
    from crface.detectors.base import DetectorRunner
    from crface.eval import EvalResult
    from crface.refiner import Refiner
    from crface.types import Detections

DATA = Path(__file__).resolve().parent / "data"


def run(main: Callable[[], int | None]) -> None:
    """Run ``main`` and exit with its status; a user error becomes one line on stderr, status 2."""
    try:
        status = main()
    except (FileNotFoundError, ImportError, ValueError) as exc:
        print(f"{Path(sys.argv[0]).name}: error: {exc}", file=sys.stderr)
        sys.exit(2)
    sys.exit(status or 0)


def add_data_args(parser: argparse.ArgumentParser) -> None:
    """``--data`` (a dataset folder in the WIDER layout) and ``--out`` (the output folder)."""
    parser.add_argument(
        "--data", required=True, help="dataset folder (images/, labels.txt) or a set in shared/data"
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder")


def add_sample_args(
    parser: argparse.ArgumentParser, formats: Sequence[str], sample: str, out: str
) -> None:
    """``--format`` (the first of ``formats`` by default), ``--sample`` (default
    ``examples/data/<sample>``) and the drawing and ranker options."""
    parser.add_argument("--format", choices=formats, default=formats[0])
    parser.add_argument("--sample", default=str(DATA / sample), help="sample .npz")
    add_drawing_args(parser, out=out)
    add_ranker_args(parser)


@contextmanager
def converted_sample(path: str, family: str) -> Iterator[tuple[Any, np.ndarray]]:
    """Open a sample of ``tools/make_adapter_samples.py``, say that it is not ``family`` output
    but converted RetinaFace output, and load the image it was made on.

    Yields:
        ``(the open npz, HxWx3 uint8 RGB image)``.
    """
    with np.load(path, allow_pickle=False) as sample:
        print(f"NOTE: not {family} model: {sample['source']}")
        yield sample, load_image(ASSETS / str(sample["image"]))


def add_ranker_args(parser: argparse.ArgumentParser) -> None:
    """``--weights`` (the ranker) and ``--device`` (ranker and detector)."""
    parser.add_argument(
        "--weights", default="crface-small", help="ranker: registered name or weights file"
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")


def add_detector_args(parser: argparse.ArgumentParser, default: str | None = "retinaface") -> None:
    """``--detector`` (a runner of :mod:`crface.detectors`) and ``--detector-weights``."""
    parser.add_argument(
        "--detector",
        default=default,
        required=default is None,
        choices=sorted(RUNNERS),
        help=f"detector runner (default: {default})" if default else "detector runner",
    )
    parser.add_argument(
        "--detector-weights",
        help="detector weights file (default: $CRFACE_SHARED/detectors/<file>, ../shared/...)",
    )


def add_drawing_args(parser: argparse.ArgumentParser, out: str) -> None:
    """``--out`` (the before/after PNG), ``--top`` and ``--draw-threshold``."""
    parser.add_argument("--out", default=out, help=f"before/after PNG to write (default: {out})")
    parser.add_argument("--top", type=int, default=10, help="rows of the table (default: 10)")
    parser.add_argument(
        "--draw-threshold",
        type=float,
        default=0.5,
        help="draw and count boxes scoring at least this (default: 0.5)",
    )


def load_detector(args: argparse.Namespace) -> DetectorRunner:
    """The runner ``args.detector``; missing weights raise FileNotFoundError saying what to do."""
    from crface.detectors import get_detector

    try:
        return get_detector(args.detector, args.detector_weights, device=args.device)
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"{exc}. crface bundles no {args.detector} weights: docs/detectors.md names the file "
            "and where it comes from; or pass --detector-weights FILE"
        ) from None


def load_refiner(args: argparse.Namespace) -> Refiner:
    """``crface.Refiner.load(args.weights)`` on ``args.device``, announced on stdout, with the
    blend strength the weights store for ``args.detector`` when they have one (else their
    default)."""
    import crface

    refiner = crface.Refiner.load(args.weights, device=args.device)
    detector = getattr(args, "detector", None)
    measured = detector in (refiner.metadata.get("strength") or {}).get("per_detector", {})
    if measured:
        refiner = crface.Refiner.load(args.weights, device=args.device, detector=detector)
    strength = f"strength {refiner.strength:g}"
    if measured:
        strength += f" (measured for {detector})"
    print(f"ranker: {args.weights} [{refiner.backend}, {refiner.device}], {strength}")
    return refiner


def compare(
    image: np.ndarray, candidates: Detections, args: argparse.Namespace, source: str
) -> None:
    """Rerank ``candidates``, print the detector's own result next to the reranked one and write
    them side by side.

    Args:
        image: the ``HxWx3`` uint8 RGB image.
        candidates: the detector's :class:`~crface.types.Detections` *before* NMS.
        args: with ``out``, ``top``, ``draw_threshold`` (:func:`add_drawing_args`), ``weights``
            and ``device`` (:func:`add_ranker_args`).
        source: what produced the candidates, for the printout.
    """
    from crface.eval.baselines import postprocess
    from crface.viz import before_after, comparison_table

    refiner = load_refiner(args)
    print(f"detector: {source}: {len(candidates)} candidates before NMS\n")
    # postprocess: score >= 0.02, hard NMS at IoU 0.4, at most 750, as Refiner.rerank's defaults.
    before = postprocess(candidates, "hard")
    after = refiner.rerank(image, candidates, invalid="drop")
    t = args.draw_threshold
    print(comparison_table(candidates, before, after, top=args.top, threshold=t))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    picture, diff = before_after(image, before, after, score_threshold=t)
    picture.save(out)
    print(f"\nwrote {out}\n{diff.summary()}")


def rerank_dataset(
    refiner: Refiner, dataset: FaceDataset, cache: CandidateCache, detector: str
) -> dict[str, Detections]:
    """Rerank the cached single-scale candidates of every image, ``refiner.batch_size`` at a time.

    Returns:
        image name -> reranked :class:`~crface.types.Detections` (hard NMS 0.4, score >= 0.02,
        at most 750: the evaluation protocol's post-processing).
    """
    from tqdm.auto import tqdm

    predictions = {}
    step = refiner.batch_size
    for start in tqdm(range(0, len(dataset), step), desc="rerank", unit="batch"):
        part = dataset[start : start + step]
        outs = refiner.rerank_batch(
            [part.load_image(i) for i in range(len(part))],
            [cache.load(detector, 1.0, False, name) for name in part.names],
            invalid="drop",
        )
        predictions.update(zip(part.names, outs))
    return predictions


def evaluate_all(
    predictions: Mapping[str, Mapping[str, Detections]],
    dataset: FaceDataset,
    out: Path,
    title: str,
) -> dict[str, EvalResult]:
    """WIDER-evaluate each labelled prediction set, print an AP table, write the prediction files
    (``out/predictions/<label>/``) and the PR curves (``out/pr_curves.png``).

    Returns:
        label -> :class:`crface.eval.EvalResult`.
    """
    from crface.eval import evaluate, plot_pr_curves, write_predictions

    results = {label: evaluate(preds, dataset) for label, preds in predictions.items()}
    for label, preds in predictions.items():
        write_predictions(out / "predictions" / re.sub(r"[^\w.-]+", "_", label), preds)
    width = max(16, *(len(label) + 2 for label in results))
    print(f"\nWIDER FACE AP on {dataset.name}: {len(dataset)} images, {dataset.num_faces} faces")
    print(f"{'setting':<8}" + "".join(f"{label:>{width}}" for label in results))
    for setting in dataset.settings:
        aps = (f"{r.ap[setting]:.4f}" for r in results.values())
        print(f"{setting.capitalize():<8}" + "".join(f"{ap:>{width}}" for ap in aps))
    print(f"\nprediction files: {out / 'predictions'}")
    print(f"PR curves: {plot_pr_curves(results, out / 'pr_curves.png', title=title)}")
    return results
