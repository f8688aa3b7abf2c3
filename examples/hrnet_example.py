"""An mmdetection (HRNet) face detector's result through ``crface.adapters.hrnet``, reranked.

    python examples/hrnet_example.py [--format {v3,v2}] [--out hrnet.png]

NOTE: no public HRNet face-detection weights exist, so this example runs on a saved sample,
``examples/data/hrnet_sample.npz``, which is CONVERTED RetinaFace-MobileNet-0.25 output: the
RetinaFace candidates (before NMS) on ``crface/assets/demo.jpg``, written by
``tools/make_adapter_samples.py`` as the two result types of mmdetection:

* ``--format v3`` (default): a ``DetDataSample`` (what ``mmdet.apis.inference_detector`` returns
  in mmdetection 3), rebuilt here as a duck-typed object with ``.pred_instances.bboxes``,
  ``.scores`` and ``.labels`` as torch tensors;
* ``--format v2``: the mmdetection 2 bbox result, a list with one ``(N, 5)`` array
  ``x1 y1 x2 y2 score`` per class (one class: face).

To get candidates before NMS from a real model set its ``test_cfg`` to
``nms=dict(type='nms', iou_threshold=1.0)``, a low ``score_thr`` and a large ``max_per_img``.
The adapter is called exactly as with the real detector's result; the ranker reranks the
candidates and the script prints and draws before/after.
"""

from __future__ import annotations

import argparse
from types import SimpleNamespace

import torch
from _common import add_sample_args, compare, converted_sample, run

from crface.adapters import hrnet


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_sample_args(parser, ["v3", "v2"], "hrnet_sample.npz", out="hrnet.png")
    args = parser.parse_args()

    with converted_sample(args.sample, "an HRNet") as (sample, image):
        if args.format == "v3":
            instances = SimpleNamespace(
                bboxes=torch.from_numpy(sample["v3_bboxes"]),
                scores=torch.from_numpy(sample["v3_scores"]),
                labels=torch.from_numpy(sample["v3_labels"]),
            )
            shape = tuple(sample["v3_img_shape"].tolist())
            result = SimpleNamespace(pred_instances=instances, metainfo={"img_shape": shape})
            print("adapter: hrnet.to_detections(data_sample) with data_sample.pred_instances")
        else:
            result = [sample["v2_class0"]]
            print(f"adapter: hrnet.to_detections([class0 {result[0].shape}])")
        candidates = hrnet.to_detections(result)
    compare(image, candidates, args, f"mmdetection {args.format} result sample")
    return 0


if __name__ == "__main__":
    run(main)
