"""Copy ranker weights with inference-time config fields changed (maintainers).

    .venv/bin/python tools/with_config.py runs/crop_floor_fold4/final.pt crop_sampling=1 \
        --out runs/crop_floor_fold4/final_s1.pt

Only fields that leave every parameter's shape alone can change (``crop_sampling``,
``crop_context``, ``image_size``, ...): the trained tensors are kept as they are and must fit the
new config. The copy's metadata records the source file's sha256 and what changed (``derived``),
so a setting chosen this way (e.g. on a held-out fold with ``benchmarks/fullres.py select``)
stays traceable to the run that trained the tensors.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from crface.model import ConfidenceRanker
from crface.weights import build_model, resolve, save_weights, sha256_of


def parse_change(text: str) -> tuple[str, Any]:
    """``"crop_sampling=1"`` -> ``("crop_sampling", 1)`` (the value read as JSON, else text)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE; got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def with_config(source: str | Path, out: str | Path, changes: dict[str, Any]) -> Path:
    """Write ``source``'s tensors under its config with ``changes`` applied to ``out``.

    Raises:
        ValueError: an unknown field, or one whose new value changes a parameter's shape.
    """
    model, meta = build_model(source)
    fields = {f.name for f in dataclasses.fields(model.config)}
    unknown = sorted(set(changes) - fields)
    if unknown:
        raise ValueError(f"unknown RankerConfig fields {unknown}; fields: {sorted(fields)}")
    derived = ConfidenceRanker(dataclasses.replace(model.config, **changes))
    try:
        derived.load_state_dict(model.state_dict(), strict=True)
    except RuntimeError as exc:
        raise ValueError(
            f"{changes} changes the shape of trained parameters; only inference-time fields "
            f"can change: {exc}"
        ) from exc
    origin = {"from": sha256_of(resolve(source)), "set": changes}
    return save_weights(out, derived.eval(), {**meta, "derived": origin})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", help="weights file or registered name")
    ap.add_argument("changes", nargs="+", type=parse_change, metavar="KEY=VALUE")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    path = with_config(args.source, args.out, dict(args.changes))
    print(f"wrote {path} ({dict(args.changes)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
