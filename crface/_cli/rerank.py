"""``crface rerank IMAGE --detections FILE --out FILE [--draw PNG]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from crface._cli._common import add_refiner_args, load_refiner, rerank_kwargs
from crface.zooming import FUSIONS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "rerank",
        help="rerank one image's detector candidates",
        description="Refine a detector's candidate confidences (before NMS) and run NMS. "
        "Detections: .json, .npy, .npz or .txt (see crface.io).",
    )
    p.add_argument("image", help="image file")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--detections", help="candidates file (.json/.npy/.npz/.txt)")
    src.add_argument("--detector", help="run this runner (see crface.detectors.RUNNERS) instead")
    p.add_argument(
        "--zoom",
        type=float,
        help="with --detector: add an upscaled pass at this scale where small faces are "
        "(crface.zoom), both passes reranked together",
    )
    p.add_argument(
        "--fusion",
        default="rank",
        choices=["rank", *FUSIONS],
        help="with --zoom: how the two passes are fused: rank (default: the ranker reranks both), "
        "or without a ranker: vote (box voting of every cluster), vote_zoomed (only of the "
        "clusters the zoomed pass added to; elsewhere the first pass's NMS stands) or nms "
        "(hard NMS over both passes)",
    )
    p.add_argument("--box-format", default="xyxy", choices=["xyxy", "xywh", "cxcywh"])
    p.add_argument(
        "--invalid",
        default="drop_empty",
        choices=["drop_empty", "drop", "raise"],
        help="zero/negative-size boxes: drop_empty (default) drops zero-size ones with a "
        "warning and refuses negative sizes, drop drops both, raise refuses both",
    )
    p.add_argument("--out", required=True, help="output file (.json, .npy or .txt WIDER format)")
    p.add_argument("--draw", help="write a before/after PNG here")
    p.add_argument("--draw-threshold", type=float, default=0.5, help="score threshold for drawing")
    add_refiner_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from crface.imageio import load_image
    from crface.io import read_detections

    _check_zoom_args(args)
    if args.detector is not None and args.for_detector is None:
        args.for_detector = args.detector  # the runner's measured strength and suppression
    image = load_image(args.image)
    ranked = args.fusion == "rank"
    refiner = load_refiner(args) if ranked else None
    options = {"invalid": args.invalid, **rerank_kwargs(args)}
    if args.detector is not None:
        from crface.detectors import get_detector
        from crface.zooming import zoom

        runner = get_detector(args.detector)
        cands = runner.detect(image)
        if args.zoom is not None:
            faces = zoom(
                runner.detect,
                image,
                scale=args.zoom,
                detector=args.detector,
                refiner=refiner,
                fusion=None if ranked else args.fusion,
                vote_iou=args.nms_iou,
                rerank_kwargs=options if ranked else None,
                first_pass=cands,
            )
            if not ranked:  # the rerank applies these itself
                faces = faces[faces.scores >= args.score_threshold][: args.max_det]
    else:
        cands = read_detections(args.detections, args.box_format)
    if args.zoom is None:
        faces = refiner.rerank(
            image, cands.boxes, cands.scores, landmarks=cands.landmarks, **options
        )
    return _write(args, image, cands, faces, "crface rerank" if ranked else "zoom + box voting")


def _check_zoom_args(args: argparse.Namespace) -> None:
    from crface.cli import CLIError

    if args.zoom is not None and args.detector is None:
        raise CLIError("--zoom runs the detector again on parts of the photo: pass --detector NAME")
    if args.fusion != "rank" and args.zoom is None:
        raise CLIError(
            f"--fusion {args.fusion} fuses --zoom's two passes: pass --zoom 2 too, or drop --fusion"
        )
    if args.fusion != "rank" and args.nms is not None:
        raise CLIError(
            f"--nms chooses the suppression after a rerank, and --fusion {args.fusion} runs no "
            "ranker: drop --nms (--fusion nms is hard NMS over both passes)"
        )


def _write(args: argparse.Namespace, image, cands, faces, label: str) -> int:
    from crface.io import write_detections
    from crface.ops import nms

    out = write_detections(args.out, faces, image_name=Path(args.image).name)
    print(f"{len(cands)} candidates -> {len(faces)} detections; wrote {out}")
    if args.draw:
        from crface.viz import side_by_side

        ok = (cands.boxes[:, 2] > cands.boxes[:, 0]) & (cands.boxes[:, 3] > cands.boxes[:, 1])
        before = cands[ok][nms(cands.boxes[ok], cands.scores[ok], args.nms_iou)]
        fig = side_by_side(
            image,
            [("detector + NMS", before), (label, faces)],
            score_threshold=args.draw_threshold,
        )
        Path(args.draw).parent.mkdir(parents=True, exist_ok=True)
        fig.save(args.draw)
        print(f"wrote {args.draw}")
    return 0
