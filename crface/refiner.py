"""The public API: :class:`Refiner` re-ranks a face detector's candidates and runs NMS."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from crface import __version__
from crface._optional import ort_session, require
from crface.adapters.generic import as_float_tensor
from crface.imageio import as_rgb_array
from crface.model import ConfidenceRanker, RankerConfig, box_matrix, fold_batchnorm, letterbox
from crface.ops import BOX_FORMATS, convert_boxes, suppress
from crface.types import Detections
from crface.weights import build_model, resolve

BACKENDS = ("torch", "onnxruntime")
INVALID_POLICIES = ("drop_empty", "raise", "drop")
NMS_METHODS = ("hard", "soft", "soft_gaussian", "vote", None)
# Scores this far outside [0, 1] are float noise and get clipped; farther is a user error.
_SCORE_TOL = 1e-4
_ONNX_CONFIG_KEY = "crface_config"
_ONNX_META_KEY = "crface_metadata"
# Intra-op threads of the ranker's own forward when threads=None: one small forward per image
# gains little from more, and loses much when cores are shared (see Refiner's docstring).
DEFAULT_THREADS = 1
# Every box inside [0, 1] of an image larger than this (pixels, on its longer side): normalised.
_NORMALISED_MIN_SIDE = 16


@dataclass(frozen=True)
class Candidates:
    """Validated candidates of one image: canonical boxes/scores plus which rows are usable."""

    boxes: Tensor  # [N, 4] float32 xyxy pixels
    scores: Tensor  # [N] float32 in [0, 1]
    ok: Tensor  # [N] bool: rows that take part (False for rows dropped by the invalid= policy)
    landmarks: Tensor | None  # [N, L, 2] or None


def _rows(mask: Tensor, limit: int = 10) -> str:
    idx = torch.nonzero(mask).flatten().tolist()
    more = f" (+{len(idx) - limit} more)" if len(idx) > limit else ""
    return f"{idx[:limit]}{more}"


def prepare_candidates(
    boxes: Any,
    scores: Any,
    *,
    landmarks: Any = None,
    box_format: str = "xyxy",
    invalid: str = "drop_empty",
    image_size: tuple[int, int] | None = None,
) -> Candidates:
    """Validate one image's candidates and convert them to the canonical format.

    Policies:
        * NaN or infinite boxes/scores always raise (a detector bug, never silently dropped).
        * Boxes of zero width or height (what clipping to the image leaves of a box outside it):
          ``invalid="drop_empty"`` (default) excludes them and warns once per call with their
          count and rows (a ``UserWarning``); ``invalid="drop"`` excludes them silently;
          ``invalid="raise"`` lists them in a ValueError. Excluded rows get refined score 0 and
          never appear in results.
        * Boxes of negative width or height (``x2 < x1``: usually ``x, y, w, h`` boxes passed as
          xyxy) raise, naming ``box_format``, except under ``invalid="drop"``, which excludes them.
        * Scores must be probabilities in [0, 1] (values within 1e-4 of the range are clipped);
          apply sigmoid/softmax to logits first.
        * With ``image_size``, boxes that all lie inside [0, 1] of an image larger than 16 pixels
          raise: they are normalised coordinates, not pixels.

    Args:
        boxes: ``(N, 4)`` array-like in ``box_format`` pixels.
        scores: ``(N,)`` array-like.
        landmarks: optional ``(N, L, 2)`` (or ``(N, 2L)``) pixel coordinates, passed through.
        box_format: ``"xyxy"``, ``"xywh"`` or ``"cxcywh"``.
        invalid: ``"drop_empty"``, ``"drop"`` or ``"raise"`` (see the policies above).
        image_size: ``(height, width)`` of the image in pixels, to catch normalised boxes.

    Raises:
        TypeError: non-numeric input.
        ValueError: wrong shapes, mismatched lengths, NaN/inf, scores out of range, normalised
            boxes, negative-size boxes (unless ``invalid="drop"``), or zero-size boxes under
            ``invalid="raise"``.
    """
    if box_format not in BOX_FORMATS:
        raise ValueError(f"box_format must be one of {BOX_FORMATS}; got {box_format!r}")
    if invalid not in INVALID_POLICIES:
        raise ValueError(f"invalid must be one of {INVALID_POLICIES}; got {invalid!r}")
    b = as_float_tensor(boxes, "boxes", finite=False).cpu()
    s = as_float_tensor(scores, "scores", finite=False).cpu()
    if b.numel() == 0 and s.numel() == 0:
        b, s = b.reshape(0, 4), s.reshape(0)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4); got {tuple(b.shape)}")
    if s.ndim == 2 and s.shape[1] == 1:
        s = s[:, 0]
    if s.ndim != 1:
        raise ValueError(f"scores must have shape (N,); got {tuple(s.shape)}")
    if s.shape[0] != b.shape[0]:
        raise ValueError(
            f"boxes and scores differ in length: {b.shape[0]} boxes, {s.shape[0]} scores"
        )
    bad = ~torch.isfinite(b).all(dim=1)
    if bad.any():
        raise ValueError(f"boxes contain NaN or inf in rows {_rows(bad)}")
    bad = ~torch.isfinite(s)
    if bad.any():
        raise ValueError(f"scores contain NaN or inf in rows {_rows(bad)}")
    bad = (s < -_SCORE_TOL) | (s > 1 + _SCORE_TOL)
    if bad.any():
        raise ValueError(
            f"scores must be probabilities in [0, 1]; rows {_rows(bad)} are outside "
            f"(range [{s.min():.4g}, {s.max():.4g}]). Apply sigmoid/softmax to logits first."
        )
    s = s.clamp(0, 1)
    if image_size is not None:
        _check_pixels(b, image_size)
    b = convert_boxes(b, box_format, "xyxy")
    ok = _check_sizes(b, box_format, invalid)
    lm = None
    if landmarks is not None:
        lm = as_float_tensor(landmarks, "landmarks", finite=False).cpu()
        if lm.ndim == 2 and lm.shape[1] % 2 == 0:
            lm = lm.reshape(lm.shape[0], -1, 2)
        if lm.ndim != 3 or lm.shape[0] != b.shape[0] or lm.shape[2] != 2:
            raise ValueError(
                f"landmarks must have shape ({b.shape[0]}, L, 2) or ({b.shape[0]}, 2L); got "
                f"{tuple(landmarks.shape) if hasattr(landmarks, 'shape') else type(landmarks).__name__}"
            )
    return Candidates(b, s, ok, lm)


def _check_pixels(boxes: Tensor, image_size: tuple[int, int]) -> None:
    """Refuse boxes that are all inside [0, 1] of an image too large for that to be pixels."""
    h, w = (int(v) for v in image_size)
    if not len(boxes) or max(h, w) <= _NORMALISED_MIN_SIDE:
        return
    if bool(((boxes >= 0) & (boxes <= 1)).all()):
        raise ValueError(
            f"all {len(boxes)} boxes lie inside [0, 1] but the image is {w}x{h} pixels: they look "
            f"normalised. Pass pixels: multiply x by the image width ({w}) and y by its height "
            f"({h}); for an adapter's output use crface.adapters.generic.from_boxes(..., "
            f"normalized=True, image_size=({h}, {w}))"
        )


def _check_sizes(boxes: Tensor, box_format: str, invalid: str) -> Tensor:
    """Apply the ``invalid`` policy to xyxy ``boxes``; returns the mask of usable rows."""
    ok = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    negative = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if invalid != "drop" and negative.any():
        hint = (
            "if they are x, y, width, height pass box_format='xywh' (or 'cxcywh' for centre, size)"
            if box_format == "xyxy"
            else f"check the width/height columns of your {box_format} boxes"
        )
        raise ValueError(
            f"boxes with negative width/height (x2 < x1 or y2 < y1 after {box_format} -> xyxy) "
            f"in rows {_rows(negative)}: {hint}; invalid='drop' ignores such rows"
        )
    empty = ~ok & ~negative
    if empty.any() and invalid == "raise":
        raise ValueError(
            f"boxes with zero width/height in rows {_rows(empty)}; invalid='drop_empty' (the "
            "default) drops them with a warning"
        )
    if empty.any() and invalid == "drop_empty":
        warnings.warn(
            f"dropped {int(empty.sum())} of {len(boxes)} boxes with zero width/height (rows "
            f"{_rows(empty)}): they get refined score 0; invalid='drop' drops them silently, "
            "invalid='raise' refuses them",
            UserWarning,
            stacklevel=4,
        )
    return ok


@contextlib.contextmanager
def intra_op_threads(threads: int | None):
    """Run the enclosed torch code with ``threads`` intra-op threads, then restore the setting.

    ``torch.set_num_threads`` is process-wide: other Python threads running torch meanwhile see
    the temporary value too.

    Args:
        threads: ``None``: ``min(torch.get_num_threads(), DEFAULT_THREADS)``; ``0``: leave torch's
            setting alone; ``n > 0``: exactly ``n``.
    """
    before = torch.get_num_threads()
    want = min(before, DEFAULT_THREADS) if threads is None else threads or before
    if want == before:
        yield
        return
    torch.set_num_threads(want)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _check_threads(threads: Any) -> int | None:
    expected = f"None (the default: {DEFAULT_THREADS}), 0 (torch's own setting) or a positive int"
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int):
        raise TypeError(f"threads must be {expected}; got {type(threads).__name__}")
    if threads < 0:
        raise ValueError(f"threads must be {expected}; got {threads}")
    return threads


class _TorchBackend:
    def __init__(self, model: ConfidenceRanker, device: torch.device) -> None:
        self.model = model.to(device).eval()
        self.device = device
        # What the network lets the caller leave off (see ConfidenceRanker's docstring).
        self.tight_rows = model.config.head in ("rows", "crop")
        self.tight_canvas = model.config.head == "crop"

    @torch.inference_mode()
    def __call__(self, images: Tensor, boxes: Tensor) -> Tensor:
        return self.model(images.to(self.device), boxes.to(self.device)).float().cpu()


class _OrtBackend:
    def __init__(self, session: Any) -> None:
        self.session = session
        # A named (dynamic) axis takes fewer rows / a tight canvas; older exports fix N and S.
        shapes = {i.name: i.shape for i in session.get_inputs()}
        self.tight_rows = isinstance(shapes["boxes"][1], str)
        self.tight_canvas = isinstance(shapes["image"][2], str)

    def __call__(self, images: Tensor, boxes: Tensor) -> Tensor:
        feed = {"image": images.cpu().numpy(), "boxes": boxes.cpu().numpy()}
        return torch.from_numpy(self.session.run(["scores"], feed)[0])


def _pick_strength(metadata: dict[str, Any], strength: float | None, detector: str | None) -> float:
    """The blend strength: explicit, else the weights' per-detector / default value, else 1."""
    table = metadata.get("strength") or {}
    per_det = table.get("per_detector", {})
    if detector is not None and strength is None:
        if detector not in per_det:
            raise ValueError(
                f"no strength stored for detector {detector!r}; the weights know "
                f"{sorted(per_det) or 'none'}: pass strength= explicitly"
            )
        strength = per_det[detector]
    if strength is None:
        strength = table.get("default", 1.0)
    if isinstance(strength, bool) or not isinstance(strength, (int, float)):
        raise TypeError(f"strength must be a number; got {type(strength).__name__}")
    if not math.isfinite(strength) or strength < 0:
        raise ValueError(f"strength must be finite and >= 0; got {strength!r}")
    return float(strength)


