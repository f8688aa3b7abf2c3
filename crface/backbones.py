"""Image backbones for the ranker: each returns feature maps at strides 8, 16 and 32.

``mobilenet`` is MobileNetV1 with a width multiplier, laid out like RetinaFace-MobileNet-0.25's
body (``stage1``/``stage2``/``stage3``, LeakyReLU 0.1) so a face detector's pretrained body can be
loaded into it; ``resnet18``/``resnet50`` come from torchvision, initialised from scratch (no
ImageNet download happens, ever).
"""

from __future__ import annotations

import os
from pathlib import Path

from torch import Tensor, nn

BACKBONES = ("mobilenet", "resnet18", "resnet50")


def conv_bn(inp: int, oup: int, stride: int, leaky: float = 0.1) -> nn.Sequential:
    """3x3 conv + BN + LeakyReLU."""
    return nn.Sequential(
        nn.Conv2d(inp, oup, 3, stride, 1, bias=False),
        nn.BatchNorm2d(oup),
        nn.LeakyReLU(negative_slope=leaky, inplace=True),
    )


def conv_dw(inp: int, oup: int, stride: int, leaky: float = 0.1) -> nn.Sequential:
    """Depthwise-separable block: 3x3 depthwise + BN + act, 1x1 pointwise + BN + act."""
    return nn.Sequential(
        nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False),
        nn.BatchNorm2d(inp),
        nn.LeakyReLU(negative_slope=leaky, inplace=True),
        nn.Conv2d(inp, oup, 1, 1, 0, bias=False),
        nn.BatchNorm2d(oup),
        nn.LeakyReLU(negative_slope=leaky, inplace=True),
    )


class MobileNetV1(nn.Module):
    """MobileNetV1 body with outputs at strides 8 / 16 / 32.

    At ``width_mult=0.25`` the channels are 64 / 128 / 256 and the parameter names match the
    ``body`` of RetinaFace-MobileNet-0.25 (stage1, stage2, stage3).
    """

    def __init__(self, width_mult: float = 0.25) -> None:
        super().__init__()

        def c(n: int) -> int:
            return max(8, int(n * width_mult))

        self.stage1 = nn.Sequential(
            conv_bn(3, c(32), 2),
            conv_dw(c(32), c(64), 1),
            conv_dw(c(64), c(128), 2),
            conv_dw(c(128), c(128), 1),
            conv_dw(c(128), c(256), 2),
            conv_dw(c(256), c(256), 1),
        )
        self.stage2 = nn.Sequential(
            conv_dw(c(256), c(512), 2),
            *(conv_dw(c(512), c(512), 1) for _ in range(5)),
        )
        self.stage3 = nn.Sequential(conv_dw(c(512), c(1024), 2), conv_dw(c(1024), c(1024), 1))
        self.out_channels = (c(256), c(512), c(1024))

    def forward(self, x: Tensor) -> list[Tensor]:
        c3 = self.stage1(x)
        c4 = self.stage2(c3)
        return [c3, c4, self.stage3(c4)]


class ResNetBody(nn.Module):
    """A torchvision ResNet's layers 2-4 (strides 8 / 16 / 32), randomly initialised."""

    def __init__(self, depth: int) -> None:
        super().__init__()
        import torchvision

        net = {18: torchvision.models.resnet18, 50: torchvision.models.resnet50}[depth](
            weights=None
        )
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1)
        self.layer2, self.layer3, self.layer4 = net.layer2, net.layer3, net.layer4
        expansion = 4 if depth == 50 else 1
        self.out_channels = (128 * expansion, 256 * expansion, 512 * expansion)

    def forward(self, x: Tensor) -> list[Tensor]:
        c3 = self.layer2(self.stem(x))
        c4 = self.layer3(c3)
        return [c3, c4, self.layer4(c4)]


def build_backbone(name: str, width_mult: float = 0.25) -> nn.Module:
    """Build backbone ``name`` (one of :data:`BACKBONES`); it has ``out_channels`` (3 ints).

    Raises:
        ValueError: for an unknown name, listing the valid ones.
    """
    if name == "mobilenet":
        return MobileNetV1(width_mult)
    if name in ("resnet18", "resnet50"):
        return ResNetBody(int(name[6:]))
    raise ValueError(f"unknown backbone {name!r}; expected one of {BACKBONES}")


__all__ = ["BACKBONES", "MobileNetV1", "ResNetBody", "build_backbone", "conv_bn", "conv_dw"]


def load_retinaface_body(backbone: nn.Module, path: str | os.PathLike) -> None:
    """Initialise a ``mobilenet`` backbone (``width_mult=0.25``) from a RetinaFace-MobileNet-0.25
    checkpoint in the Pytorch_Retinaface layout (its ``body.*`` weights, face-trained).

    Pair it with ``RankerConfig(input_norm="retinaface")``: the body was trained on BGR images
    minus (104, 117, 123).

    Args:
        backbone: the ranker's ``MobileNetV1(0.25)``.
        path: the ``.pth`` state dict (keys ``body.stage1...``, optionally prefixed ``module.``).

    Raises:
        FileNotFoundError: no such file.
        TypeError: ``backbone`` is not a MobileNetV1.
        ValueError: the file has no ``body.*`` weights or they do not fit the backbone.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"RetinaFace checkpoint not found: {path}")
    if not isinstance(backbone, MobileNetV1):
        raise TypeError(f"expected a MobileNetV1 backbone; got {type(backbone).__name__}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    body = {
        k.removeprefix("module.").removeprefix("body."): v
        for k, v in state.items()
        if k.removeprefix("module.").startswith("body.")
    }
    if not body:
        raise ValueError(f"{path}: no 'body.*' weights (not a Pytorch_Retinaface checkpoint?)")
    try:
        backbone.load_state_dict(body, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{path}: body weights do not fit the backbone: {exc}") from exc
