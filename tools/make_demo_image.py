"""Build the bundled demo image ``crface/assets/demo.jpg`` from scikit-image's ``astronaut``.

    python tools/make_demo_image.py path/to/astronaut.png

The source photo (Eileen Collins, NASA) is in the public domain; it ships inside the scikit-image
wheel as ``skimage/data/astronaut.png``. Copies at several scales, mirrored and with varied
brightness, are pasted on a plain canvas so the demo has faces from large to tiny.
"""

from __future__ import annotations

import sys

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

src = Image.open(sys.argv[1]).convert("RGB")
canvas = np.full((640, 960, 3), 0, np.uint8)
yy, xx = np.mgrid[0:640, 0:960]
canvas[..., 0] = 90 + 40 * xx / 960
canvas[..., 1] = 100 + 30 * yy / 640
canvas[..., 2] = 120
out = Image.fromarray(canvas)
# (scale, x, y, mirrored, brightness)
layout = [
    (0.95, 10, 120, False, 1.0),
    (0.45, 520, 20, True, 0.8),
    (0.30, 760, 60, False, 1.2),
    (0.22, 520, 300, False, 0.6),
    (0.16, 660, 330, True, 1.0),
    (0.11, 780, 360, False, 0.9),
    (0.08, 860, 380, True, 1.1),
    (0.30, 600, 440, True, 1.0),
]
for scale, x, y, mirrored, bright in layout:
    size = round(512 * scale)
    tile = src.resize((size, size), Image.LANCZOS)
    if mirrored:
        tile = ImageOps.mirror(tile)
    tile = ImageEnhance.Brightness(tile).enhance(bright)
    out.paste(tile, (x, y))
out.save("crface/assets/demo.jpg", quality=88)
print(out.size)
