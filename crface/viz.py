"""Pictures: before/after comparisons of detections."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image, ImageDraw

from crface.imageio import as_rgb_array
from crface.ops import box_iou
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


def _heading(title: str, det: Detections, threshold: float) -> str:
    return f"{title}: {int((det.scores >= threshold).sum())} faces >= {threshold:g}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class RerankDiff:
    """What reranking changed among the faces shown at a threshold (:func:`rerank_diff`).

    A face is a box scoring at least ``threshold``; a box of ``before`` and one of ``after`` are the
    same face when they overlap by IoU ``iou`` or more (NMS may keep a neighbouring candidate).

    Attributes:
        threshold: the score at and above which faces are shown.
        delta: the score change from which a face on both sides counts as re-scored.
        shown_before: how many faces ``before`` shows.
        shown_after: how many faces ``after`` shows.
        new: rows of ``after`` shown with no shown face of ``before`` on them.
        dropped: rows of ``before`` shown with no shown face of ``after`` on them.
        moved: ``(row of before, row of after)`` of the faces shown on both sides whose score
            changed by ``delta`` or more.
    """

    threshold: float
    delta: float
    shown_before: int
    shown_after: int
    new: tuple[int, ...]
    dropped: tuple[int, ...]
    moved: tuple[tuple[int, int], ...]

    @property
    def identical(self) -> bool:
        """Whether both sides show the same faces with scores closer than ``delta``."""
        return not (self.new or self.dropped or self.moved)

    def summary(self) -> str:
        """One sentence: ``"the two sides are identical at threshold 0.5 (6 faces each)"`` or
        ``"at threshold 0.25: 0 faces kept after rerank that were not before, 1 dropped"``."""
        t = self.threshold
        if self.identical:
            return (
                f"the two sides are identical at threshold {t:.3g} "
                f"({_plural(self.shown_after, 'face')} each)"
            )
        moved = f", {len(self.moved)} re-scored by {self.delta:g} or more" if self.moved else ""
        were = "was" if len(self.new) == 1 else "were"
        return (
            f"at threshold {t:.3g}: {_plural(len(self.new), 'face')} kept after rerank that {were} "
            f"not before, {len(self.dropped)} dropped{moved}"
        )

    def note(self) -> str:
        """A few words for the reranked panel's title: ``"identical to the left"`` or
        ``"1 new, 2 dropped, 1 re-scored"``."""
        if self.identical:
            return "identical to the left"
        return f"{len(self.new)} new, {len(self.dropped)} dropped, {len(self.moved)} re-scored"


def rerank_diff(
    before: Detections,
    after: Detections,
    threshold: float = 0.5,
    *,
    delta: float = 0.05,
    iou: float = 0.5,
) -> RerankDiff:
    """Compare the faces two results show at ``threshold``: which are new, dropped or re-scored.

    Args:
        before: the detector's own result after NMS.
        after: the reranked result.
        threshold: the score at and above which a box is shown.
        delta: the score change from which a face shown on both sides counts as re-scored.
        iou: the overlap from which a box of each side is the same face.

    Returns:
        A :class:`RerankDiff`; faces are matched greedily, highest reranked score first.

    Example:
        >>> import torch
        >>> a = Detections(torch.tensor([[0.0, 0, 10, 10], [20, 0, 30, 10]]), torch.tensor([0.9, 0.4]))
        >>> b = Detections(a.boxes, torch.tensor([0.9, 0.6]))
        >>> rerank_diff(a, b).summary()
        'at threshold 0.5: 1 face kept after rerank that was not before, 0 dropped'
    """
    shown_b = [int(i) for i in torch.nonzero(before.scores >= threshold).flatten()]
    shown_a = [int(i) for i in torch.nonzero(after.scores >= threshold).flatten()]
    shown_a.sort(key=lambda i: -float(after.scores[i]))
    overlap = box_iou(after.boxes[shown_a], before.boxes[shown_b]) if shown_a and shown_b else None
    free, new, moved = set(range(len(shown_b))), [], []
    for k, a in enumerate(shown_a):
        best = None if overlap is None else max(free, key=lambda j: overlap[k, j], default=None)
        if best is None or overlap[k, best] < iou:
            new.append(a)
            continue
        free.discard(best)
        b = shown_b[best]
        if abs(float(after.scores[a]) - float(before.scores[b])) >= delta:
            moved.append((b, a))
    return RerankDiff(
        threshold,
        delta,
        len(shown_b),
        len(shown_a),
        tuple(new),
        tuple(shown_b[j] for j in sorted(free)),
        tuple(moved),
    )


def first_difference(
    before: Detections, after: Detections, below: float, **kwargs: float
) -> RerankDiff | None:
    """Find the highest threshold under ``below`` at which the two results show different faces.

    Args:
        before: the detector's own result after NMS.
        after: the reranked result.
        below: thresholds at and above this are not tried.
        **kwargs: ``delta`` and ``iou`` of :func:`rerank_diff`.

    Returns:
        The :class:`RerankDiff` at that threshold (its ``new`` or ``dropped`` is not empty), or
        ``None`` when the two show the same faces at every threshold under ``below``.
    """
    scores = torch.cat((before.scores, after.scores)).tolist()
    for t in sorted({s for s in scores if s < below}, reverse=True):
        diff = rerank_diff(before, after, t, **kwargs)
        if diff.new or diff.dropped:
            return diff
    return None


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
    headed = [(_heading(title, det, score_threshold), det, None) for title, det in panels]
    return _draw_panels(image, headed, score_threshold, max_width)


def before_after(
    image: Any,
    before: Detections,
    after: Detections,
    *,
    score_threshold: float = 0.5,
    delta: float = 0.05,
    max_width: int = 1600,
    titles: tuple[str, str] = ("detector + NMS", "crface rerank"),
) -> tuple[Image.Image, RerankDiff]:
    """:func:`side_by_side` of a detector's result and its reranked one, with the changes marked.

    Faces the rerank added are labelled ``new`` on the right, faces it dropped ``dropped`` on the
    left, and re-scored ones ``old->new``; unchanged faces carry their score only when their box
    is large enough to hold it (:data:`crface.types.DETAIL_PX`), and the right title says what
    changed, or that nothing did.

    Args:
        image: anything :func:`crface.imageio.as_rgb_array` accepts.
        before: the detector's own result after NMS.
        after: the reranked result.
        score_threshold: draw only boxes scoring at least this.
        delta: the score change from which a face counts as re-scored (:func:`rerank_diff`).
        max_width: as :func:`side_by_side`.
        titles: the two panels' titles.

    Returns:
        The picture and the :class:`RerankDiff` it shows.
    """
    diff = rerank_diff(before, after, score_threshold, delta=delta)
    left: list[str | None] = [None] * len(before)
    right: list[str | None] = [None] * len(after)
    for b in diff.dropped:
        left[b] = f"{float(before.scores[b]):.2f} dropped"
    for a in diff.new:
        right[a] = f"{float(after.scores[a]):.2f} new"
    for b, a in diff.moved:
        left[b] = f"{float(before.scores[b]):.2f}"
        right[a] = f"{float(before.scores[b]):.2f}->{float(after.scores[a]):.2f}"
    panels = [
        (_heading(titles[0], before, score_threshold), before, left),
        (f"{_heading(titles[1], after, score_threshold)}; {diff.note()}", after, right),
    ]
    return _draw_panels(image, panels, score_threshold, max_width), diff


def _draw_panels(
    image: Any,
    panels: list[tuple[str, Detections, list[str | None] | None]],
    score_threshold: float,
    max_width: int,
) -> Image.Image:
    """Draw ``(heading, detections, labels)`` panels side by side (see :func:`side_by_side`)."""
    rgb = as_rgb_array(image)
    gap = 8
    h, w = rgb.shape[:2]
    scale = (max_width - (len(panels) - 1) * gap) / (len(panels) * w)
    if scale < 1:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        image = Image.fromarray(rgb).resize(size, Image.LANCZOS)
        panels = [(head, _scaled(det, scale), labels) for head, det, labels in panels]
    drawn = []
    for head, det, labels in panels:
        canvas = det.draw(image, score_threshold=score_threshold, labels=labels)
        pen = ImageDraw.Draw(canvas)
        right = pen.textbbox((4, 2), head)[2]
        pen.rectangle((0, 0, right + 4, 16), fill=(0, 0, 0))
        pen.text((4, 2), head, fill=(255, 255, 255))
        drawn.append(canvas)
    w, h = drawn[0].size
    out = Image.new("RGB", (len(drawn) * w + (len(drawn) - 1) * gap, h), (255, 255, 255))
    for i, im in enumerate(drawn):
        out.paste(im, (i * (w + gap), 0))
    if out.width > max_width:
        out = out.resize((max_width, round(out.height * max_width / out.width)), Image.LANCZOS)
    return out
