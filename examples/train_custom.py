"""Fine-tune the crface ranker on your own labelled images and detector, then compare before/after.

    python examples/train_custom.py --data DIR --detector NAME --out DIR [--iterations N]

``DIR`` is a dataset folder in the WIDER layout (``images/``, ``labels.txt``, optional
``splits/``; see :mod:`crface.data`). The steps, each a library call:

1. the images are split deterministically: every ``--heldout-every``-th image (first included) is
   held out for evaluation, the rest train;
2. :func:`crface.dump.dump_dataset` caches the detector's candidates before NMS for every image
   (``OUT/cache``; re-running resumes);
3. :func:`crface.train.train` fine-tunes from ``--init`` (``crface-small``) with the paper's
   pairwise ranking loss on the training images: run folder ``OUT/run`` (``log.jsonl``,
   ``curve.png``, ``final.pt``, ``best.pt``; re-running with the same options resumes, a
   finished run is not trained again);
4. on the held-out images, the detector alone, the ranker before fine-tuning and the fine-tuned
   ranker are evaluated with :func:`crface.eval.evaluate` (AP table, ``OUT/pr_curves.png``).

A handful of images and iterations only shows the mechanics; a useful fine-tune wants hundreds of
images and thousands of iterations (see docs/training.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import (
    add_data_args,
    add_detector_args,
    add_ranker_args,
    evaluate_all,
    load_detector,
    rerank_dataset,
    run,
)

from crface.cache import CandidateCache
from crface.data import load_dataset
from crface.dump import dump_dataset
from crface.eval.baselines import baseline_predictions
from crface.refiner import Refiner
from crface.train import DataSpec, TrainConfig, train


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_args(parser)
    parser.add_argument("--iterations", type=int, default=1000, help="training iterations")
    parser.add_argument("--batch-size", type=int, default=8, help="images per iteration")
    parser.add_argument("--lr", type=float, default=1e-4, help="initial learning rate")
    parser.add_argument(
        "--heldout-every", type=int, default=5, help="hold out every N-th image (default: 5)"
    )
    parser.add_argument("--no-resume", action="store_true", help="train from --init again")
    add_detector_args(parser, default=None)
    add_ranker_args(parser)
    args = parser.parse_args()
    if args.heldout_every < 2:
        raise ValueError(f"--heldout-every must be >= 2; got {args.heldout_every}")

    dataset = load_dataset(args.data)
    heldout_names = dataset.names[:: args.heldout_every]
    train_names = [n for i, n in enumerate(dataset.names) if i % args.heldout_every]
    if not train_names:
        raise ValueError(f"{args.data}: need at least 2 images (one to train, one held out)")
    print(f"dataset: {dataset}: {len(train_names)} train, {len(heldout_names)} held-out images")

    runner = load_detector(args)
    cache_root = args.out / "cache"
    dump_dataset(runner, args.detector, dataset, CandidateCache(cache_root, dataset.name))

    root = str(dataset.root)
    config = TrainConfig(
        train_data=(DataSpec(root, names=tuple(train_names)),),
        heldout=DataSpec(root, names=tuple(heldout_names)),
        detectors=(args.detector,),
        cache_root=str(cache_root),
        init_weights=args.weights,
        iterations=args.iterations,
        batch_size=args.batch_size,
        lr=args.lr,
        lr_final=args.lr / 100,
        log_every=max(1, args.iterations // 100),
        eval_every=max(1, args.iterations // 5),
        checkpoint_every=max(1, args.iterations // 5),
        device=args.device,
    )
    result = train(config, args.out / "run", resume=not args.no_resume)
    print(
        f"fine-tuned weights: {result.final_weights} (training curve: {result.run_dir}/curve.png)"
    )

    heldout = config.heldout.load()
    cache = CandidateCache(cache_root, heldout.name)
    before = Refiner.load(args.weights, device=args.device)
    after = Refiner.load(result.final_weights, device=args.device)
    predictions = {
        f"{args.detector} + NMS": baseline_predictions("single", cache, heldout, args.detector),
        f"+ {Path(args.weights).name}": rerank_dataset(before, heldout, cache, args.detector),
        "+ fine-tuned": rerank_dataset(after, heldout, cache, args.detector),
    }
    evaluate_all(predictions, heldout, args.out, f"{args.detector}, held-out images")
    return 0


if __name__ == "__main__":
    run(main)
