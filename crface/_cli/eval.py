"""``crface eval``: WIDER FACE AP of a folder of per-image prediction files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from crface.cli import CLIError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="WIDER FACE Easy/Medium/Hard AP of a prediction folder",
        description=(
            "Evaluate per-image prediction files (<event>/<image>.txt: name, count, "
            "'x y w h score' lines) with the WIDER FACE protocol. Datasets without difficulty "
            "splits, and --gt-txt, report one setting, 'all', in which every ground-truth row "
            "counts."
        ),
    )
    p.add_argument("--pred-dir", required=True, type=Path, help="folder of prediction .txt files")
    gt = p.add_mutually_exclusive_group(required=True)
    gt.add_argument(
        "--data", help="dataset folder in the shared layout, or a set name under shared/data"
    )
    gt.add_argument(
        "--gt-mat",
        type=Path,
        help="folder with the official wider_{face,easy,medium,hard}_val.mat files",
    )
    gt.add_argument(
        "--gt-txt", type=Path, help="official wider_face_val_bbx_gt.txt (setting 'all' only)"
    )
    p.add_argument(
        "--iou-threshold", type=float, default=0.5, help="match IoU threshold (default 0.5)"
    )
    p.add_argument(
        "--allow-missing",
        action="store_true",
        help="score even when more than half of the ground-truth images have no prediction file "
        "(they count as having no detections)",
    )
    p.add_argument("--plot", type=Path, metavar="PNG", help="also save the PR curves to PNG")
    p.add_argument(
        "--json", action="store_true", help="end with one JSON line: setting -> AP (fractions)"
    )
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from crface.data import load_dataset, load_wider_mat, load_wider_txt
    from crface.eval import evaluate, plot_pr_curves, read_predictions

    if args.data is not None:
        dataset = load_dataset(args.data)
    elif args.gt_mat is not None:
        dataset = load_wider_mat(args.gt_mat)
    else:
        dataset = load_wider_txt(args.gt_txt)
    if not len(dataset):
        raise CLIError("the ground truth holds no image")
    result = evaluate(read_predictions(args.pred_dir), dataset, iou_threshold=args.iou_threshold)
    missing = result.num_images - result.num_predicted
    if 2 * missing > result.num_images and not args.allow_missing:
        raise CLIError(
            f"only {result.num_predicted} of the {result.num_images} ground-truth images have a "
            f"prediction file in {args.pred_dir}; the other {missing} would count as misses "
            "(an AP that measures the folder, not the detector). Check that --pred-dir matches "
            "the ground truth, or pass --allow-missing to score them as images without detections"
        )
    print(result)
    if args.plot is not None:
        label = args.pred_dir.resolve().name
        print(f"PR curves written to {plot_pr_curves({label: result}, args.plot)}")
    if args.json:
        print(json.dumps(result.to_dict()["ap"]))
    return 0
