"""The whole evaluation workflow on a WIDER-format dataset: detector vs detector + crface.

    python examples/evaluate_widerface.py --data DIR [--detector NAME] [--limit N] --out DIR

``DIR`` holds ``images/``, ``labels.txt`` (WIDER FACE ground-truth format) and optionally
``splits/{easy,medium,hard}.txt`` (see :mod:`crface.data`; e.g. ``../shared/data/wider_val200``).
The steps, each a library call:

1. :func:`crface.dump.dump_dataset`: the detector's candidates before NMS, one ``.npz`` per image
   under ``OUT/cache`` (re-running resumes; this is ``crface dump``);
2. the detector's own single-scale result: :func:`crface.eval.baselines.baseline_predictions`
   (``single``: score >= 0.02, NMS 0.4, at most 750);
3. the same candidates reranked by ``crface.Refiner.load(--weights)`` (``rerank_batch``, same
   post-processing);
4. :func:`crface.eval.evaluate` (WIDER protocol) on both, prediction files in the standard
   per-image layout under ``OUT/predictions/<method>/`` (:func:`crface.eval.write_predictions`,
   readable by ``crface eval --pred-dir``) and the PR curves in ``OUT/pr_curves.png``
   (:func:`crface.eval.plot_pr_curves`, needs matplotlib).
"""

from __future__ import annotations

import argparse

from _common import (
    add_data_args,
    add_detector_args,
    add_ranker_args,
    evaluate_all,
    load_detector,
    load_refiner,
    rerank_dataset,
    run,
)

from crface.cache import CandidateCache
from crface.data import load_dataset
from crface.dump import dump_dataset
from crface.eval.baselines import baseline_predictions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_args(parser)
    parser.add_argument("--limit", type=int, help="only the first N images")
    add_detector_args(parser)
    add_ranker_args(parser)
    args = parser.parse_args()
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be >= 1; got {args.limit}")

    dataset = load_dataset(args.data)[: args.limit]
    if not len(dataset):
        raise ValueError(f"{args.data}: the dataset holds no image")
    print(f"dataset: {dataset}")
    runner = load_detector(args)
    cache = CandidateCache(args.out / "cache", dataset.name)
    dump_dataset(runner, args.detector, dataset, cache)
    refiner = load_refiner(args)
    predictions = {
        f"{args.detector} + NMS": baseline_predictions("single", cache, dataset, args.detector),
        f"{args.detector} + crface": rerank_dataset(refiner, dataset, cache, args.detector),
    }
    evaluate_all(predictions, dataset, args.out, f"{args.detector} on {dataset.name}")
    return 0


if __name__ == "__main__":
    run(main)
