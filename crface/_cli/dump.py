"""``crface dump``: cache a detector's pre-NMS candidates over a dataset (resumable)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "dump",
        help="run a detector over a dataset and cache its candidates",
        description="Runs a detector runner over a dataset folder (images/ + labels.txt) at the "
        "given scales (optionally mirrored too) and stores one .npz of pre-NMS candidates per "
        "image under OUT/<dataset>/<detector>/s<scale>[_flip]/. Re-running resumes.",
    )
    p.add_argument("--detector", required=True, help="runner name (see crface.detectors.RUNNERS)")
    p.add_argument("--weights", help="detector weights (default: ../shared/detectors/<file>)")
    p.add_argument("--data", required=True, help="dataset folder (images/, labels.txt)")
    p.add_argument("--scales", type=float, nargs="+", default=[1.0])
    p.add_argument("--flip", action="store_true", help="also run on mirrored images")
    p.add_argument("--out", required=True, help="cache root")
    p.add_argument("--score-threshold", type=float, default=0.01)
    p.add_argument("--top-k", type=int, default=5000)
    p.add_argument("--device", default="auto")
    p.add_argument("--limit", type=int, help="only the first N images")
    p.add_argument(
        "--zoom",
        type=float,
        help="cache crface.zoom's pooled candidates at this scale (both passes, unfused) as "
        "detector <DETECTOR>_zoom<SCALE>, with the runner's tuned zoom settings",
    )
    p.add_argument(
        "--hash-fold",
        type=int,
        help="only images with crface.data.hash_fold(name) == K (4 = the held-out part of sets "
        "without folds)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from crface.cache import CandidateCache
    from crface.data import hash_fold, load_dataset
    from crface.detectors import get_detector
    from crface.dump import dump_dataset, zoom_folder

    dataset = load_dataset(args.data)
    if args.hash_fold is not None:
        dataset = dataset.subset(lambda s: hash_fold(s.name) == args.hash_fold)
    runner = get_detector(
        args.detector,
        args.weights,
        score_threshold=args.score_threshold,
        top_k=args.top_k,
        device=args.device,
    )
    cache = CandidateCache(args.out, Path(args.data).resolve().name)
    stats = dump_dataset(
        runner,
        args.detector,
        dataset,
        cache,
        args.scales,
        args.flip,
        limit=args.limit,
        zoom=args.zoom,
    )
    name = args.detector if args.zoom is None else zoom_folder(args.detector, args.zoom)
    for key in sorted(set(stats.done) | set(stats.skipped)):
        ms = stats.median_ms(key)
        print(
            f"{name} {key}: {stats.done.get(key, 0)} new, {stats.skipped.get(key, 0)} cached"
            + (f", median {ms:.1f} ms/image" if ms is not None else "")
        )
    print(f"cache: {cache.folder(name).parent}")
    return 0
