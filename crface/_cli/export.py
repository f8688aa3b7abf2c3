"""``crface export``: write a ranker as an ONNX graph (dynamic batch)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a ranker to ONNX")
    p.add_argument("--weights", default="crface-small", help="registered name or weights file")
    p.add_argument("--out", required=True, help="output .onnx path")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from crface.refiner import Refiner

    refiner = Refiner.load(args.weights, device="cpu")
    path = refiner.export_onnx(args.out)
    print(
        f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB); load it with "
        f"crface.Refiner.load({str(path)!r}, backend='onnxruntime')"
    )
    return 0