def _pick_nms(metadata: dict[str, Any], detector: str | None) -> str | None:
    """The suppression the weights chose for ``detector``, else their default, else hard NMS."""
    table = metadata.get("nms") or {}
    method = table.get("per_detector", {}).get(detector, table.get("default", "hard"))
    if method not in NMS_METHODS:
        raise ValueError(
            f"the weights' metadata names nms {method!r}; expected one of {NMS_METHODS}: "
            "re-ship them with tools/ship_weights.py"
        )
    return method


def _check_device_name(device: str) -> None:
    if device not in ("auto", "cpu", "cuda") and not str(device).startswith("cuda:"):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {device!r}")


def _resolve_device(device: str) -> torch.device:
    _check_device_name(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} requested but torch sees no CUDA device")
    return torch.device(device)


class Refiner:
    """Re-ranks a face detector's candidate confidences with a CRFace ranker, then runs NMS.

    Build one with :meth:`load`. Feed it the detector's candidates *before* NMS (or with a very
    low NMS/score threshold): the ranker re-orders them and does the suppression itself.

    Threads: by default the ranker's own forward runs with one intra-op thread (``threads=None``,
    at most torch's current setting), set for the call and restored after it
    (``torch.set_num_threads`` is process-wide, so torch code in other Python threads meanwhile
    runs with it too). One small forward per image gains little from more threads and, on
    shared or busy cores, torch's default count can make it many times slower. ``threads=0``
    leaves torch's setting alone; ``threads=n`` uses ``n``. The onnxruntime backend gets the same
    count as its session's ``intra_op_num_threads`` (0: onnxruntime's default).

    Attributes:
        strength: the blend strength of the refined scores (see :meth:`load`).
        nms: what :meth:`rerank` suppresses with by default (``nms="auto"``): the method the
            weights store for the ``detector`` named at load (e.g. ``"vote"``, box voting, where
            it scored higher on held-out photos), else their default, else ``"hard"``.

    Example:
        >>> import numpy as np
        >>> refiner = Refiner.load("crface-small", device="cpu")
        >>> image = np.zeros((240, 320, 3), np.uint8)
        >>> faces = refiner.rerank(image, [[10, 10, 60, 70], [12, 11, 61, 69]], [0.9, 0.8])
        >>> len(faces), faces.indices.tolist()
        (1, [0])
    """

    def __init__(
        self,
        config: RankerConfig,
        forward: Callable[[Tensor, Tensor], Tensor],
        *,
        model: ConfidenceRanker | None = None,
        metadata: dict[str, Any] | None = None,
        backend: str = "torch",
        device: torch.device | None = None,
        batch_size: int = 8,
        strength: float | None = None,
        detector: str | None = None,
        threads: int | None = None,
    ) -> None:
        self.config = config
        self.metadata = dict(metadata or {})
        self.backend = backend
        self.device = device or torch.device("cpu")
        self.batch_size = int(batch_size)
        self.model = model
        self._forward = forward
        self._tight_rows = getattr(forward, "tight_rows", False)
        self._tight_canvas = getattr(forward, "tight_canvas", False)
        self.strength = _pick_strength(self.metadata, strength, detector)
        self.nms = _pick_nms(self.metadata, detector)
        self.threads = _check_threads(threads)

    # ---------------------------------------------------------------- construction
    @classmethod
    def load(
        cls,
        name_or_path: str | os.PathLike = "crface-small",
        *,
        device: str = "auto",
        backend: str = "torch",
        batch_size: int = 8,
        strength: float | None = None,
        detector: str | None = None,
        threads: int | None = None,
    ) -> Refiner:
        """Load a registered model (see :func:`crface.list_weights`) or a weights / ``.onnx`` file.

        Args:
            name_or_path: a registered name, a crface weights file, or an ``.onnx`` export.
            device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
            backend: ``"torch"`` or ``"onnxruntime"`` (needs ``crface[onnx]``, or ``crface[gpu]``
                for CUDA). A weights file is exported to ONNX in memory for the latter.
            batch_size: images per forward pass in :meth:`rerank_batch`.
            strength: how far to move each score towards the ranker's: ``s + strength * (r - s)``
                (0: the detector's scores unchanged, 1: the ranker's). ``None``: the value
                stored with the weights (chosen on held-out data; see ``docs/model_card.md``),
                for ``detector`` when given, else 1.
            detector: the detector producing the candidates (e.g. ``"retinaface"``), to use the
                strength and the suppression (:attr:`nms`) chosen for it. Names the weights do
                not know raise (listing them).
            threads: intra-op threads of the ranker's forward (see the class docstring):
                ``None`` (default) one, ``0`` torch's / onnxruntime's own setting, ``n`` that many.

        Raises:
            ValueError: unknown backend/device/detector, bad strength or threads, a corrupt or
                truncated weights / ``.onnx`` file, a failed registry or embedded checksum.
            FileNotFoundError: unknown name and no such file (the message lists registered names).
        """
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}")
        _check_device_name(device)  # fail on a bad device before reading any file
        _check_threads(threads)
        options = {"strength": strength, "detector": detector, "threads": threads}
        path = resolve(name_or_path)
        if path.suffix == ".onnx":
            if backend != "onnxruntime":
                raise ValueError(f"{path} is an ONNX model: load it with backend='onnxruntime'")
            return cls.from_onnx(path, device, batch_size, **options)
        model, metadata = build_model(path)
        if metadata.get("trained") is False:
            warnings.warn(
                f"{os.fspath(name_or_path)!r} is an UNTRAINED initialisation: refined scores equal "
                "the input scores until trained weights are installed",
                UserWarning,
                stacklevel=2,
            )
        if backend == "onnxruntime":
            buf = io.BytesIO()
            export_onnx(model, buf, metadata)
            return cls.from_onnx(buf.getvalue(), device, batch_size, **options)
        # The model is ours, so inference-only rewrites are safe: BatchNorm folded into the convs.
        return cls.from_model(
            fold_batchnorm(model.eval()),
            device=device,
            metadata=metadata,
            batch_size=batch_size,
            **options,
        )

    @classmethod
    def from_model(
        cls,
        model: ConfidenceRanker,
        *,
        device: str = "auto",
        metadata: dict[str, Any] | None = None,
        batch_size: int = 8,
        strength: float | None = None,
        detector: str | None = None,
        threads: int | None = None,
    ) -> Refiner:
        """Wrap an in-memory :class:`~crface.model.ConfidenceRanker` (e.g. during training);
        ``strength`` / ``detector`` / ``threads`` as in :meth:`load`."""
        dev = _resolve_device(device)
        return cls(
            model.config,
            _TorchBackend(model, dev),
            model=model,
            metadata=metadata,
            backend="torch",
            device=dev,
            batch_size=batch_size,
            strength=strength,
            detector=detector,
            threads=threads,
        )

    @classmethod
    def from_onnx(
        cls,
        source: Path | bytes,
        device: str = "auto",
        batch_size: int = 8,
        *,
        strength: float | None = None,
        detector: str | None = None,
        threads: int | None = None,
    ) -> Refiner:
        """Run an ONNX export (a path or the serialised bytes) on onnxruntime; ``strength`` /
        ``detector`` / ``threads`` as in :meth:`load`."""
        options = require("onnxruntime", "running ONNX models").SessionOptions()
        threads = _check_threads(threads)
        options.intra_op_num_threads = DEFAULT_THREADS if threads is None else threads
        session = ort_session(source, device, sess_options=options)
        props = session.get_modelmeta().custom_metadata_map
        if _ONNX_CONFIG_KEY not in props:
            raise ValueError(
                f"ONNX model {source if isinstance(source, Path) else '<memory>'} carries no crface "
                "config: export it with Refiner.export_onnx"
            )
        config = RankerConfig.from_dict(json.loads(props[_ONNX_CONFIG_KEY]))
        metadata = json.loads(props.get(_ONNX_META_KEY, "{}"))
        on_cuda = session.get_providers()[0] == "CUDAExecutionProvider"
        return cls(
            config,
            _OrtBackend(session),
            metadata=metadata,
            backend="onnxruntime",
            device=torch.device("cuda" if on_cuda else "cpu"),
            batch_size=batch_size,
            strength=strength,
            detector=detector,
            threads=threads,
        )

    def to(self, device: str | torch.device) -> Refiner:
        """Move the torch-backend ranker to ``device`` (in place); returns ``self``.

        Raises:
            ValueError: on the onnxruntime backend (choose its device at load time) or for a
                CUDA device torch cannot see.
        """
        if self.model is None:
            raise ValueError("Refiner.to() needs the torch backend; pass device= to Refiner.load")
        dev = _resolve_device(str(device))
        self._forward = _TorchBackend(self.model, dev)
        self.device = dev
        return self

    # ---------------------------------------------------------------- scoring
    def _refine(self, images: Sequence[np.ndarray], cands: Sequence[Candidates]) -> list[Tensor]:
        """Refined scores for every row of every image (dropped rows 0; rows past N unchanged)."""
        # onnxruntime got its thread count at session creation
        with intra_op_threads(0 if self.model is None else self.threads):
            return self._refine_rows(images, cands)

    def _refine_rows(
        self, images: Sequence[np.ndarray], cands: Sequence[Candidates]
    ) -> list[Tensor]:
        cfg = self.config
        results: list[Tensor] = [c.scores.clone() for c in cands]
        jobs = []
        for i, (img, c) in enumerate(zip(images, cands)):
            results[i][~c.ok] = 0.0
            rows = torch.nonzero(c.ok).flatten()
            if rows.numel():
                jobs.append((i, img, rows))
        for start in range(0, len(jobs), self.batch_size):
            chunk = jobs[start : start + self.batch_size]
            tensors, mats, orders = [], [], []
            for i, img, rows in chunk:
                if cfg.uses_image:
                    x, _ = letterbox(
                        torch.from_numpy(img).permute(2, 0, 1).to(self.device),
                        cfg.image_size,
                        square=not self._tight_canvas,
                    )
                else:  # the graph keeps its image input (one signature), but ignores it
                    x = torch.zeros(3, cfg.image_size, cfg.image_size, device=self.device)
                mat, order = box_matrix(
                    cands[i].boxes[rows],
                    cands[i].scores[rows],
                    float(max(img.shape[:2])),
                    cfg.num_boxes,
                )
                tensors.append(x)
                mats.append(mat)
                orders.append(rows[order])
            boxes = torch.stack(mats)
            if self._tight_rows:  # padding rows past the longest list change nothing
                boxes = boxes[:, : max(o.numel() for o in orders)]
            out = self._forward(_stack_canvases(tensors), boxes)
            for (i, _, _), o, src in zip(chunk, out, orders):
                old = results[i][src]
                results[i][src] = old + self.strength * (o[: src.numel()].to(old.dtype) - old)
        return results

    def refine_scores(
        self,
        image: Any,
        boxes: Any,
        scores: Any,
        *,
        box_format: str = "xyxy",
        invalid: str = "drop_empty",
    ) -> Tensor:
        """Refined confidence for every input row, without NMS.

        Args:
            image: ``HxWx3`` RGB array, PIL image, ``CxHxW`` tensor or image path (uint8, or
                float on the 0-1 or 0-255 scale: see :func:`crface.imageio.as_rgb_array`).
            boxes: ``(N, 4)`` candidates in ``box_format`` pixels (numpy, torch or lists).
            scores: ``(N,)`` detector confidences in [0, 1].
            box_format: ``"xyxy"`` (default), ``"xywh"`` or ``"cxcywh"``.
            invalid: policy for zero/negative-size boxes (see :func:`prepare_candidates`):
                ``"drop_empty"`` (default) drops zero-size rows with a warning giving their
                count, ``"drop"`` drops zero- and negative-size rows silently, ``"raise"``.

        Returns:
            ``Tensor[N]`` float32 on the CPU, aligned with the input rows. Only the top
            ``config.num_boxes`` rows by score are refined; the others keep their input score.
            Dropped rows get 0.

        Example:
            >>> import numpy as np
            >>> r = Refiner.load("crface-small", device="cpu")
            >>> r.refine_scores(np.zeros((64, 64, 3), np.uint8), [[1, 1, 20, 20]], [0.7]).shape
            torch.Size([1])
        """
        img = as_rgb_array(image)
        cand = prepare_candidates(
            boxes, scores, box_format=box_format, invalid=invalid, image_size=img.shape[:2]
        )
        return self._refine([img], [cand])[0]

    def rerank(
        self,
        image: Any,
        boxes: Any,
        scores: Any = None,
        *,
        landmarks: Any = None,
        box_format: str = "xyxy",
        nms: str | None = "auto",
        nms_iou: float = 0.4,
        score_threshold: float = 0.02,
        max_det: int | None = 750,
        invalid: str = "drop_empty",
    ) -> Detections:
        """Refine the candidates' confidences, then suppress duplicates.

        Args:
            image: ``HxWx3`` RGB array, PIL image, ``CxHxW`` tensor or image path (uint8, or
                float on the 0-1 or 0-255 scale: see :func:`crface.imageio.as_rgb_array`).
            boxes: ``(N, 4)`` candidates before NMS in ``box_format`` pixels, or a
                :class:`~crface.types.Detections` from an adapter (then leave ``scores`` and
                ``landmarks`` unset).
            scores: ``(N,)`` detector confidences in [0, 1].
            landmarks: optional ``(N, L, 2)`` points, returned aligned with the kept rows.
            box_format: ``"xyxy"`` (default), ``"xywh"`` or ``"cxcywh"``.
            nms: ``"auto"`` (default: :attr:`nms`, the suppression the weights store for the
                ``detector`` named at load, else hard NMS), ``"hard"``, ``"soft"`` (linear
                Soft-NMS), ``"soft_gaussian"``, ``"vote"`` (box voting: boxes become
                score-weighted cluster averages) or ``None``.
            nms_iou: IoU threshold of the suppression (0.4, as the paper).
            score_threshold: drop candidates whose refined score is below this before NMS (0.02
                as RetinaFace's WIDER protocol; raise it, e.g. 0.5, for display).
            max_det: keep at most this many detections (``None`` for all).
            invalid: policy for zero/negative-size boxes (see :func:`prepare_candidates`):
                ``"drop_empty"`` (default) drops zero-width/height rows (e.g. boxes clipped to
                nothing) and reports their count in a ``UserWarning``; negative sizes still
                raise. ``"drop"`` drops both silently; ``"raise"`` refuses both.

        Returns:
            :class:`~crface.types.Detections` sorted by refined score; ``indices`` are rows of
            the input. Empty input gives an empty result.

        Raises:
            ValueError: bad candidates (see :func:`prepare_candidates`: NaN/inf, scores outside
                [0, 1], normalised boxes, sizes the ``invalid`` policy refuses), bad image or
                options.
            TypeError: non-numeric candidates or an unsupported image type.
        """
        img = as_rgb_array(image)
        cand = self._candidates(boxes, scores, landmarks, box_format, invalid, img.shape[:2])
        refined = self._refine([img], [cand])[0]
        return self._suppress(cand, refined, self._nms(nms), nms_iou, score_threshold, max_det)

    def rerank_batch(
        self,
        images: Sequence[Any],
        boxes_list: Sequence[Any],
        scores_list: Sequence[Any] | None = None,
        *,
        landmarks_list: Sequence[Any] | None = None,
        box_format: str = "xyxy",
        nms: str | None = "auto",
        nms_iou: float = 0.4,
        score_threshold: float = 0.02,
        max_det: int | None = 750,
        invalid: str = "drop_empty",
    ) -> list[Detections]:
        """:meth:`rerank` for many images with batched forward passes (``batch_size`` at a time).

        ``boxes_list[i]`` may be a :class:`~crface.types.Detections` (then pass no
        ``scores_list``). Returns one :class:`~crface.types.Detections` per image.
        """
        n = len(images)
        for name, seq in (
            ("boxes_list", boxes_list),
            ("scores_list", scores_list),
            ("landmarks_list", landmarks_list),
        ):
            if seq is not None and len(seq) != n:
                raise ValueError(f"{name} has {len(seq)} entries for {n} images")
        arrays = [as_rgb_array(im) for im in images]
        cands = [
            self._candidates(
                boxes_list[i],
                None if scores_list is None else scores_list[i],
                None if landmarks_list is None else landmarks_list[i],
                box_format,
                invalid,
                arrays[i].shape[:2],
            )
            for i in range(n)
        ]
        refined = self._refine(arrays, cands)
        nms = self._nms(nms)
        return [
            self._suppress(c, r, nms, nms_iou, score_threshold, max_det)
            for c, r in zip(cands, refined)
        ]

    @staticmethod
    def _candidates(
        boxes: Any,
        scores: Any,
        landmarks: Any,
        box_format: str,
        invalid: str,
        image_size: tuple[int, int],
    ) -> Candidates:
        if isinstance(boxes, Detections):
            if scores is not None or landmarks is not None:
                raise ValueError(
                    "pass either a Detections or boxes + scores (+ landmarks), not both"
                )
            boxes, scores, landmarks = boxes.boxes, boxes.scores, boxes.landmarks
            box_format = "xyxy"
        elif scores is None:
            raise TypeError("scores is required when boxes is not a Detections")
        return prepare_candidates(
            boxes,
            scores,
            landmarks=landmarks,
            box_format=box_format,
            invalid=invalid,
            image_size=image_size,
        )

    def _nms(self, nms: str | None) -> str | None:
        return self.nms if nms == "auto" else nms

    @staticmethod
    def _suppress(
        cand: Candidates,
        refined: Tensor,
        nms: str | None,
        nms_iou: float,
        score_threshold: float,
        max_det: int | None,
    ) -> Detections:
        if nms not in NMS_METHODS:
            raise ValueError(f"nms must be 'auto' or one of {NMS_METHODS}; got {nms!r}")
        if max_det is not None and max_det < 0:
            raise ValueError(f"max_det must be >= 0 or None; got {max_det}")
        rows = torch.nonzero(cand.ok & (refined >= score_threshold)).flatten()
        num_lm = None if cand.landmarks is None else cand.landmarks.shape[1]
        if rows.numel() == 0:
            return Detections.empty(num_landmarks=num_lm)
        keep, boxes, scores = suppress(cand.boxes[rows], refined[rows], nms, nms_iou)
        keep, boxes, scores = keep[:max_det], boxes[:max_det], scores[:max_det]
        idx = rows[keep]
        lm = None if cand.landmarks is None else cand.landmarks[idx]
        return Detections(boxes, scores, idx, lm)

    # ---------------------------------------------------------------- export
    def export_onnx(self, path: str | os.PathLike) -> Path:
        """Export the network (dynamic batch) to ``path`` for ``Refiner.load(path, backend="onnxruntime")``.

        The graph takes ``image`` ``float32[B, 3, S, S]`` (letterboxed RGB 0-255) and ``boxes``
        ``float32[B, N, 5]`` and returns ``scores`` ``float32[B, N]``; the config and metadata
        are stored as ONNX metadata. Pre/post-processing stays in Python. For the ``"rows"`` and
        ``"crop"`` heads ``N`` is a dynamic axis (up to ``num_boxes``), and for ``"crop"`` the
        image's height and width too (a tight canvas: see :func:`crface.model.letterbox`), so
        the backend skips padding rows and the canvas's zeros as the torch one does.

        Raises:
            ValueError: this refiner runs on onnxruntime already (nothing to export from).
        """
        if self.model is None:
            raise ValueError(
                "export_onnx needs the torch backend (this refiner runs an ONNX graph)"
            )
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            export_onnx(self.model, fh, self.metadata)
        return path

    def __repr__(self) -> str:
        c = self.config
        return (
            f"Refiner(backbone={c.backbone!r}, image_size={c.image_size}, num_boxes={c.num_boxes}, "
            f"backend={self.backend!r}, device={str(self.device)!r})"
        )


