"""Pictures: before/after comparisons of detections."""

from __future__ import annotations

from typing import Any

from PIL import Image, ImageDraw

from crface.types import Detections


def side_by_side(
    image: Any,
    panels: list[tuple[str, Detections]],
    *,
    score_threshold: float = 0.5,
    max_width: int = 1600,
) -> Image.Image:
    """Draw each ``(title, detections)`` panel on a copy of ``image`` and place them side by side.

    Boxes are coloured by score (red low, green high); only boxes scoring at least
    ``score_threshold`` are drawn, and each title says how many that is.

    Returns:
        An RGB ``PIL.Image.Image`` no wider than ``max_width``.
    """
    drawn = []
    for title, det in panels:
        canvas = det.draw(image, score_threshold=score_threshold)
        shown = int((det.scores >= score_threshold).sum())
        pen = ImageDraw.Draw(canvas)
        label = f"{title}: {shown} faces >= {score_threshold:g}"
        pen.rectangle((0, 0, 8 + 7 * len(label), 16), fill=(0, 0, 0))
        pen.text((4, 2), label, fill=(255, 255, 255))
        drawn.append(canvas)
    w, h = drawn[0].size
    gap = 8
    out = Image.new("RGB", (len(drawn) * w + (len(drawn) - 1) * gap, h), (255, 255, 255))
    for i, im in enumerate(drawn):
        out.paste(im, (i * (w + gap), 0))
    if out.width > max_width:
        out = out.resize((max_width, round(out.height * max_width / out.width)), Image.LANCZOS)
    return out
