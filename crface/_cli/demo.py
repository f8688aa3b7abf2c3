"""``crface demo``: rerank the bundled detector output on the bundled image."""

from __future__ import annotations

import argparse
from pathlib import Path

from crface._cli._common import add_refiner_args, load_refiner, rerank_kwargs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="rerank a bundled RetinaFace output on a bundled image and draw before/after",
        description="Runs the ranker on crface/assets/demo.jpg (made from scikit-image's public-domain "
        "'astronaut') with RetinaFace-MobileNet-0.25 candidates saved beside it.",
    )
    p.add_argument("--out", default="out/demo.png", help="before/after PNG to write")
    p.add_argument("--top", type=int, default=10, help="rows to show in the table")
    p.add_argument("--draw-threshold", type=float, default=0.5)
    add_refiner_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from crface.imageio import load_image
    from crface.ops import nms
    from crface.types import Detections
    from crface.viz import before_after, comparison_table, first_difference
    from crface.weights import ASSETS

    image = load_image(ASSETS / "demo.jpg")
    with np.load(ASSETS / "demo_detections.npz", allow_pickle=False) as z:
        cands = Detections(z["boxes"], z["scores"], landmarks=z["landmarks"].astype(np.float32))
        source = str(z["detector"])
    if args.for_detector is None and args.strength is None:
        args.for_detector = "retinaface"  # the bundled candidates are RetinaFace's
    refiner = load_refiner(args)
    kw = rerank_kwargs(args)
    faces = refiner.rerank(image, cands, **kw)
    before_keep = nms(cands.boxes, cands.scores, args.nms_iou)
    before = cands[before_keep[cands.scores[before_keep] >= args.score_threshold][: args.max_det]]

    trained = refiner.metadata.get("trained", True)
    print(f"image: {ASSETS / 'demo.jpg'} ({image.shape[1]}x{image.shape[0]})")
    print(f"detector: {source}: {len(cands)} candidates before NMS")
    print(
        f"ranker: {args.weights} [{refiner.backend}, {refiner.device}], strength "
        f"{refiner.strength:g}"
        + ("" if trained else "  (UNTRAINED initialisation: scores pass through unchanged)")
    )
    print()
    t = args.draw_threshold
    print(comparison_table(cands, before, faces, top=args.top, threshold=t))
    fig, diff = before_after(image, before, faces, score_threshold=t)
    print(f"\n{diff.summary()}")
    if not (diff.new or diff.dropped):
        lower = first_difference(before, faces, t)
        print(
            f"lower, they differ: {lower.summary()} (--draw-threshold {lower.threshold:.3g})"
            if lower
            else "they show the same faces at every lower threshold too"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.save(out)
    print(f"\nwrote {out}")
    return 0
