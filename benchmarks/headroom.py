"""The headroom report: how far each real detector is from its own oracle, and what multi-scale buys.

    .venv/bin/python benchmarks/headroom.py [--detectors retinaface yunet_n ...] [--cache cache]
        [--scales 0.5 1.0 1.5 2.0] [--no-flip] [--other-limit 100] [--json out.json] [--markdown out.md]

For every detector runner: AP (WIDER protocol) of single-scale + NMS 0.4, multi-scale + flip + box
voting, single-scale + Soft-NMS, and the oracle confidence + NMS, on ``wider_val200`` (Easy /
Medium / Hard) and AP "all" on the held-out part (``hash_fold == 4``) of each set without splits,
limited to its first ``--other-limit`` images. Candidates come from the ``crface dump`` cache, which
this script fills as needed (resumable). Timing: single-scale (detect + NMS) versus multi-scale
(every pass + voting), measured interleaved image by image on ``--timing-images`` wider images;
medians and their ratio.

    .venv/bin/python benchmarks/headroom.py --partial [--set wider_val_fullres] [--detectors ...]
        [--json results/headroom_fullres.json] [--markdown out.md]

Where the headroom lies, at native resolution: single-scale NMS, box voting, the oracle and the
partial oracles of :mod:`crface.eval.baselines` (false positives zeroed; true faces lifted; each NMS
cluster carried by its best-localised member), all on the candidates the detector scores >= 0.02,
AP Easy / Medium / Hard from the single-scale cache.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from crface.cache import CandidateCache
from crface.data import FaceDataset, hash_fold, load_dataset
from crface.detectors import RUNNERS, get_detector
from crface.dump import dump_dataset
from crface.eval.baselines import (
    METHODS,
    SINGLE_SCALE,
    baseline_predictions,
    multiscale_vote,
    postprocess,
)
from crface.eval.wider import evaluate
from crface.paths import shared_path

OTHER_SETS = ("facemask_kaggle", "roboflow_faces_gray")  # facemask_ilc2021 left shared/ (Dec 2026)
# retinaface_torch loads the .pth checkpoint: a different training run than the ONNX file.
DEFAULT_DETECTORS = [*(d for d in RUNNERS if d != "retinaface_torch"), "retinaface_torch"]


def time_side_by_side(runner, dataset: FaceDataset, variants, n: int) -> tuple[float, float]:
    """Median ms per image of single-scale and of multi-scale, interleaved image by image."""
    single, multi = [], []
    for i in range(min(n, len(dataset))):
        image = dataset.load_image(i)
        t = time.perf_counter()
        postprocess(runner.detect(image), "hard")
        single.append(time.perf_counter() - t)
        t = time.perf_counter()
        multiscale_vote([runner.detect(image, scale=s, flip=f) for s, f in variants])
        multi.append(time.perf_counter() - t)
    return statistics.median(single) * 1e3, statistics.median(multi) * 1e3


def ap_row(cache: CandidateCache, dataset: FaceDataset, detector: str, variants) -> dict:
    row = {}
    for method in METHODS:
        preds = baseline_predictions(method, cache, dataset, detector, variants)
        row[method] = evaluate(preds, dataset).ap
    return row


def partial_report(args: argparse.Namespace) -> int:
    """``--partial``: every single-scale method of each detector on ``--set``, resumable per row."""
    dataset = load_dataset(shared_path("data", args.set))
    cache = CandidateCache(args.cache, args.set)
    path = Path(args.json) if args.json else None
    results = json.loads(path.read_text()) if path and path.is_file() else []
    done = {r["detector"] for r in results}
    for det_name in args.detectors:
        if det_name in done:
            continue
        dump_dataset(get_detector(det_name), det_name, dataset, cache, [1.0], False)
        row = {"detector": det_name, "set": args.set, "images": len(dataset)}
        for method in SINGLE_SCALE:
            row[method] = evaluate(
                baseline_predictions(method, cache, dataset, det_name), dataset
            ).ap
        results.append(row)
        print(
            f"{det_name:<18} " + " | ".join(f"{m} {fmt(row[m])}" for m in SINGLE_SCALE),
            file=sys.stderr,
        )
        if path:
            path.write_text(json.dumps(results, indent=2))
    table = partial_table(results)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    return 0


PARTIAL_NAMES = {
    "single": "single, NMS 0.4",
    "vote": "box voting 0.4",
    "soft": "Soft-NMS",
    "oracle_fp": "(a) false positives zeroed",
    "oracle_tp": "(b) true faces lifted",
    "oracle_member": "(c) best member carries each cluster",
    "oracle_kept": "oracle",
}


def partial_table(results: list[dict]) -> str:
    """Markdown: one row per detector, one column per single-scale method, AP E / M / H in %."""
    methods = list(PARTIAL_NAMES)
    lines = [
        "| detector | images | " + " | ".join(PARTIAL_NAMES[m] for m in methods) + " |",
        "|---|---|" + "---|" * len(methods),
    ]
    for r in results:
        cells = " | ".join(fmt(r[m]) for m in methods)
        lines.append(f"| {r['detector']} | {r['images']} | {cells} |")
    return "\n".join(lines)


def fmt(ap: dict) -> str:
    return " / ".join(f"{100 * v:4.1f}" for v in ap.values())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--detectors", nargs="+", default=DEFAULT_DETECTORS)
    ap.add_argument("--cache", default="cache")
    ap.add_argument(
        "--scales",
        type=float,
        nargs="+",
        default=[0.5, 1.0, 1.5, 2.0],
        help="multi-scale factors on wider_val200 (416 px images)",
    )
    ap.add_argument(
        "--other-scales",
        type=float,
        nargs="+",
        default=[0.5, 1.0, 1.5],
        help="multi-scale factors on the other sets (images up to 800 px)",
    )
    ap.add_argument("--no-flip", action="store_true")
    ap.add_argument("--other-limit", type=int, default=50)
    ap.add_argument("--other-sets", nargs="*", default=list(OTHER_SETS))
    ap.add_argument("--timing-images", type=int, default=10)
    ap.add_argument(
        "--json",
        help="write all numbers here (after each detector; detectors already "
        "in the file are not recomputed, so an interrupted run resumes)",
    )
    ap.add_argument(
        "--render",
        nargs="+",
        metavar="JSON",
        help="only print the table of these result files (e.g. from several runs)",
    )
    ap.add_argument("--markdown", help="write the table here")
    ap.add_argument("--partial", action="store_true", help="the partial-oracle report (see above)")
    ap.add_argument("--set", default="wider_val_fullres", help="the --partial report's set")
    args = ap.parse_args()
    if args.partial:
        return partial_report(args)

    flips = (False,) if args.no_flip else (False, True)
    sets = {"wider_val200": (load_dataset(shared_path("data", "wider_val200")), args.scales)}
    for name in args.other_sets:
        full = load_dataset(shared_path("data", name))
        held = full.subset(lambda s: hash_fold(s.name) == 4)
        sets[name] = (held[: args.other_limit], args.other_scales)

    if args.render:
        results = [r for f in args.render for r in json.loads(Path(f).read_text())]
        return render(results, args)
    results = (
        json.loads(Path(args.json).read_text()) if args.json and Path(args.json).is_file() else []
    )
    done = {r["detector"] for r in results}
    for det_name in args.detectors:
        if det_name in done:
            continue
        runner = get_detector(det_name)
        for set_name, (dataset, set_scales) in sets.items():
            scales = sorted(set(set_scales) | {1.0})  # single-scale is every baseline's base pass
            variants = [(s, f) for s in scales for f in flips]
            cache = CandidateCache(args.cache, set_name)
            dump_dataset(runner, det_name, dataset, cache, scales, not args.no_flip)
            row = {
                "detector": det_name,
                "set": set_name,
                "images": len(dataset),
                "scales": scales,
                **ap_row(cache, dataset, det_name, variants),
            }
            if set_name == "wider_val200":
                ms_single, ms_multi = time_side_by_side(
                    runner, dataset, variants, args.timing_images
                )
                row.update(ms_single=ms_single, ms_multi=ms_multi)
            results.append(row)
            print(
                f"{det_name:<18} {set_name:<20} single {fmt(row['single'])} | "
                f"multi {fmt(row['multi'])} | soft {fmt(row['soft'])} | oracle {fmt(row['oracle'])}",
                file=sys.stderr,
            )
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
    return render(results, args)


def render(results: list[dict], args: argparse.Namespace) -> int:
    """Print (and with ``--markdown`` write) the table of ``results``."""
    lines = [
        "Multi-scale: each pass and its mirror at the listed scales, box voting IoU 0.4 "
        "(clusters of >= 2). AP in %: wider_val200 as Easy / Medium / Hard, the other sets as "
        "AP 'all' on their first held-out images (hash_fold == 4). Times: median ms per image, "
        "single vs multi measured interleaved on the same wider_val200 images.",
        "",
        "| detector | set | images | scales | single | multi+flip+vote | soft-NMS | oracle "
        "| headroom (oracle - single) | ms single | ms multi | multi / single |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        gap = {k: r["oracle"][k] - r["single"][k] for k in r["single"]}
        timing = (
            f"{r['ms_single']:.0f} | {r['ms_multi']:.0f} | {r['ms_multi'] / r['ms_single']:.1f}x"
            if "ms_single" in r
            else "- | - | -"
        )
        scales = ", ".join(f"{s:g}" for s in r.get("scales", []))
        lines.append(
            f"| {r['detector']} | {r['set']} | {r['images']} | {scales} | {fmt(r['single'])} | "
            f"{fmt(r['multi'])} | {fmt(r['soft'])} | {fmt(r['oracle'])} | {fmt(gap)} | {timing} |"
        )
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
