"""RetinaFace MobileNet-0.25 in PyTorch, with module names matching Pytorch_Retinaface checkpoints.

Structure: a MobileNetV1 x0.25 backbone in three stages (strides 8, 16, 32; 64/128/256 channels),
a 3-level FPN to 64 channels, an SSH context module per level, and 1x1 class/box/landmark heads
with two anchors per cell. Every conv+BN is followed by LeakyReLU(0.1) except the three SSH branch
outputs, which are concatenated and passed through a plain ReLU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LEAKY = 0.1
NUM_ANCHORS = 2


def _conv_bn(
    cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True
) -> nn.Sequential:
    """conv (no bias) -> BN [-> LeakyReLU]; indices 0/1 in the state dict."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act:
        layers.append(nn.LeakyReLU(LEAKY, inplace=True))
    return nn.Sequential(*layers)


def _dw_block(cin: int, cout: int, stride: int) -> nn.Sequential:
    """Depthwise 3x3 + pointwise 1x1, each conv -> BN -> LeakyReLU (state-dict indices 0-2, 3-5)."""
    return nn.Sequential(*_conv_bn(cin, cin, 3, stride, groups=cin), *_conv_bn(cin, cout, 1))


class _Backbone(nn.Module):
    """MobileNetV1 x0.25 cut into the three stages the FPN taps."""

    def __init__(self) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(
            _conv_bn(3, 8, 3, 2),
            _dw_block(8, 16, 1),
            _dw_block(16, 32, 2),
            _dw_block(32, 32, 1),
            _dw_block(32, 64, 2),
            _dw_block(64, 64, 1),
        )
        self.stage2 = nn.Sequential(
            _dw_block(64, 128, 2), *(_dw_block(128, 128, 1) for _ in range(5))
        )
        self.stage3 = nn.Sequential(_dw_block(128, 256, 2), _dw_block(256, 256, 1))

    def forward(self, x: Tensor) -> list[Tensor]:
        c3 = self.stage1(x)
        c4 = self.stage2(c3)
        return [c3, c4, self.stage3(c4)]


class _FPN(nn.Module):
    def __init__(self, in_channels: tuple[int, int, int], out: int) -> None:
        super().__init__()
        self.output1 = _conv_bn(in_channels[0], out, 1)
        self.output2 = _conv_bn(in_channels[1], out, 1)
        self.output3 = _conv_bn(in_channels[2], out, 1)
        self.merge1 = _conv_bn(out, out, 3)
        self.merge2 = _conv_bn(out, out, 3)

    def forward(self, feats: list[Tensor]) -> list[Tensor]:
        p3, p4, p5 = self.output1(feats[0]), self.output2(feats[1]), self.output3(feats[2])
        p4 = self.merge2(p4 + F.interpolate(p5, size=p4.shape[-2:], mode="nearest"))
        p3 = self.merge1(p3 + F.interpolate(p4, size=p3.shape[-2:], mode="nearest"))
        return [p3, p4, p5]


class _SSH(nn.Module):
    """Single Stage Headless context module: 3x3, "5x5" and "7x7" branches (stacked 3x3 convs)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv3X3 = _conv_bn(cin, cout // 2, 3, act=False)
        self.conv5X5_1 = _conv_bn(cin, cout // 4, 3)
        self.conv5X5_2 = _conv_bn(cout // 4, cout // 4, 3, act=False)
        self.conv7X7_2 = _conv_bn(cout // 4, cout // 4, 3)
        self.conv7x7_3 = _conv_bn(cout // 4, cout // 4, 3, act=False)

    def forward(self, x: Tensor) -> Tensor:
        mid = self.conv5X5_1(x)
        branches = (self.conv3X3(x), self.conv5X5_2(mid), self.conv7x7_3(self.conv7X7_2(mid)))
        return F.relu(torch.cat(branches, dim=1))


class _Head(nn.Module):
    def __init__(self, cin: int, per_anchor: int) -> None:
        super().__init__()
        self.per_anchor = per_anchor
        self.conv1x1 = nn.Conv2d(cin, NUM_ANCHORS * per_anchor, 1)

    def forward(self, x: Tensor) -> Tensor:
        # NCHW -> (N, H*W*A, k): rows row -> column -> anchor, the prior order.
        out = self.conv1x1(x).permute(0, 2, 3, 1)
        return out.reshape(out.shape[0], -1, self.per_anchor)


class RetinaFaceMobileNet(nn.Module):
    """RetinaFace MobileNet-0.25 returning ``loc (N, P, 4)``, ``conf (N, P, 2)`` softmaxed and
    ``landmarks (N, P, 10)`` for a BGR-minus-mean ``(N, 3, H, W)`` input."""

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        self.body = _Backbone()
        self.fpn = _FPN((64, 128, 256), channels)
        self.ssh1, self.ssh2, self.ssh3 = (_SSH(channels, channels) for _ in range(3))
        self.ClassHead = nn.ModuleList(_Head(channels, 2) for _ in range(3))
        self.BboxHead = nn.ModuleList(_Head(channels, 4) for _ in range(3))
        self.LandmarkHead = nn.ModuleList(_Head(channels, 10) for _ in range(3))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        fpn = self.fpn(self.body(x))
        feats = [self.ssh1(fpn[0]), self.ssh2(fpn[1]), self.ssh3(fpn[2])]
        loc = torch.cat([h(f) for h, f in zip(self.BboxHead, feats, strict=True)], dim=1)
        conf = torch.cat([h(f) for h, f in zip(self.ClassHead, feats, strict=True)], dim=1)
        landmarks = torch.cat([h(f) for h, f in zip(self.LandmarkHead, feats, strict=True)], dim=1)
        return loc, conf.softmax(dim=-1), landmarks
