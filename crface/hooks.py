"""One-line integration: wrap an existing detector so its output comes back reranked.

>>> import numpy as np, crface
>>> def my_detector(image):                      # any callable returning candidates before NMS
...     return np.array([[10, 10, 50, 60, 0.9], [12, 11, 51, 59, 0.8]])
>>> detect = crface.hook(my_detector, adapter="generic",
...                      refiner=crface.Refiner.load("crface-small", device="cpu"))
>>> detect(np.zeros((100, 100, 3), np.uint8)).indices.tolist()
[0]
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from torch import nn

from crface.adapters import get_adapter
from crface.imageio import as_rgb_array
from crface.refiner import Refiner
from crface.types import Detections
from crface.zooming import zoom as _zoom


def _default_refiner() -> Refiner:
    return Refiner.load("crface-small")


PHOTO = "photo"  # image_size= value: each photo's own (height, width)


def padded(multiple: int = 32) -> Callable[[int, int], tuple[int, int]]:
    """An ``image_size=`` for :func:`hook`: each photo's size rounded up to ``multiple``.

    For detectors run at the photo's own size that pad it (YuNet, SCRFD, CenterFace: 32).

    Example:
        >>> padded(32)(100, 65)
        (128, 96)
    """
    return lambda h, w: (-(-h // multiple) * multiple, -(-w // multiple) * multiple)


def _sized(image: Any, adapter_kwargs: dict[str, Any]) -> dict[str, Any]:
    """``adapter_kwargs`` with a per-photo ``image_size`` (``"photo"`` or a callable) resolved."""
    size = adapter_kwargs.get("image_size")
    if size is None or isinstance(size, (tuple, list)):
        return adapter_kwargs
    h, w = as_rgb_array(image).shape[:2]
    if size == PHOTO:
        return {**adapter_kwargs, "image_size": (h, w)}
    if callable(size):
        return {**adapter_kwargs, "image_size": tuple(size(h, w))}
    raise ValueError(
        f"image_size must be (H, W), 'photo' (each photo's own size) or a callable (h, w) -> "
        f"(H, W) such as crface.hooks.padded(32); got {size!r}"
    )


def hook(
    detect_fn: Callable[..., Any],
    adapter: str = "generic",
    refiner: Refiner | None = None,
    rerank_kwargs: dict[str, Any] | None = None,
    zoom: float | None = None,
    **adapter_kwargs: Any,
) -> Callable[..., Detections]:
    """Wrap ``detect_fn(image, *args, **kwargs)`` so that it returns reranked :class:`Detections`.

    The detector's native output goes through ``crface.adapters.<adapter>.to_detections(output,
    **adapter_kwargs)`` and then :meth:`Refiner.rerank` on the same image. Configure the detector
    to return candidates *before* NMS (or with NMS off / a very low threshold).

    Args:
        detect_fn: the detector callable; its first argument is the image.
        adapter: adapter name (see :data:`crface.adapters.ADAPTERS`).
        refiner: the ranker (default: ``Refiner.load("crface-small")``, loaded on first call).
        rerank_kwargs: options for :meth:`Refiner.rerank` (``nms``, ``score_threshold``...).
        zoom: run :func:`crface.zoom` at this scale (e.g. ``2.0``): a second, upscaled
            pass where the first one saw small faces, both passes then reranked together
            (``detect_fn`` must then return boxes in its input's pixels).
        **adapter_kwargs: options for the adapter, e.g. ``image_size`` for raw network heads:
            a fixed ``(H, W)``, ``"photo"`` for each photo's own size, or a callable
            ``(h, w) -> (H, W)`` such as :func:`padded` for a detector that pads the photo.

    Raises:
        ValueError: unknown adapter name (lists the valid ones), at wrap time.
    """
    module = get_adapter(adapter)
    state = {"refiner": refiner}
    options = dict(rerank_kwargs or {})

    @functools.wraps(detect_fn)
    def wrapped(image: Any, *args: Any, **kwargs: Any) -> Detections:
        if state["refiner"] is None:
            state["refiner"] = _default_refiner()
        if zoom is not None:
            return _zoom(
                lambda crop: detect_fn(crop, *args, **kwargs),
                image,
                adapter=adapter,
                scale=zoom,
                refiner=state["refiner"],
                rerank_kwargs=options,
                **adapter_kwargs,
            )
        output = detect_fn(image, *args, **kwargs)
        candidates = module.to_detections(output, **_sized(image, adapter_kwargs))
        return state["refiner"].rerank(image, candidates, **options)

    return wrapped


def refined(
    adapter: str = "generic",
    refiner: Refiner | None = None,
    rerank_kwargs: dict[str, Any] | None = None,
    **adapter_kwargs: Any,
) -> Callable[[Callable[..., Any]], Callable[..., Detections]]:
    """Decorator form of :func:`hook`::

    @crface.refined(adapter="scrfd", image_size=(640, 640))
    def detect(image): ...
    """
    return lambda fn: hook(fn, adapter, refiner, rerank_kwargs, **adapter_kwargs)


def rerank_stream(
    frames: Iterable[Any],
    detect_fn: Callable[[Any], Any],
    adapter: str = "generic",
    refiner: Refiner | None = None,
    rerank_kwargs: dict[str, Any] | None = None,
    **adapter_kwargs: Any,
) -> Iterator[tuple[Any, Detections]]:
    """Generator in, generator out: yields ``(frame, detections)`` for each frame (video, folders)."""
    detect = hook(detect_fn, adapter, refiner, rerank_kwargs, **adapter_kwargs)
    for frame in frames:
        yield frame, detect(frame)


class RefinedDetector(nn.Module):
    """A PyTorch module: ``detector`` followed by an adapter and a batched :meth:`Refiner.rerank_batch`.

    ``forward(images)`` takes a list of images (or a ``Tensor[B, 3, H, W]``), calls
    ``detector(image)`` per image, adapts each output and reranks them in batches. ``.to(device)``
    moves the detector and the ranker (torch backend) together.

    Args:
        detector: an ``nn.Module`` (or callable) returning candidates before NMS for one image.
        adapter: adapter name.
        refiner: the ranker (default: ``Refiner.load("crface-small")``).
        rerank_kwargs: options for :meth:`Refiner.rerank_batch`.
        zoom: add :func:`crface.zoom`'s upscaled pass at this scale (images then go one by
            one; ``detector`` must return boxes in its input's pixels).
        **adapter_kwargs: options for the adapter.
    """

    def __init__(
        self,
        detector: Any,
        adapter: str = "generic",
        refiner: Refiner | None = None,
        rerank_kwargs: dict[str, Any] | None = None,
        zoom: float | None = None,
        **adapter_kwargs: Any,
    ) -> None:
        super().__init__()
        self.zoom = zoom
        self.adapter_name = adapter
        self.detector = detector
        self.adapter = get_adapter(adapter)
        self.refiner = refiner or _default_refiner()
        self.ranker = self.refiner.model  # registered so .to() / .eval() reach it
        self.rerank_kwargs = dict(rerank_kwargs or {})
        self.adapter_kwargs = adapter_kwargs

    def to(self, *args: Any, **kwargs: Any) -> RefinedDetector:
        super().to(*args, **kwargs)
        if self.ranker is not None:
            self.refiner.to(next(self.ranker.parameters()).device)
        return self

    def forward(self, images: Any) -> list[Detections]:
        images = list(images)
        if self.zoom is not None:
            return [
                _zoom(
                    self.detector,
                    im,
                    adapter=self.adapter_name,
                    scale=self.zoom,
                    refiner=self.refiner,
                    rerank_kwargs=self.rerank_kwargs,
                    **self.adapter_kwargs,
                )
                for im in images
            ]
        cands = [
            self.adapter.to_detections(self.detector(im), **_sized(im, self.adapter_kwargs))
            for im in images
        ]
        return self.refiner.rerank_batch(images, cands, **self.rerank_kwargs)
