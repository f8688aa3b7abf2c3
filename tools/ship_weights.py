"""Package a trained run as registered weights (``crface-small`` by default; maintainers).

    .venv/bin/python tools/ship_weights.py --run runs/final_small --results results/results.json \
        --description "..."
    .venv/bin/python tools/ship_weights.py --run runs/crop --select results/fullres_select.json \
        [--weights best.pt] --description "..."

With ``--select`` (``benchmarks/fullres.py select``), the strengths, and the suppression after
the rerank (hard NMS or box voting, ``Refiner.nms``), are those chosen on the wider_train fold the
run held out, stored with that fold's AP grid (``selection``).

Reads ``RUN/final.pt`` and ``RUN/config.json`` (or, where that is missing, the training config
the weights' metadata carries, as in a ``tools/with_config.py`` copy), stores the weights in
float16 with metadata: the training config, the cross-validated AP per detector from
``benchmarks/results.py``'s JSON, and the blend strength per detector chosen there
(``Refiner.load(..., detector=NAME)`` applies it; detectors never trained on get the default, the
smallest strength chosen for a trained detector, so an unseen detector is never pushed harder than
any measured one). Then records the file and its sha256 in ``crface/assets/registry.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from crface.detectors import RUNNERS
from crface.weights import build_model, register_weights, save_weights


def strength_table(cv: dict) -> dict:
    per_det = {det: row["best_strength"] for det, row in cv.items()}
    trained = [row["best_strength"] for row in cv.values() if row["trained_on"]]
    return {"default": min(trained) if trained else 0.0, "per_detector": per_det}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, required=True, help="training run folder")
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--results", type=Path, help="benchmarks/results.py --json")
    source.add_argument("--select", type=Path, help="benchmarks/fullres.py select --json")
    ap.add_argument("--weights", default="final.pt", help="the run's weights file to ship")
    ap.add_argument("--name", default="crface-small")
    ap.add_argument(
        "--description", required=True, help="registry description (state the measured gains)"
    )
    args = ap.parse_args()
    model, meta = build_model(args.run / args.weights)
    # A copy made by tools/with_config.py may sit in a folder of its own: it carries the config.
    run_config = args.run / "config.json"
    training_config = (
        json.loads(run_config.read_text()) if run_config.is_file() else meta["training_config"]
    )
    metadata = {**meta, "trained": True, "training_config": training_config}
    if args.select:
        sel = json.loads(args.select.read_text())
        # Runners it never trained on get the default (the smallest chosen), stated per name so
        # that Refiner.load(..., detector=NAME) knows every runner.
        per_det = {name: sel["per_detector"].get(name, sel["default"]) for name in RUNNERS}
        metadata["strength"] = {"default": sel["default"], "per_detector": per_det}
        if "nms" in sel:  # the suppression chosen with each strength (Refiner.nms)
            nms_default = sel["nms_default"]
            nms = {name: sel["nms"].get(name, nms_default) for name in RUNNERS}
            metadata["nms"] = {"default": nms_default, "per_detector": nms}
        metadata["selection"] = {k: sel[k] for k in ("fold", "images", "grid")}
    else:
        cv = json.loads(args.results.read_text())["cv"]
        metadata["strength"] = strength_table(cv)
        metadata["cv_ap"] = {
            det: {
                "single": row["ap"]["0.0"],
                "rerank": row["ap"]["1.0"],
                "trained_on": row["trained_on"],
            }
            for det, row in cv.items()
        }
    if training_config.get("init_backbone"):
        frozen = "frozen" if training_config.get("freeze_backbone") else "fine-tuned"
        metadata["backbone_init"] = (
            f"RetinaFace-MobileNet-0.25 body (Pytorch_Retinaface, MIT), {frozen}"
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = save_weights(Path(tmp) / f"{args.name}.pt", model, metadata, half=True)
        entry = register_weights(args.name, path, args.description)
    print(f"registered {entry.name}: {entry.size / 1e6:.2f} MB, sha256 {entry.sha256}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
