"""Zoom on one photo: the detector at the photo's own size, then again where small faces are.

    python examples/zoom_example.py IMAGE [--detector retinaface] [--budget 1] [--out zoom.png]

``crface.zoom`` runs the detector once, picks the parts of the photo holding small or uncertain
candidates (at most ``--budget`` of its area), runs the detector again on those parts at 2x and
fuses both passes by box voting. The script prints how many faces each side shows and the time of
each, and writes them side by side to ``--out`` (faces only zoom found are labelled ``new``).
Try it on a crowd photo, e.g. one of ``$CRFACE_SHARED/data/wider_val_fullres/images``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _common import add_detector_args, add_drawing_args, load_detector, run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("image", help="image file")
    add_detector_args(parser)
    add_drawing_args(parser, out="zoom.png")
    parser.add_argument(
        "--budget", type=float, default=1.0, help="cap on the zoomed area (default 1: no cap)"
    )
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    import crface
    from crface.eval.baselines import postprocess
    from crface.viz import before_after

    image = crface.load_image(args.image)
    runner = load_detector(args)
    t = time.perf_counter()
    single = postprocess(runner.detect(image), "hard")
    t_single = time.perf_counter() - t
    t = time.perf_counter()
    from crface.zooming import TUNED

    tuned = args.detector if args.detector in TUNED else None  # else the any-detector settings
    zoomed = crface.zoom(runner.detect, image, budget=args.budget, detector=tuned)
    t_zoom = time.perf_counter() - t
    shown = args.draw_threshold
    print(f"image: {args.image} ({image.shape[1]}x{image.shape[0]}), detector: {args.detector}")
    for name, det, secs in (("single scale", single, t_single), ("zoom", zoomed, t_zoom)):
        print(
            f"{name:>12}: {int((det.scores >= shown).sum())} faces >= {shown:g}, {secs * 1e3:.0f} ms"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    picture, diff = before_after(
        image, single, zoomed, score_threshold=shown, titles=("single scale + NMS", "crface.zoom")
    )
    picture.save(out)
    print(f"wrote {out}\n{diff.summary().replace('after rerank', 'after zoom')}")
    return 0


if __name__ == "__main__":
    run(main)
