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
    "an HxWx3 (or HxW / HxWx4) uint8 numpy array, a PIL image, a CxHxW torch tensor "
    "(uint8, or float in [0, 1]), or a path to an image file"
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

    Accepts an ``HxWx3`` / ``HxW`` / ``HxWx4`` uint8 numpy array (RGB order), a PIL image of any
    mode, a ``CxHxW`` torch tensor (C in 1, 3, 4; uint8 or float in [0, 1]) or a file path.

    Raises:
        TypeError: for an object that is none of those.
        ValueError: for a wrong shape, dtype, empty image or non-finite values.

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
        if t.is_floating_point():
            if not torch.isfinite(t).all():
                raise ValueError("image tensor contains NaN or inf")
            if t.min() < 0 or t.max() > 1:
                raise ValueError(
                    f"float image tensor must be in [0, 1]; got range [{t.min():.3g}, {t.max():.3g}]"
                )
            t = (t * 255).round().to(torch.uint8)
        elif t.dtype != torch.uint8:
            raise ValueError(f"image tensor must be uint8 or float; got {t.dtype}")
        arr = t.permute(1, 2, 0).numpy()
    elif isinstance(image, np.ndarray):
        arr = image
    else:
        raise TypeError(f"image must be {_ACCEPTED}; got {type(image).__name__}")

    if arr.dtype != np.uint8:
        raise ValueError(
            f"image array must be uint8 (HxWx3 RGB); got dtype {arr.dtype}. "
            "Convert floats with (img * 255).round().astype(np.uint8)."
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
