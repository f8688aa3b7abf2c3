"""A HAMBox-style detector output through ``crface.adapters.hambox``, reranked by crface.

    python examples/hambox_example.py [--format {dense,paddle}] [--out hambox.png]

NOTE: no public HAMBox face weights exist, so this example runs on a saved sample,
``examples/data/hambox_sample.npz``, which is CONVERTED RetinaFace-MobileNet-0.25 output: the
RetinaFace candidates (before NMS) on ``crface/assets/demo.jpg``, written by
``tools/make_adapter_samples.py`` in the two forms a HAMBox (PaddlePaddle, RetinaNet-style) model
produces:

* ``--format dense`` (default): raw dense heads, one classification-logit map ``(1, A, H, W)`` and
  one box-delta map ``(1, A*4, H, W)`` per FPN level, plus the anchor configuration they were
  encoded with (strides, sizes, scales, aspect ratios, box-coder weights);
* ``--format paddle``: PaddleDetection result rows ``[label, score, x1, y1, x2, y2]`` with
  ``bbox_num`` (configure ``MultiClassNMS`` with ``nms_threshold: 1.0`` to get them before NMS).

The adapter is called exactly as with the real detector's output; the ranker reranks the
candidates and the script prints and draws before/after.
"""

from __future__ import annotations

import argparse

from _common import add_sample_args, compare, converted_sample, run

from crface.adapters import hambox

ANCHOR_KEYS = ("strides", "sizes", "scales", "aspect_ratios", "center_offset")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_sample_args(parser, ["dense", "paddle"], "hambox_sample.npz", out="hambox.png")
    args = parser.parse_args()

    with converted_sample(args.sample, "a HAMBox") as (sample, image):
        if args.format == "dense":
            levels = sorted(k.removeprefix("cls_logits_") for k in sample if "cls_logits_" in k)
            cls_logits = [sample[f"cls_logits_{level}"] for level in levels]
            box_deltas = [sample[f"box_deltas_{level}"] for level in levels]
            # The anchor configuration and box coder the detector was trained with.
            anchors = {k: sample[k].tolist() for k in ANCHOR_KEYS}
            size, weights = tuple(sample["image_size"].tolist()), sample["bbox_weights"].tolist()
            candidates = hambox.to_detections(
                (cls_logits, box_deltas), image_size=size, weights=weights, **anchors
            )
            print(
                f"adapter: hambox.to_detections((cls_logits, box_deltas), image_size={size}, "
                f"weights={weights}, **{anchors}) on {len(levels)} FPN levels"
            )
        else:
            output = {"bbox": sample["bbox"], "bbox_num": sample["bbox_num"]}
            candidates = hambox.to_detections(output)
            print(
                f"adapter: hambox.to_detections({{'bbox': rows {output['bbox'].shape}, 'bbox_num'}})"
            )
    compare(image, candidates, args, f"HAMBox-format sample ({args.format})")
    return 0


if __name__ == "__main__":
    run(main)
