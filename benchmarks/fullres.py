"""The ranker on full-resolution WIDER (issue 10): strengths chosen on wider_train, tested once.

    .venv/bin/python benchmarks/fullres.py select --weights W [--fold 4] [--scale 1]
        [--nms hard vote] [--json OUT]
    .venv/bin/python benchmarks/fullres.py test --weights W --select SELECT.json [--json OUT]
    .venv/bin/python benchmarks/fullres.py cost --weights W [W ...] [--images 10] [--json OUT]
    .venv/bin/python benchmarks/fullres.py rows --weights W --select SELECT.json [--rows ...]
    .venv/bin/python benchmarks/fullres.py curve RUN [RUN ...] --json results/fullres_curves.json
        [--add] [--png docs/img/fullres_curve.png]
    .venv/bin/python benchmarks/fullres.py table JSON [JSON ...]

* ``select``: the weights re-score the wider_train fold they were not trained on (``--fold``);
  per trained detector, the blend strength ``s + a * (r - s)`` and the suppression after it (hard
  NMS or box voting, ``--nms``) with the best AP "all" there; the detectors it never saw get the
  smallest of those strengths, and box voting only if every trained detector chose it.
  ``--scale`` picks the dump the candidates come from (7.5: the training photos resized to
  7680 px wide, for a ranker meant for 8K photos).
* ``test``: the same weights, strengths and suppressions on ``wider_val_fullres`` (official
  Easy / Medium / Hard and AP by face width), on ``wider_val200`` and on the held-out part
  (``hash_fold == 4``) of ``facemask_kaggle`` / ``roboflow_faces_gray`` (AP "all"), for every
  runner cached there.
* ``cost``: RetinaFace-MobileNet-0.25 alone (with hard NMS) and the rerank of its candidates
  (with the suppression the weights choose for RetinaFace, named in the table), timed interleaved
  image by image on wider_val_fullres photos at their size and resized to 640 and 3840 px wide;
  medians, at the process's thread count (run with ``OMP_NUM_THREADS=1``).

* ``rows``: on the select step's fold, at its strengths, AP "all" when only the top N candidates
  by score are refined (a cheaper ranker's trade: its cost grows with N).
* ``curve``: the learning curves the runs logged (AP gain on their held-out wider_train fold, "all"
  and by face width, per detector, at each evaluation), kept as JSON and drawn as a PNG.

Candidates come from the ``crface dump`` cache (``--cache``); ``test`` and ``select`` never fill it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from crface.cache import CandidateCache
from crface.data import FaceDataset, hash_fold, load_dataset
from crface.eval.baselines import postprocess
from crface.eval.sizes import ap_by_size
from crface.eval.wider import evaluate
from crface.refiner import Refiner
from crface.weights import build_model, load_weights, resolve

# benchmarks/ is not a package: results.py is found beside this file, however this one is loaded
# (as a script, or by tools/doc_facts.py for its tables).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import blended, cached_detectors, rescore

TRAIN, TEST = "wider_train", "wider_val_fullres"
OTHER_SETS = ("wider_val200", "facemask_kaggle", "roboflow_faces_gray")
STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)
COST_WIDTHS = (640, None, 3840)  # None: the photo's own size


def scores(scored: dict, dataset: FaceDataset, strength: float, nms: str = "hard") -> dict:
    preds = blended(scored, strength, nms)
    return {"ap": evaluate(preds, dataset).ap, "ap_size": ap_by_size(preds, dataset)}


def trained_detectors(weights: Path) -> list[str]:
    return list(build_model(weights)[1]["detectors"])


def by_nms(grid: dict) -> dict:
    """A detector's select grid as ``{nms: {strength: ...}}``; JSONs written before the NMS
    choice hold ``{strength: ...}``, all with hard NMS."""
    return {"hard": grid} if all(k[0].isdigit() for k in grid) else grid


def choice(chosen: dict, det: str) -> tuple[float, str]:
    """(strength, nms) the select step chose for ``det``, or its defaults for a detector it never
    saw (hard NMS in JSONs written before the NMS choice)."""
    return (
        chosen["per_detector"].get(det, chosen["default"]),
        chosen.get("nms", {}).get(det, chosen.get("nms_default", "hard")),
    )


def best_choice(grid: dict) -> tuple[str, float]:
    """``(nms, strength)`` with the best AP "all" in one detector's ``{nms: {strength: ...}}``
    grid; on a tie hard NMS, then the smaller strength."""
    return max(
        ((m, float(a)) for m, row in grid.items() for a in row),
        key=lambda o: (round(grid[o[0]][str(o[1])]["ap"]["all"], 6), o[0] == "hard", -o[1]),
    )


def select(args: argparse.Namespace) -> dict:
    data = load_dataset(TRAIN)
    trained = trained_detectors(args.weights)
    cache = CandidateCache(args.cache, TRAIN)
    fold = data.subset(lambda s: s.fold == args.fold)
    # A dump of part of the set (e.g. --limit at 7.5x) covers part of the fold: say how much.
    held = fold.subset(lambda s: all(cache.has(d, args.scale, False, s.name) for d in trained))
    if len(held) < len(fold):
        print(
            f"select: {len(held)} of {len(fold)} fold-{args.fold} photos have candidates at "
            f"scale {args.scale:g} for {trained}",
            file=sys.stderr,
        )
    if not len(held):
        sys.exit(
            f"no fold-{args.fold} photo has candidates at scale {args.scale:g}: run crface dump"
        )
    scored = rescore(args.weights, held, cache, trained, args.scale)
    grid = {
        det: {m: {str(a): scores(scored[det], held, a, m) for a in STRENGTHS} for m in args.nms}
        for det in trained
    }
    best = {det: best_choice(grid[det]) for det in trained}
    nms = {det: m for det, (m, _) in best.items()}
    return {
        "weights": str(args.weights),
        "fold": args.fold,
        "scale": args.scale,
        "images": len(held),
        "fold_images": len(fold),
        "grid": grid,
        "per_detector": {det: a for det, (_, a) in best.items()},
        # An unseen detector is pushed no harder than any seen one, and votes only if all do.
        "default": min(a for _, a in best.values()),
        "nms": nms,
        "nms_default": "vote" if set(nms.values()) == {"vote"} else "hard",
    }


def test(args: argparse.Namespace) -> dict:
    chosen = json.loads(Path(args.select).read_text())
    trained = set(trained_detectors(args.weights))
    out = {"weights": str(args.weights), "select": args.select, "sets": {}}
    for name in (TEST, *OTHER_SETS):
        data = load_dataset(name)
        if not data.has_splits:
            data = data.subset(lambda s: hash_fold(s.name) == 4)
        cache = CandidateCache(args.cache, name)
        dets = cached_detectors(cache, data)
        rows = {}
        for det, scored in rescore(args.weights, data, cache, dets).items():
            a, nms = choice(chosen, det)
            rows[det] = {
                "trained_on": det in trained,
                "strength": a,
                "nms": nms,
                "single": scores(scored, data, 0.0),
                "single_vote": scores(scored, data, 0.0, "vote"),
                "rerank": scores(scored, data, a, nms),
                "rerank_1": scores(scored, data, 1.0, nms),
            }
            print(f"test: {name} {det} done", file=sys.stderr)
        out["sets"][name] = {"images": len(data), "detectors": rows}
    return out


def rows(args: argparse.Namespace) -> dict:
    chosen = json.loads(Path(args.select).read_text())
    data, cache = load_dataset(TRAIN), CandidateCache(args.cache, TRAIN)
    fold = data.subset(lambda s: s.fold == chosen["fold"])
    dets = list(chosen["per_detector"])
    ap: dict[str, dict[str, float]] = {d: {} for d in dets}
    for n in args.rows:
        scored = rescore(args.weights, fold, cache, dets, rows=n)
        for det in dets:
            a, nms = choice(chosen, det)
            if "single" not in ap[det]:  # the same for every n
                ap[det]["single"] = evaluate(blended(scored[det], 0.0), fold).ap["all"]
            ap[det][str(n)] = evaluate(blended(scored[det], a, nms), fold).ap["all"]
    return {"weights": str(args.weights), "fold": chosen["fold"], "images": len(fold), "ap": ap}


def rows_table(res: dict) -> str:
    """Markdown: AP "all" per refined-row count, and the share of the full ranker's gain kept."""
    ap = res["ap"]
    counts = [k for k in next(iter(ap.values())) if k != "single"]
    full = max(counts, key=int)
    lines = [
        f"| detector (wider_train fold {res['fold']}, {res['images']} photos) | single | "
        + " | ".join(f"top {n} refined" for n in counts)
        + " |",
        "|---|---|" + "---|" * len(counts),
    ]
    for det, row in ap.items():
        gain = row[full] - row["single"]
        cells = [
            f"{100 * row[n]:.2f} ({(row[n] - row['single']) / gain:.0%} of the gain)"
            if gain > 0
            else f"{100 * row[n]:.2f}"
            for n in counts
        ]
        lines.append(f"| {det} | {100 * row['single']:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def resized(image: np.ndarray, width: int | None) -> np.ndarray:
    if width is None:
        return image
    h, w = image.shape[:2]
    return cv2.resize(image, (width, round(h * width / w)), interpolation=cv2.INTER_LINEAR)


def for_retinaface(weights: Path, **options) -> Refiner:
    """The refiner a RetinaFace user gets (``detector="retinaface"``: its strength and
    suppression), for weights that store a choice for it; others load with their defaults."""
    metadata = load_weights(resolve(weights))[2]  # read once, not a second model build
    known = "retinaface" in (metadata.get("strength") or {}).get("per_detector", {})
    return Refiner.load(weights, detector="retinaface" if known else None, **options)


def cost(args: argparse.Namespace) -> dict:
    from crface.detectors import get_detector

    runner = get_detector("retinaface")
    data = load_dataset(TEST)
    refiners = {}
    for w in args.weights:
        name = f"{w.parent.name}/{w.stem}" if w.suffix else str(w)
        refiners[f"{name} torch"] = for_retinaface(w, device="cpu", threads=0)
        refiners[f"{name} onnxruntime"] = for_retinaface(
            w, backend="onnxruntime", device="cpu", threads=torch.get_num_threads()
        )
    times: dict[str, list[float]] = {}
    for i in range(min(args.images, len(data))):
        for width in COST_WIDTHS:
            image = resized(data.load_image(i), width)
            key = f"{width}px-wide" if width else "native"
            t = time.perf_counter()
            det = runner.detect(image)
            postprocess(det)
            times.setdefault(f"{key} detector", []).append(time.perf_counter() - t)
            for stem, refiner in refiners.items():
                t = time.perf_counter()
                refiner.rerank(image, det, invalid="drop")
                times.setdefault(f"{key} {stem}", []).append(time.perf_counter() - t)
    return {
        "images": min(args.images, len(data)),
        "threads": torch.get_num_threads(),
        "nms": {k.rsplit(" ", 1)[0]: r.nms for k, r in refiners.items()},
        "median_ms": {k: statistics.median(v) * 1e3 for k, v in times.items()},
    }


def curve(args: argparse.Namespace) -> dict:
    """Per run: its config's loss options and, per evaluation, each detector's AP gains (with
    ``--add``, after the runs ``--json`` already holds, whose folders may be gone)."""
    out = json.loads(args.json.read_text()) if args.add and args.json.is_file() else {}
    for run in args.runs:
        cfg = json.loads((run / "config.json").read_text())
        points = []
        for line in (run / "log.jsonl").read_text().splitlines():
            row = json.loads(line)
            if row["type"] != "eval":
                continue
            gains = {
                det: {
                    "all": r["ap"]["all"] - r["baseline_ap"]["all"],
                    **{k: v - r["baseline_ap_size"][k] for k, v in r["ap_size"].items()},
                }
                for det, r in row["per_detector"].items()
            }
            points.append({"iteration": row["iteration"], "gain": gains})
        out[run.name] = {
            "head": cfg["model"].get("head", "crop"),
            "model": {k: v for k, v in cfg["model"].items() if k not in ("preset", "head")},
            "loss_params": cfg["loss_params"],
            "cluster_pairs": cfg.get("cluster_pairs", 0.0),
            "heldout": cfg["heldout"],
            "points": points,
        }
    if args.png:
        plot_curves(out, args.png)
    return out


def plot_curves(curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ("all", "small", "medium", "large")
    titles = ("all faces", "< 16 px", "16-48 px", "> 48 px")
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6), sharex=True)
    for name, c in curves.items():
        its = [p["iteration"] for p in c["points"]]
        for ax, key in zip(axes, keys):
            dets = c["points"][0]["gain"] if c["points"] else {}
            mean = [100 * np.mean([p["gain"][d][key] for d in dets]) for p in c["points"]]
            ax.plot(its, mean, marker="o", ms=3, label=name)
    for ax, title in zip(axes, titles):
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_title(f"AP gain, {title}")
        ax.set_xlabel("iteration")
    axes[0].set_ylabel("AP points (mean over trained detectors)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def curve_table(res: dict) -> str:
    lines = [
        "| run | head (changes) | loss options | iteration | AP gain all (<16 / 16-48 / >48 px), per "
        "detector |",
        "|---|---|---|---|---|",
    ]
    for name, c in res.items():
        opts = json.dumps({**c["loss_params"], "cluster_pairs": c["cluster_pairs"]})
        for p in c["points"]:
            cells = "; ".join(
                f"{det} {100 * g['all']:+.2f} ({100 * g['small']:+.2f} / "
                f"{100 * g['medium']:+.2f} / {100 * g['large']:+.2f})"
                for det, g in p["gain"].items()
            )
            head = ", ".join([c["head"], *(f"{k}={v}" for k, v in c.get("model", {}).items())])
            lines.append(f"| {name} | {head} | `{opts}` | {p['iteration']} | {cells} |")
    return "\n".join(lines)


def fmt(ap: dict) -> str:
    return " / ".join(f"{100 * v:.1f}" for v in ap.values())


def gain(new: dict, old: dict) -> str:
    return " / ".join(f"{100 * (new[k] - old[k]):+.1f}" for k in old)


def test_table(res: dict) -> str:
    """Markdown: per set and detector, single vs rerank (E/M/H or "all") and AP by face width;
    "single, vote" is the detector's candidates box-voted, without the ranker."""
    lines = [
        "| set | detector | trained on | strength, NMS | single | single, vote | rerank | gain "
        "| gain by width (<16 / 16-48 / >48 px) | gain at strength 1 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, block in res["sets"].items():
        for det, r in block["detectors"].items():
            s, n, one = r["single"], r["rerank"], r["rerank_1"]
            vote = fmt(r["single_vote"]["ap"]) if "single_vote" in r else "-"
            lines.append(
                f"| {name} ({block['images']}) | {det} | {'yes' if r['trained_on'] else 'no'} | "
                f"{r['strength']:g}, {r.get('nms', 'hard')} | {fmt(s['ap'])} | {vote} "
                f"| {fmt(n['ap'])} | {gain(n['ap'], s['ap'])} "
                f"| {gain(n['ap_size'], s['ap_size'])} | {gain(one['ap'], s['ap'])} |"
            )
    return "\n".join(lines)


def select_table(res: dict) -> str:
    lines = [
        f"| detector | NMS | AP all (<16 / 16-48 / >48 px) on wider_train fold {res['fold']} "
        f"({res['images']} photos), by strength | chosen |",
        "|---|---|---|---|",
    ]
    for det, grid in res["grid"].items():
        strength, nms = choice(res, det)
        for m, row in by_nms(grid).items():
            cells = "; ".join(
                f"{a}: {100 * g['ap']['all']:.1f} ({fmt(g['ap_size'])})" for a, g in row.items()
            )
            mark = f"{strength:g}" if m == nms else ""
            lines.append(f"| {det} | {m} | {cells} | {mark} |")
    return "\n".join(lines)


def cost_table(res: dict) -> str:
    """Markdown: per photo size and weights, the detector's and the rerank's medians."""
    ms = res["median_ms"]
    sizes = dict.fromkeys(k.split(" ")[0] for k in ms)
    names = dict.fromkeys(k.split(" ")[1] for k in ms if not k.endswith(" detector"))
    lines = [
        f"| photos ({res['images']}) | weights | RetinaFace | rerank, torch | rerank, onnxruntime "
        "| torch / RetinaFace | onnxruntime / RetinaFace |",
        "|---|---|---|---|---|---|---|",
    ]
    for size in sizes:
        d = ms[f"{size} detector"]
        for name in names:
            t, o = ms[f"{size} {name} torch"], ms[f"{size} {name} onnxruntime"]
            nms = res.get("nms", {}).get(name, "hard")  # older JSONs: every rerank hard NMS
            lines.append(
                f"| {size.replace('-', ' ')} | {name} ({nms}) | {d:.0f} ms | {t:.0f} ms | {o:.0f} ms "
                f"| {t / d:.2f}x | {o / d:.2f}x |"
            )
    return "\n".join(lines)


def renderer(res: dict):
    """The table function for a JSON of any subcommand."""
    if "sets" in res:
        return test_table
    if "grid" in res:
        return select_table
    if "ap" in res:
        return rows_table
    return cost_table if "median_ms" in res else curve_table


def table(paths: list[str]) -> str:
    parts = []
    for p in paths:
        res = json.loads(Path(p).read_text())
        parts.append(renderer(res)(res))
    return "\n\n".join(parts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    for name in ("select", "test", "cost", "rows"):
        p = sub.add_parser(name)
        p.add_argument("--weights", type=Path, nargs="+" if name == "cost" else None, required=True)
        p.add_argument("--cache", default="cache")
        p.add_argument("--json", type=Path)
    sub.choices["select"].add_argument("--fold", type=int, default=4)
    sub.choices["select"].add_argument(
        "--scale", type=float, default=1.0, help="dump scale of the candidates"
    )
    sub.choices["select"].add_argument(
        "--nms",
        nargs="+",
        choices=["hard", "vote"],
        default=["hard", "vote"],
        help="suppressions to choose from, per detector, with the strength",
    )
    for name in ("test", "rows"):
        sub.choices[name].add_argument("--select", required=True, help="the select step's JSON")
    sub.choices["rows"].add_argument("--rows", type=int, nargs="+", default=[1000, 600, 400, 250])
    sub.choices["cost"].add_argument("--images", type=int, default=10)
    c = sub.add_parser("curve")
    c.add_argument("runs", type=Path, nargs="+")
    c.add_argument("--json", type=Path)
    c.add_argument("--png", type=Path)
    c.add_argument("--add", action="store_true", help="keep the runs --json holds, add these")
    sub.add_parser("table").add_argument("paths", nargs="+")
    args = ap.parse_args()
    if args.command == "curve" and args.add and args.json is None:
        ap.error("curve --add adds runs to a --json file: pass --json too")
    if args.command == "table":
        print(table(args.paths))
        return 0
    commands = {"select": select, "test": test, "cost": cost, "rows": rows, "curve": curve}
    res = commands[args.command](args)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n")
        print(table([str(args.json)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
