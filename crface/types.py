"""The result type shared by the refiner, the adapters and the detector runners."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor

from crface.imageio import as_rgb_array
from crface.ops import convert_boxes

# Boxes smaller than this many drawn pixels get no landmarks or default score label.
DETAIL_PX = 24.0


@dataclass(frozen=True)
class Detections:
    """Face detections in the canonical format.

    Attributes:
        boxes: ``Tensor[K, 4]`` float32, ``x1, y1, x2, y2`` in pixels of the input image.
        scores: ``Tensor[K]`` float32 confidences.
        indices: ``Tensor[K]`` int64, the row of each detection in the input it came from
            (for a reranked result: the rows of the ``boxes`` passed to ``rerank``).
        landmarks: ``Tensor[K, L, 2]`` float32 pixel coordinates aligned with ``boxes``, or ``None``.

    Rows are sorted by decreasing score in refiner output; adapters keep the detector's order.

    Example:
        >>> d = Detections(torch.tensor([[0.0, 0, 10, 20]]), torch.tensor([0.9]))
        >>> len(d), d.xywh.tolist(), d.indices.tolist()
        (1, [[0.0, 0.0, 10.0, 20.0]], [0])
    """

    boxes: Tensor
    scores: Tensor
    indices: Tensor | None = None
    landmarks: Tensor | None = None

    def __post_init__(self) -> None:
        boxes = torch.as_tensor(self.boxes, dtype=torch.float32)
        scores = torch.as_tensor(self.scores, dtype=torch.float32, device=boxes.device)
        if boxes.numel() == 0:
            boxes = boxes.reshape(0, 4)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"boxes must have shape (K, 4); got {tuple(boxes.shape)}")
        k = boxes.shape[0]
        scores = scores.reshape(-1) if scores.numel() == k else scores
        if scores.shape != (k,):
            raise ValueError(
                f"scores must have shape ({k},) to match boxes; got {tuple(scores.shape)}"
            )
        if self.indices is None:
            indices = torch.arange(k, dtype=torch.int64, device=boxes.device)
        else:
            indices = torch.as_tensor(self.indices, dtype=torch.int64, device=boxes.device).reshape(
                -1
            )
            if indices.shape != (k,):
                raise ValueError(f"indices must have shape ({k},); got {tuple(indices.shape)}")
        landmarks = self.landmarks
        if landmarks is not None:
            landmarks = torch.as_tensor(landmarks, dtype=torch.float32, device=boxes.device)
            if landmarks.ndim != 3 or landmarks.shape[0] != k or landmarks.shape[2] != 2:
                raise ValueError(
                    f"landmarks must have shape ({k}, L, 2); got {tuple(landmarks.shape)}"
                )
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "indices", indices)
        object.__setattr__(self, "landmarks", landmarks)

    @classmethod
    def empty(
        cls, num_landmarks: int | None = None, device: torch.device | str = "cpu"
    ) -> Detections:
        """An empty result with the right dtypes (``num_landmarks`` keeps a ``(0, L, 2)`` landmarks)."""
        lm = None if num_landmarks is None else torch.zeros(0, num_landmarks, 2, device=device)
        return cls(torch.zeros(0, 4, device=device), torch.zeros(0, device=device), landmarks=lm)

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def __repr__(self) -> str:
        n = len(self)
        scores = (
            ""
            if n == 0
            else f", scores {float(self.scores.max()):.3f}..{float(self.scores.min()):.3f}"
        )
        lm = "" if self.landmarks is None else f", landmarks {self.landmarks.shape[1]} points"
        return f"Detections({n} boxes{scores}{lm}, device={self.boxes.device})"

    def __getitem__(self, item: Any) -> Detections:
        """Select rows with an int, slice, index tensor/array or boolean mask."""
        if isinstance(item, int):
            item = slice(item, item + 1 if item != -1 else None)
        elif isinstance(item, np.ndarray):
            item = torch.from_numpy(item)
        if isinstance(item, Tensor):
            item = item.to(self.boxes.device)
        lm = None if self.landmarks is None else self.landmarks[item]
        return Detections(self.boxes[item], self.scores[item], self.indices[item], lm)

    @property
    def xywh(self) -> Tensor:
        """``Tensor[K, 4]`` boxes as ``x, y, width, height`` (WIDER FACE layout)."""
        return convert_boxes(self.boxes, "xyxy", "xywh")

    def to(self, device: torch.device | str) -> Detections:
        """A copy on ``device``."""
        lm = None if self.landmarks is None else self.landmarks.to(device)
        return Detections(
            self.boxes.to(device), self.scores.to(device), self.indices.to(device), lm
        )

    def to_numpy(self) -> dict[str, np.ndarray | None]:
        """The fields as numpy arrays: ``boxes (K,4) float32``, ``scores (K,)``, ``indices (K,) int64``,
        ``landmarks (K,L,2)`` or ``None``."""
        return {
            "boxes": self.boxes.detach().cpu().numpy(),
            "scores": self.scores.detach().cpu().numpy(),
            "indices": self.indices.detach().cpu().numpy(),
            "landmarks": None if self.landmarks is None else self.landmarks.detach().cpu().numpy(),
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of plain lists (boxes as xyxy pixels)."""
        return {k: None if v is None else v.tolist() for k, v in self.to_numpy().items()}

    def draw(
        self,
        image: Any,
        *,
        score_threshold: float = 0.0,
        width: int | None = None,
        show_scores: bool = True,
        labels: Sequence[str | None] | None = None,
        min_detail_size: float = DETAIL_PX,
    ) -> Image.Image:
        """Draw the boxes on ``image``, coloured by score (red = low, green = high).

        Args:
            image: anything :func:`crface.imageio.as_rgb_array` accepts.
            score_threshold: draw only boxes with a score at or above this.
            width: line width in pixels (default scales with the image size).
            show_scores: write each score above its box.
            labels: per row, the text to write above its box instead of its score: ``None``
                keeps the default (the score), ``""`` writes nothing.
            min_detail_size: boxes narrower or lower than this many pixels get neither their
                landmarks nor their default score label, which would cover a small face; the
                texts of ``labels`` are always written.

        Returns:
            A new RGB ``PIL.Image.Image``; the input is not modified.
        """
        canvas = Image.fromarray(as_rgb_array(image))
        pen = ImageDraw.Draw(canvas)
        lw = width or max(1, round(max(canvas.size) / 400))
        order = torch.argsort(self.scores.detach().cpu())  # low scores first, high drawn on top
        boxes = self.boxes.detach().cpu()
        for i in order.tolist():
            s = float(self.scores[i])
            if s < score_threshold:
                continue
            colour = score_colour(s)
            x1, y1, x2, y2 = boxes[i].tolist()
            detailed = min(x2 - x1, y2 - y1) >= min_detail_size
            pen.rectangle((x1, y1, x2, y2), outline=colour, width=lw)
            label = labels[i] if labels is not None else None
            if label is None and detailed:
                label = f"{s:.2f}"
            if show_scores and label:
                at = (x1, max(0.0, y1 - 12))
                pen.rectangle(pen.textbbox(at, label), fill=(0, 0, 0))  # legible on any photo
                pen.text(at, label, fill=colour)
            if self.landmarks is not None and detailed:
                for x, y in self.landmarks[i].detach().cpu().tolist():
                    pen.ellipse((x - lw, y - lw, x + lw, y + lw), fill=colour)
        return canvas


def score_colour(score: float) -> tuple[int, int, int]:
    """Map a score in [0, 1] to an RGB colour from red (0) through yellow to green (1)."""
    s = min(1.0, max(0.0, score))
    return (round(255 * min(1.0, 2 * (1 - s))), round(255 * min(1.0, 2 * s)), 0)
