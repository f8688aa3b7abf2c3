"""``crface train --config FILE --run-dir DIR``: train a ranker on cached detector candidates."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a ranker on cached detector candidates",
        description=(
            "Train a CRFace ranker from a JSON config (see crface.train.trainer for its keys). "
            "A run folder holds log.jsonl, last.pt (checkpoint), best.pt / final.pt (weights) "
            "and curve.png; an interrupted run resumes exactly where its checkpoint left off."
        ),
    )
    p.add_argument("--config", required=True, type=Path, help="training config (.json)")
    p.add_argument("--run-dir", required=True, type=Path, help="run folder (created)")
    p.add_argument(
        "--no-resume",
        action="store_true",
        help="start over even if the run folder holds a checkpoint",
    )
    p.add_argument("--device", help="override the config's device: auto | cpu | cuda | cuda:N")
    p.add_argument("--iterations", type=int, help="override the config's iteration count")
    p.add_argument("--num-workers", type=int, help="override the config's DataLoader workers")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from crface.train.trainer import TrainConfig, train

    config = TrainConfig.from_file(args.config)
    overrides = {
        key: value
        for key, value in (
            ("device", args.device),
            ("iterations", args.iterations),
            ("num_workers", args.num_workers),
        )
        if value is not None
    }
    config = dataclasses.replace(config, **overrides)
    result = train(config, args.run_dir, resume=not args.no_resume, progress=not args.no_progress)
    print(f"trained {result.iteration}/{config.iterations} iterations in {result.run_dir}")
    for label, path in (
        ("final weights", result.final_weights),
        ("best weights", result.best_weights),
    ):
        if path is not None:
            print(f"{label}: {path}")
    if result.last_eval is not None:
        ev = result.last_eval
        print(
            f"held-out AP at iteration {ev['iteration']}: reranked {json.dumps(ev['ap'])}, "
            f"detector {json.dumps(ev['baseline_ap'])}"
        )
    return 0
