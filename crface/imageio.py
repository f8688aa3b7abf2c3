"""Turning whatever a user calls "an image" into one canonical array: ``HxWx3`` uint8 RGB."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

_ORIENTATION = 0x0112  # the EXIF tag; values 2-8 mean the stored pixels are mirrored/rotated
ImageLike = np.ndarray | torch.Tensor | Image.Image | str | os.PathLike

_ACCEPTED = (
    "an HxWx3 (or HxW / HxWx4) uint8 or float numpy array, a PIL image, a CxHxW uint8 or float "
    "torch tensor, or a path to an image file"
)


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as ``HxWx3`` uint8 RGB (grayscale and RGBA are converted).

    The EXIF orientation tag is applied, as photo viewers, OpenCV's ``imread`` and mmcv do: a phone
    photo stored sideways comes back upright, in the pixels a detector that read the same file with
    those libraries reports its boxes in.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: the file is not a readable image.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with Image.open(path) as im:
            if im.getexif().get(_ORIENTATION, 1) != 1:
                im = ImageOps.exif_transpose(im)
            return np.array(im.convert("RGB"))
    except OSError as exc:  # PIL raises UnidentifiedImageError (an OSError) for non-images
        raise ValueError(f"cannot read {path} as an image: {exc}") from exc


def as_rgb_array(image: Any) -> np.ndarray:
    """Return ``image`` as a C-contiguous ``HxWx3`` uint8 RGB numpy array.

    Accepts an ``HxWx3`` / ``HxW`` / ``HxWx4`` numpy array (RGB order), a PIL image of any
    mode, a ``CxHxW`` torch tensor (C in 1, 3, 4) or a file path.

    Arrays and tensors are uint8, or float under one rule for both: if every value lies in
    [0, 1] the image is on the 0-1 scale (``torchvision``'s ``ToTensor``, ``skimage``) and is
    multiplied by 255; otherwise values must lie in [0, 255] (``img.astype(np.float32)`` of a
    uint8 image) and are used as they are. Either way they are rounded to uint8. (So a float
    0-255 image whose brightest pixel is at most 1, i.e. black, is read on the 0-1 scale.)

    Raises:
        TypeError: for an object that is none of those.
        ValueError: for a wrong shape, dtype, empty image, non-finite values, or float values
            outside [0, 255] (e.g. a mean/std normalised tensor).

    Example:
        >>> as_rgb_array(np.zeros((4, 6), np.uint8)).shape
        (4, 6, 3)
    """
    if isinstance(image, (str, os.PathLike)):
        return load_image(image)
    if isinstance(image, Image.Image):
        return np.array(image.convert("RGB"))
    if isinstance(image, torch.Tensor):
        t = image.detach().cpu()
        if t.ndim == 2:
            t = t[None]
        if t.ndim != 3 or t.shape[0] not in (1, 3, 4):
            raise ValueError(
                f"image tensor must be CxHxW with C in (1, 3, 4); got shape {tuple(image.shape)}"
            )
        if not t.is_floating_point() and t.dtype != torch.uint8:
            raise ValueError(f"image tensor must be uint8 or float; got {t.dtype}")
        if t.is_floating_point():
            t = t.float()  # numpy has no bfloat16
        arr = t.permute(1, 2, 0).numpy()
    elif isinstance(image, np.ndarray):
        arr = image
    else:
        raise TypeError(f"image must be {_ACCEPTED}; got {type(image).__name__}")

    if np.issubdtype(arr.dtype, np.floating):
        arr = _float_to_uint8(arr)
    if arr.dtype != np.uint8:
        raise ValueError(
            f"image array must be uint8 or float (HxWx3 RGB); got dtype {arr.dtype}. "
            "Convert it with img.astype(np.uint8) if its values are 0-255."
        )
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ValueError(f"image array must be HxW, HxWx3 or HxWx4; got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"image is empty: shape {arr.shape}")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.shape[2] == 4:
        arr = arr[:, :, :3]
    arr = np.ascontiguousarray(arr)
    # torch.from_numpy downstream wants a writable buffer; copy read-only views (e.g. of PIL data).
    return arr if arr.flags.writeable else arr.copy()


def _float_to_uint8(arr: np.ndarray) -> np.ndarray:
    """A float image on the 0-1 or the 0-255 scale as uint8 (the rule of :func:`as_rgb_array`)."""
    if arr.size == 0:
        return arr.astype(np.uint8)
    if not np.isfinite(arr).all():
        raise ValueError("float image contains NaN or inf")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0 or hi > 255:
        raise ValueError(
            f"float image values must lie in [0, 1] or [0, 255]; got range [{lo:.3g}, {hi:.3g}]. "
            "Undo any mean/std normalisation first (img * std + mean)."
        )
    scale = 255.0 if hi <= 1 else 1.0
    return np.rint(arr.astype(np.float32) * scale).astype(np.uint8)
