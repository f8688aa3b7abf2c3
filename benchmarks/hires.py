"""High-resolution inputs (issue 11): the paper's 8K table, and the memory of ``rerank`` at 8K.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hires.py table \
        --data cache/hires/wider_val_fullres_8k --rank8k runs/rank8k/final.pt \
        [--runners retinaface yunet_n] [--timed 3] [--methods ...] [--retime] \
        [--json results/hires_table.json]

``table`` (Table 4 of the paper): on an upscaled 8K-class set (``benchmarks/make_hires.py``;
upscaled pixels stand in for a real 8K capture), per runner, AP Easy / Medium / Hard of

* ``native``: the detector on the photo as the source set holds it (long side ~1024), i.e. the
  8K photo downscaled, as users do when a detector cannot take 8K;
* ``single``: the detector at full 8K, NMS 0.4;
* ``multi``: the paper's 8K protocol: long side 7680, 5760, 4096, each mirrored, box voting 0.4;
* ``tiled``: :func:`crface.tile` at full 8K (2048 px tiles), box voting;
* ``rank``: the default ranker (``crface-small``) on the 8K candidates;
* ``rank 8k``: a ranker trained on candidates of 8K-resized training photos (``--rank8k``).

AP comes from the ``crface dump`` caches of the 8K set (scales 1, 0.75, 0.5333 mirrored; run
when missing) and of the source set; ``tiled`` runs live. Time and peak resident memory per photo
are measured live, each method in a fresh process, on the first ``--timed`` photos (medians).
``--methods`` adds those rows to the ``--json`` of an earlier run; ``--retime`` keeps its AP and
measures the times again (e.g. on an idle machine).

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

MULTI = ((1.0, False), (1.0, True), (0.75, False), (0.75, True), (0.5333, False), (0.5333, True))
METHODS = ("native", "single", "multi", "tiled", "rank", "rank 8k")
TILE = 2048

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


TIMER = r"""
import json, resource, statistics, sys, time
import numpy as np, torch
import crface
from crface.data import load_dataset
from crface.detectors import get_detector
from crface.eval.baselines import multiscale_vote, postprocess
root, runner_name, method, weights, n = sys.argv[1:6]
data = load_dataset(root)
runner = get_detector(runner_name)
refiner = crface.Refiner.load(weights, detector=runner_name) if weights != "-" else None
passes = json.loads(sys.argv[6])
def run(image):
    if method == "native":
        return postprocess(runner.detect(image, scale=1024 / max(image.shape[:2])))
    if method == "multi":
        return multiscale_vote([runner.detect(image, scale=s, flip=f) for s, f in passes])
    if method == "tiled":
        return crface.tile(runner.detect, image, tile=int(sys.argv[7]))
    det = runner.detect(image)
    return postprocess(det) if refiner is None else refiner.rerank(image, det, invalid="drop")
times = []
for i in range(min(int(n), len(data))):
    image = data.load_image(i)
    t = time.perf_counter()
    run(image)
    times.append(time.perf_counter() - t)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"ms": statistics.median(times) * 1e3, "peak_mb": peak, "photos": len(times)}))
