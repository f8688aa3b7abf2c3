"""Write and register the *untrained* ``crface-small`` initialisation (until trained weights land).

    python tools/make_init_weights.py

The ranker's output layers start at zero, so this model returns the detector's own confidences
unchanged: it exists so that the API, CLI, ONNX path and demo run end to end.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from crface.model import PRESETS, ConfidenceRanker
from crface.weights import register_weights, save_weights

torch.manual_seed(0)
model = ConfidenceRanker(PRESETS["small"])
with tempfile.TemporaryDirectory() as tmp:
    path = save_weights(
        Path(tmp) / "init.pt",
        model,
        {
            "trained": False,
            "preset": "small",
            "note": "UNTRAINED initialisation (seed 0): residual head is zero, so refined scores "
            "equal the input scores. Replaced by trained weights in a later release.",
            "training_data": [],
            "detectors": [],
            "metrics": {},
        },
        half=True,
    )
    entry = register_weights(
        "crface-small",
        path,
        "UNTRAINED initialisation of the small model (MobileNet-0.25, S=640, N=5000): returns the "
        "detector's scores unchanged until trained weights ship",
    )
print(entry)
