"""Reading and writing one image's detections as files (used by ``crface rerank``).

Accepted inputs (``box_format`` applies to the first three; WIDER files are always ``xywh``):

* ``.json``: ``{"boxes": [[...], ...], "scores": [...], "landmarks": [...] (optional)}`` or a list of
  ``[b0, b1, b2, b3, score]`` rows;
* ``.npy``: an ``(N, 5)`` array of ``b0 b1 b2 b3 score`` rows;
* ``.npz``: arrays ``boxes (N, 4)``, ``scores (N,)`` and optionally ``landmarks (N, L, 2)``;
* ``.txt``: whitespace-separated ``b0 b1 b2 b3 score`` rows (``#`` comments allowed), or a WIDER
  FACE prediction file (image name line, count line, ``x y w h score`` rows).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crface.ops import convert_boxes
from crface.types import Detections

READ_SUFFIXES = (".json", ".npy", ".npz", ".txt")
WRITE_SUFFIXES = (".json", ".npy", ".txt")


def _rows_to_detections(rows: Any, box_format: str, source: Path) -> Detections:
    arr = np.asarray(rows, dtype=np.float32)
    if arr.size == 0:
        return Detections.empty()
    if arr.ndim != 2 or arr.shape[1] != 5:
        raise ValueError(
            f"{source}: expected rows of 5 numbers (box + score); got shape {arr.shape}"
        )
    boxes = convert_boxes(torch.from_numpy(arr[:, :4]), box_format, "xyxy")
    return Detections(boxes, torch.from_numpy(arr[:, 4]))


def _parse_txt(path: Path, box_format: str) -> Detections:
    lines = [ln.split("#", 1)[0].strip() for ln in path.read_text().splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        return Detections.empty()

    def numbers(i: int) -> list[float]:
        try:
            return [float(v) for v in lines[i].split()]
        except ValueError as exc:
            raise ValueError(f"{path}: cannot parse line {i + 1!r}: {lines[i]!r}") from exc

    first = lines[0].split()
    if len(lines) >= 2 and lines[1].isdigit() and not _is_number_row(first):
        from crface.eval.wider import parse_prediction_lines

        return _rows_to_detections(parse_prediction_lines(path, lines), "xyxy", path)
    return _rows_to_detections([numbers(i) for i in range(len(lines))], box_format, path)


def _is_number_row(tokens: list[str]) -> bool:
    try:
        [float(t) for t in tokens]
    except ValueError:
        return False
    return True


def read_detections(path: str | os.PathLike, box_format: str = "xyxy") -> Detections:
    """Read one image's candidate detections from a file (formats in the module docstring).

    Raises:
        FileNotFoundError: no such file.
        ValueError: unknown suffix or malformed content (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"detections file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return _parse_txt(path, box_format)
    if suffix == ".npy":
        return _rows_to_detections(np.load(path, allow_pickle=False), box_format, path)
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            missing = {"boxes", "scores"} - set(z.files)
            if missing:
                raise ValueError(f"{path}: missing arrays {sorted(missing)}; has {z.files}")
            boxes = convert_boxes(torch.from_numpy(z["boxes"].astype(np.float32)), box_format)
            lm = z["landmarks"] if "landmarks" in z.files else None
            return Detections(boxes, z["scores"].astype(np.float32), landmarks=lm)
    if suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: invalid JSON: {exc}") from exc
        if isinstance(data, dict):
            if "boxes" not in data or "scores" not in data:
                raise ValueError(
                    f"{path}: a JSON object needs 'boxes' and 'scores'; has {sorted(data)}"
                )
            boxes = np.asarray(data["boxes"], dtype=np.float32).reshape(-1, 4)
            boxes_t = convert_boxes(torch.from_numpy(boxes), data.get("box_format", box_format))
            return Detections(
                boxes_t, np.asarray(data["scores"], np.float32), landmarks=data.get("landmarks")
            )
        return _rows_to_detections(data, box_format, path)
    raise ValueError(
        f"{path}: unsupported detections file type {suffix!r}; expected one of {READ_SUFFIXES}"
    )


def write_detections(
    path: str | os.PathLike, detections: Detections, image_name: str = "image"
) -> Path:
    """Write detections as ``.json`` (xyxy + indices + landmarks), ``.npy`` (``N x 5`` xyxy+score)
    or ``.txt`` (WIDER FACE prediction file, ``x y w h score``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITE_SUFFIXES:
        raise ValueError(
            f"{path}: unsupported output type {suffix!r}; expected one of {WRITE_SUFFIXES}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = detections.to_numpy()
    if suffix == ".json":
        path.write_text(json.dumps({"box_format": "xyxy", **detections.to_dict()}, indent=1))
    elif suffix == ".npy":
        np.save(path, np.concatenate([arr["boxes"], arr["scores"][:, None]], axis=1))
    else:
        xywh = detections.xywh.detach().cpu().numpy()
        rows = [
            f"{x:.2f} {y:.2f} {w:.2f} {h:.2f} {s:.6f}"
            for (x, y, w, h), s in zip(xywh, arr["scores"])
        ]
        path.write_text("\n".join([Path(image_name).stem, str(len(rows)), *rows]) + "\n")
    return path
