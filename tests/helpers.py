"""Small builders shared by tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import torch

from crface.model import ConfidenceRanker, RankerConfig
from crface.refiner import Refiner

# Every registered weights name (crface/assets/registry.json): a new one must be added here.
SHIPPED_WEIGHTS = [
    "crface-small",
    "crface-small-sampling2",
    "crface-small-8k",
    "crface-small-416",
    "crface-boxes",
]


def load_script(path: str) -> ModuleType:
    """A repository script (``tools/...``, ``benchmarks/...``; not in the package) as a module."""
    file = Path(__file__).resolve().parents[1] / path
    spec = importlib.util.spec_from_file_location(file.stem, file)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def random_model(
    num_boxes: int = 16, image_size: int = 64, seed: int = 0, **kw
) -> ConfidenceRanker:
    """A tiny ranker whose residual head is random (so it actually changes scores)."""
    torch.manual_seed(seed)
    model = ConfidenceRanker(RankerConfig(num_boxes=num_boxes, image_size=image_size, **kw)).eval()
    with torch.no_grad():
        if model.config.head == "global":
            for fc in model.head_fc:
                fc.weight.normal_(0, 0.5)
                fc.bias.normal_(0, 0.1)
        else:
            model.roi_mlp[-1].weight.normal_(0, 0.05)
            model.roi_mlp[-1].bias.normal_(0, 0.1)
    return model


def random_refiner(**kw) -> Refiner:
    return Refiner.from_model(random_model(**kw), device="cpu")


def random_boxes(
    n: int, w: int = 200, h: int = 150, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` valid xyxy boxes inside a ``w x h`` image and scores in (0, 1)."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * torch.tensor([w * 0.8, h * 0.8])
    wh = 2 + torch.rand(n, 2, generator=g) * torch.tensor([w * 0.2, h * 0.2])
    return torch.cat([xy, xy + wh], dim=1), torch.rand(n, generator=g)
