"""High-resolution inputs (issue 11): memory and time of ``rerank`` on an 8K photo.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hires.py memory [--weights NAME_OR_PATH ...]
        [--width 7680 --height 4320 --candidates 5000] [--json results/hires_memory.json]

``memory``: each weights file in a fresh process: peak resident memory (``ru_maxrss``) after
importing torch and crface, after loading the weights, and after one ``Refiner.rerank`` of a
random ``width x height`` photo with ``candidates`` random face-sized boxes; the rerank's time.
The photo is a stand-in: memory and time do not depend on what the pixels show.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

PROBE = r"""
import json, resource, sys, time
def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
import numpy as np, torch
import crface
imported = peak_mb()
weights, w, h, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
refiner = crface.Refiner.load(weights, device="cpu")
loaded = peak_mb()
rng = np.random.default_rng(0)
image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
side = rng.uniform(8, 400, n)
xy = rng.uniform(0, 1, (n, 2)) * (np.array([w, h]) - side[:, None])
boxes = np.concatenate([xy, xy + side[:, None]], axis=1).astype(np.float32)
scores = rng.uniform(0.02, 1, n).astype(np.float32)
photo = peak_mb()
t = time.perf_counter()
refiner.rerank(image, boxes, scores)
seconds = time.perf_counter() - t
print(json.dumps({"weights": weights, "threads": torch.get_num_threads(),
    "peak_mb_after_import": imported, "peak_mb_after_load": loaded,
    "peak_mb_with_photo": photo, "peak_mb_after_rerank": peak_mb(), "rerank_s": seconds}))
"""


def memory(args: argparse.Namespace) -> list[dict]:
    rows = []
    for weights in args.weights:
        cmd = [sys.executable, "-c", PROBE, weights, str(args.width), str(args.height)]
        out = subprocess.run([*cmd, str(args.candidates)], capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(f"the probe failed for {weights}:\n{out.stderr}")
        row = json.loads(out.stdout.strip().splitlines()[-1])
        row.update(width=args.width, height=args.height, candidates=args.candidates)
        rows.append(row)
        print(memory_table([row]).splitlines()[-1], file=sys.stderr)
    return rows


def memory_table(rows: list[dict]) -> str:
    lines = [
        "| weights | photo | candidates | torch + crface imported | + weights | + photo "
        "| peak after rerank | rerank time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['weights']} | {r['width']} x {r['height']} | {r['candidates']} | "
            f"{r['peak_mb_after_import']:.0f} MB | {r['peak_mb_after_load']:.0f} MB | "
            f"{r['peak_mb_with_photo']:.0f} MB | {r['peak_mb_after_rerank']:.0f} MB | "
            f"{r['rerank_s']:.2f} s ({r['threads']} thread(s)) |"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    m = sub.add_parser("memory")
    m.add_argument("--weights", nargs="+", default=["crface-small", "crface-boxes"])
    m.add_argument("--width", type=int, default=7680)
    m.add_argument("--height", type=int, default=4320)
    m.add_argument("--candidates", type=int, default=5000)
    m.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows = memory(args)
    text = memory_table(rows)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
