"""Pictures: before/after comparisons of detections."""

from __future__ import annotations

from typing import Any

from PIL import Image, ImageDraw

from crface.imageio import as_rgb_array
from crface.types import Detections


def _scaled(det: Detections, scale: float) -> Detections:
    """``det`` with its boxes and landmarks in the pixels of the image resized by ``scale``."""
    landmarks = None if det.landmarks is None else det.landmarks * scale
    return Detections(det.boxes * scale, det.scores, det.indices, landmarks)


def comparison_table(
    candidates: Detections,
    before: Detections,
    after: Detections,
    *,
    top: int = 10,
    threshold: float = 0.5,
) -> str:
    """A text table of the reranked detections next to the detector's own ranking.

    Args:
        candidates: ``K`` detector candidates before NMS, in row order.
        before: the detector's own result after NMS; ``indices`` are rows of ``candidates``.
        after: the reranked result (:meth:`crface.Refiner.rerank` of ``candidates``); ``indices``
            are rows of ``candidates``.
        top: how many of the reranked detections to list.
        threshold: the score at and above which detections are counted in the summary.

    Returns:
        The table (rank, box, detector score, refined score, rank before), a blank line and a
        summary counting detections of both, without a trailing newline.

    Example:
        >>> import torch
        >>> cands = Detections(torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([0.9]))
        >>> print(comparison_table(cands, cands, cands).splitlines()[1])
           1  (    0,     0,    10,    10)      0.900    0.900            1
    """
    rank_before = {int(i): r for r, i in enumerate(before.indices)}
    rows = [
        f"{'rank':>4}  {'box (x1, y1, x2, y2)':<26} {'detector':>8} {'refined':>8}  {'rank before':>11}"
    ]
    for r in range(min(top, len(after))):
        i = int(after.indices[r])
        x1, y1, x2, y2 = after.boxes[r].tolist()
        was = rank_before.get(i)
        rows.append(
            f"{r + 1:>4}  ({x1:5.0f}, {y1:5.0f}, {x2:5.0f}, {y2:5.0f})   "
            f"{float(candidates.scores[i]):8.3f} {float(after.scores[r]):8.3f}  "
            f"{'-' if was is None else was + 1:>11}"
        )
    t = threshold
    rows += [
        "",
        f"{'':<26} {'detector + NMS':>16} {'crface rerank':>14}",
        f"{'detections':<26} {len(before):>16} {len(after):>14}",
        f"{f'detections >= {t:g}':<26} {int((before.scores >= t).sum()):>16} "
        f"{int((after.scores >= t).sum()):>14}",
    ]
    return "\n".join(rows)


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
        An RGB ``PIL.Image.Image`` no wider than ``max_width``. A large image is shrunk before
        drawing, so titles, scores and lines keep their size in pixels (legible on phone photos).
    """
    rgb = as_rgb_array(image)
    gap = 8
    h, w = rgb.shape[:2]
    scale = (max_width - (len(panels) - 1) * gap) / (len(panels) * w)
    if scale < 1:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        image = Image.fromarray(rgb).resize(size, Image.LANCZOS)
        panels = [(title, _scaled(det, scale)) for title, det in panels]
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
    out = Image.new("RGB", (len(drawn) * w + (len(drawn) - 1) * gap, h), (255, 255, 255))
    for i, im in enumerate(drawn):
        out.paste(im, (i * (w + gap), 0))
    if out.width > max_width:
        out = out.resize((max_width, round(out.height * max_width / out.width)), Image.LANCZOS)
    return out