def _stack_canvases(images: list[Tensor]) -> Tensor:
    """``[Tensor[3, h_i, w_i]]`` -> ``Tensor[B, 3, max h, max w]``, zero-padded bottom/right."""
    if len(images) == 1:
        return images[0][None]  # no copy of a 12 MB canvas
    h = max(x.shape[1] for x in images)
    w = max(x.shape[2] for x in images)
    return torch.stack([F.pad(x, (0, w - x.shape[2], 0, h - x.shape[1])) for x in images])


def export_onnx(model: ConfidenceRanker, fh: Any, metadata: dict[str, Any] | None = None) -> None:
    """Export ``model`` to ONNX (opset 18, dynamic batch) into the binary file object ``fh``."""
    onnx = require("onnx", "ONNX export")
    require("onnxscript", "ONNX export")
    cfg = model.config
    model = model.eval()
    device = next(model.parameters()).device
    image = torch.zeros(2, 3, cfg.image_size, cfg.image_size, device=device)
    boxes = torch.zeros(2, cfg.num_boxes, 5, device=device)
    batch = torch.export.Dim("batch", min=1)
    shapes: dict[str, dict[int, Any]] = {"image": {0: batch}, "boxes": {0: batch}}
    if cfg.head in ("rows", "crop"):  # these take any N <= num_boxes
        shapes["boxes"][1] = torch.export.Dim("rows", min=1, max=cfg.num_boxes)
    if cfg.head == "crop":  # and a tight canvas (see letterbox)
        for axis in (2, 3):
            shapes["image"][axis] = torch.export.Dim(f"canvas{axis}", min=2, max=cfg.image_size)
    # The exporter narrates to stdout and warns that the two inputs share one batch dim (intended).
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*axis name: batch.*")
        program = torch.onnx.export(
            model,
            (image, boxes),
            input_names=["image", "boxes"],
            output_names=["scores"],
            opset_version=18,
            dynamo=True,
            dynamic_shapes=shapes,
            verbose=False,
        )
    proto = program.model_proto
    for node in proto.graph.node:  # per-node stack traces would triple the file size
        del node.metadata_props[:]
    meta = {**(metadata or {}), "crface_version": __version__}
    for key, value in ((_ONNX_CONFIG_KEY, cfg.to_dict()), (_ONNX_META_KEY, meta)):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    fh.write(
        onnx.serialize_model(proto)
        if hasattr(onnx, "serialize_model")
        else proto.SerializeToString()
    )
