"""Cross-validated training of the ranker (issue 4 protocol): one run per wider_val200 fold.

    .venv/bin/python benchmarks/cv.py --base configs/cv_small.json --out runs/cv_small
        [--folds 0 1 2 3 4] [--iterations N] [--set KEY=JSON ...]

Fold ``k``'s run trains on the base config's data with wider_val200 restricted to the other four
folds and every set without ``folds.txt`` restricted to hash folds 0-3 (``crface.data.hash_fold``;
hash fold 4 stays unseen for the cross-dataset table), and writes ``OUT/fold{k}/final.pt``. Runs
checkpoint and resume (rerun the same command after an interruption); finished folds are skipped.
``benchmarks/results.py --cv OUT`` then evaluates every fold on its held-out images.

Ablations are single-fold runs with overrides, e.g.
``--folds 4 --iterations 60 --set loss='"ce"' --set loss_params='{}' --out runs/abl/ce``, read by
``benchmarks/results.py --ablations runs/abl/*``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from crface.train.trainer import TrainConfig, train

WIDER = "wider_val200"
FOLDS = (0, 1, 2, 3, 4)


def fold_config(base: dict, k: int) -> TrainConfig:
    """The base config with its data restricted for held-out wider_val200 fold ``k``."""
    specs = []
    for spec in base["train_data"]:
        folds = [f for f in FOLDS if f != k] if Path(spec["root"]).name == WIDER else [0, 1, 2, 3]
        specs.append({**spec, "folds": folds})
    return TrainConfig.from_dict({**base, "train_data": specs, "heldout": None})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="training config (JSON) to cross-validate")
    ap.add_argument("--out", required=True, help="folder for the fold runs")
    ap.add_argument("--folds", type=int, nargs="+", default=list(FOLDS))
    ap.add_argument("--iterations", type=int, help="override the base config's iterations")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="override a top-level config key with a JSON value (repeatable)",
    )
    args = ap.parse_args()
    base = json.loads(Path(args.base).read_text(encoding="utf-8"))
    if args.iterations:
        base["iterations"] = args.iterations
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--set expects KEY=JSON; got {item!r}")
        try:
            base[key] = json.loads(value)
        except json.JSONDecodeError as exc:
            ap.error(f"--set {key}: invalid JSON {value!r}: {exc}")
    for k in args.folds:
        run = Path(args.out) / f"fold{k}"
        if (run / "final.pt").is_file():
            print(f"fold {k}: done ({run / 'final.pt'})")
            continue
        result = train(fold_config(base, k), run)
        print(f"fold {k}: {result.final_weights}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
