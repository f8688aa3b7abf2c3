"""Arguments shared by sub-commands that run a ranker, and the translation of Python keyword
hints in messages into the flags of the command line."""

from __future__ import annotations

import argparse
import re

from crface.refiner import NMS_METHODS

# Python keyword -> the flag that sets it, for keywords whose flag is not simply --kebab-case.
_FLAG_OF = {"detector": "--for-detector"}
_KEYWORDS = (
    "invalid",
    "box_format",
    "strength",
    "detector",
    "backend",
    "device",
    "nms_iou",
    "nms",
    "score_threshold",
    "max_det",
    "iou_threshold",
)
_KEYWORD_HINT = re.compile(
    rf"(?<![\w.])({'|'.join(_KEYWORDS)})=(?:'([^']*)'|\"([^\"]*)\"|([-+]?[\d.]+))?"
)


def to_flags(message: str) -> str:
    """Rewrite the Python keyword hints of a library message as command-line flags.

    Example:
        >>> to_flags("pass box_format='xywh'; invalid='drop' ignores them; pass strength= too")
        'pass --box-format xywh; --invalid drop ignores them; pass --strength too'
    """

    def flag(m: re.Match) -> str:
        name = _FLAG_OF.get(m[1], "--" + m[1].replace("_", "-"))
        value = next((v for v in m.groups()[1:] if v is not None), None)
        return name if value is None else f"{name} {value}"

    return _KEYWORD_HINT.sub(flag, message)


def add_refiner_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--weights", default="crface-small", help="registered name, weights file or .onnx"
    )
    p.add_argument("--backend", default="torch", choices=["torch", "onnxruntime"])
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument(
        "--for-detector",
        metavar="NAME",
        help="use the blend strength and suppression the weights store for this detector (e.g. "
        "retinaface; with --detector, that runner)",
    )
    p.add_argument(
        "--strength", type=float, help="blend strength s + a * (r - s) (overrides --for-detector)"
    )
    p.add_argument(
        "--nms",
        choices=["auto", *(m or "none" for m in NMS_METHODS)],
        help="suppression (default: auto, the weights' choice for --for-detector, else hard; "
        "vote with --zoom)",
    )
    p.add_argument("--nms-iou", type=float, default=0.4)
    p.add_argument("--score-threshold", type=float, default=0.02)
    p.add_argument("--max-det", type=int, default=750)


def load_refiner(args: argparse.Namespace):
    from crface.refiner import Refiner

    return Refiner.load(
        args.weights,
        device=args.device,
        backend=args.backend,
        strength=args.strength,
        detector=args.for_detector,  # an explicit --strength wins (Refiner.load)
    )


def rerank_kwargs(args: argparse.Namespace) -> dict:
    return {
        # Candidates of two scales (--zoom) want voting; one scale, what the weights chose for
        # --for-detector (hard NMS, the paper's, when they chose nothing).
        "nms": None
        if args.nms == "none"
        else args.nms or ("vote" if getattr(args, "zoom", None) else "auto"),
        "nms_iou": args.nms_iou,
        "score_threshold": args.score_threshold,
        "max_det": args.max_det,
    }