"""


def _weights(method: str, args: argparse.Namespace) -> str:
    return {"rank": args.rank, "rank 8k": str(args.rank8k)}.get(method, "-")


def timed(args: argparse.Namespace, runner: str, method: str) -> dict:
    """Median time and peak RSS per photo of ``method``, in a fresh process."""
    cmd = [sys.executable, "-c", TIMER, str(args.data), runner, method, _weights(method, args)]
    out = subprocess.run(
        [*cmd, str(args.timed), json.dumps(MULTI), str(TILE)], capture_output=True, text=True
    )
    if out.returncode:
        raise RuntimeError(f"timing {runner} / {method} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def predictions(args, runner: str, method: str, data, native) -> dict:
    """Per photo of the 8K set, ``method``'s detections (``native``: in the source's pixels)."""
    from crface import Refiner, tile
    from crface.cache import CandidateCache
    from crface.detectors import get_detector
    from crface.eval.baselines import baseline_predictions

    if method == "native":
        return baseline_predictions(
            "single", CandidateCache(args.cache, native.name), native, runner
        )
    cache = CandidateCache(args.cache, data.name)
    if method in ("single", "multi"):
        return baseline_predictions(method, cache, data, runner, MULTI)
    if method == "tiled":
        detect = get_detector(runner).detect
        return {s.name: tile(detect, data.load_image(i), tile=TILE) for i, s in enumerate(data)}
    refiner = Refiner.load(_weights(method, args), detector=runner)
    return {
        s.name: refiner.rerank(
            data.load_image(i), cache.load(runner, 1.0, False, s.name), invalid="drop"
        )
        for i, s in enumerate(data)
    }


def table(args: argparse.Namespace) -> dict:
    from crface.cache import CandidateCache
    from crface.data import load_dataset
    from crface.detectors import get_detector
    from crface.dump import dump_dataset
    from crface.eval.wider import evaluate

    data = load_dataset(args.data)
    names = set(data.names)
    native = load_dataset(args.native).subset(lambda s: s.name in names)
    out = {"dataset": data.name, "source": native.name, "images": len(data), "runners": {}}
    if args.json and args.json.exists() and (args.retime or set(args.methods) != set(METHODS)):
        out = json.loads(args.json.read_text())  # add the methods asked for to an earlier run
    for runner in args.runners:
        det = get_detector(runner)
        dump_dataset(det, runner, native, CandidateCache(args.cache, native.name), (1.0,))
        dump_dataset(
            det, runner, data, CandidateCache(args.cache, data.name), (1.0, 0.75, 0.5333), flip=True
        )
        rows = out["runners"].get(runner, {})
        for method in args.methods:
            if method == "rank 8k" and args.rank8k is None:
                continue
            if args.retime and method in rows:
                ap = rows[method]["ap"]  # only the timing is redone
            else:
                preds = predictions(args, runner, method, data, native)
                ap = evaluate(preds, native if method == "native" else data).ap
            rows[method] = {"ap": ap, **(timed(args, runner, method) if args.timed else {})}
            print(runner, method, rows[method], file=sys.stderr, flush=True)
        out["runners"][runner] = {m: rows[m] for m in METHODS if m in rows}
    out["timed"] = args.timed
    return out


def hires_table(res: dict) -> str:
    """Markdown: per runner and method, AP E / M / H, ms and peak RSS per photo."""
    lines = [
        f"| detector | method | AP easy / medium / hard ({res['images']} photos) | ms per photo "
        "| peak RSS |",
        "|---|---|---|---|---|",
    ]
    for runner, rows in res["runners"].items():
        for method, r in rows.items():
            ap = " / ".join(f"{100 * r['ap'][k]:.1f}" for k in ("easy", "medium", "hard"))
            ms = f"{r['ms']:.0f}" if "ms" in r else "-"
            mb = f"{r['peak_mb'] / 1024:.1f} GB" if "peak_mb" in r else "-"
            lines.append(f"| {runner} | {method} | {ap} | {ms} | {mb} |")
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
    t = sub.add_parser("table")
    t.add_argument("--data", type=Path, default=Path("cache/hires/wider_val_fullres_8k"))
    t.add_argument("--native", default="wider_val_fullres", help="the set --data was made from")
    t.add_argument("--cache", default="cache")
    t.add_argument("--runners", nargs="+", default=["retinaface", "yunet_n"])
    t.add_argument("--rank", default="crface-small")
    t.add_argument("--rank8k", type=Path, help="weights trained on 8K-resized photos")
    t.add_argument("--timed", type=int, default=3, help="photos timed per method (0: none)")
    t.add_argument(
        "--methods",
        nargs="+",
        choices=METHODS,
        default=list(METHODS),
        help="a subset is added to the rows already in --json",
    )
    t.add_argument("--retime", action="store_true", help="keep --json's AP, time again")
    t.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.command == "memory":
        res, text = (rows := memory(args)), memory_table(rows)
    else:
        res = table(args)
        text = hires_table(res)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
