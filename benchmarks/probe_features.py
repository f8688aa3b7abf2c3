"""Which per-candidate features can re-rank a detector's candidates? A fast probe (issue 4).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/probe_features.py --features none zoom full
        [--detectors retinaface yunet_n scrfd_500m centerface] [--iterations 300] [--json OUT]

The ranker's backbone is frozen (RetinaFace-MobileNet-0.25's face-trained body), so whatever the
image can add to a candidate is a fixed feature vector. This script computes those vectors once
per candidate (cached under ``--feature-dir``) and fits only a small residual MLP on top, with the
shipped training objective: batch-scope neighbour pairs of the paper's ranking loss (n = 10,
scale 10) plus the residual penalty, the residual added to the detector's logit. Each
wider_val200 fold is scored by a probe fitted on the other four; AP is pooled over the folds and
uses the same post-processing as ``benchmarks/results.py``. Feature sets:

* ``none``: the box only: logit score, rank position, log width and height (pixels).
* ``full``: the box plus RoIAlign of the body's stride-8 and stride-16 maps of the whole 416-px
  image, over the box with 2x context (what the shipped RoI head sees, minus the pyramid).
* ``ctx``: the box plus what the overlapping candidates say (counts at IoU 0.5 / 0.3, their
  summed score, the largest IoU with a higher-scored box and its logit margin): no image.
* ``zoom``: the box plus the same body run on each candidate's 2x-context crop resized to
  32 x 32, so that a 5-px face is seen at the scale the detector body was trained on.

``--small-weight W`` multiplies the loss weight of candidates under ``--small-px`` (square root
of the area): a Hard-targeted objective, to see whether re-scoring can lift Hard at all.
``--pca K`` projects the image features on their top K principal components (fitted on the
training folds) to limit over-fitting. It is a probe, not the product: it has no BPN and no
pyramid, and the image features cannot adapt.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import box_iou, roi_align
from tqdm.auto import tqdm

from crface.backbones import MobileNetV1, load_retinaface_body
from crface.cache import CandidateCache
from crface.data import FaceDataset, load_dataset
from crface.eval.baselines import postprocess
from crface.eval.wider import evaluate
from crface.paths import shared_path
from crface.train.losses import pairwise_ranking_loss
from crface.types import Detections

FEATURES = ("none", "full", "zoom", "ctx")
ZOOM = 32  # crop side fed to the body: a face filling half of it is ~16 px, RetinaFace's scale
TOP = 1000  # candidates per image, as the shipped ranker's N
FIELDS = ("boxes", "scores", "zoom", "full", "iou")
RETINAFACE_MEAN = torch.tensor([104.0, 117.0, 123.0]).view(1, 3, 1, 1)  # BGR


def context_rois(boxes: torch.Tensor) -> torch.Tensor:
    """``Tensor[K, 5]`` RoIs (batch index 0): a square of twice the box's long side, same centre."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]).amax(dim=1, keepdim=True).clamp_min(2.0)
    return torch.cat([torch.zeros(len(boxes), 1), centre - half, centre + half], dim=1)


@torch.no_grad()
def extract_one(
    body: MobileNetV1, dataset: FaceDataset, cache: CandidateCache, detector: str, i: int
) -> dict[str, np.ndarray]:
    """Image ``i``'s top-TOP candidates (by score) with their image features and oracle IoU."""
    sample = dataset[i]
    det = cache.load(detector, 1.0, False, sample.name)
    order = torch.argsort(det.scores, descending=True, stable=True)[:TOP]
    boxes, scores = det.boxes[order], det.scores[order]
    ok = (boxes[:, 2:] > boxes[:, :2]).all(dim=1)
    boxes, scores = boxes[ok], scores[ok]
    image = torch.as_tensor(dataset.load_image(i)).permute(2, 0, 1).float()[None]
    x = image.flip(1) - RETINAFACE_MEAN
    rois = context_rois(boxes)
    crops = roi_align(x, rois, ZOOM, 1.0, sampling_ratio=2, aligned=True)
    z3 = body.stage1(crops)
    zoom = torch.cat([F.adaptive_avg_pool2d(z3, 2).flatten(1), body.stage2(z3).mean((2, 3))], 1)
    f3, f4, _ = body(x)
    full = torch.cat(
        [
            roi_align(f3, rois, 2, 1 / 8, sampling_ratio=2, aligned=True).flatten(1),
            roi_align(f4, rois, 1, 1 / 16, sampling_ratio=2, aligned=True).flatten(1),
        ],
        dim=1,
    )
    gt = sample.boxes
    iou = box_iou(boxes, gt).amax(dim=1) if len(gt) else torch.zeros(len(boxes))
    return {
        "boxes": boxes.numpy(),
        "scores": scores.numpy(),
        "zoom": zoom.half().numpy(),
        "full": full.half().numpy(),
        "iou": iou.numpy(),
    }


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


def rows(item: dict[str, np.ndarray], features: str) -> np.ndarray:
    """``[K, F]`` float32 probe inputs of one image's candidates; the first 4 are the box's."""
    b = item["boxes"]
    size = np.log(np.clip(b[:, 2:] - b[:, :2], 1, None)) / 3
    rank = np.arange(len(b))[:, None] / TOP
    parts = [logit(item["scores"])[:, None] / 5, rank, size]
    if features == "ctx":
        parts.append(context(b, item["scores"]))
    elif features != "none":
        parts.append(item[features].astype(np.float32))
    return np.concatenate(parts, axis=1).astype(np.float32)


def context(boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """``[K, 5]`` what the other candidates say about each one (rows sorted by score, descending):
    how many overlap it (IoU >= 0.5, >= 0.3) and their summed score, its largest IoU with a
    higher-scored box (how hard NMS hits it) and that box's logit margin over it."""
    iou = box_iou(torch.from_numpy(boxes), torch.from_numpy(boxes)).numpy()
    np.fill_diagonal(iou, 0.0)
    higher = np.tril(iou, k=-1)  # row i, columns j < i: the boxes scored above i
    near = iou >= 0.5
    best = higher.argmax(axis=1)
    margin = np.where(higher.max(axis=1) > 0, logit(scores[best]) - logit(scores), 0.0)
    return np.stack(
        [
            np.log1p(near.sum(axis=1)) / 3,
            np.log1p((iou >= 0.3).sum(axis=1)) / 3,
            np.log1p(near @ scores),
            higher.max(axis=1),
            margin / 5,
        ],
        axis=1,
    ).astype(np.float32)


class Probe(nn.Module):
    """Standardise, optionally project the image part on its top principal components, MLP."""

    def __init__(self, x: torch.Tensor, pca: int) -> None:
        super().__init__()
        self.register_buffer("mu", x.mean(0))
        self.register_buffer("sd", x.std(0) + 1e-3)
        proj = torch.eye(x.shape[1])
        if pca and x.shape[1] > 4 + pca:
            _, _, v = torch.pca_lowrank(((x - self.mu) / self.sd)[:, 4:], q=pca, center=False)
            proj = torch.block_diag(torch.eye(4), v)
        self.register_buffer("proj", proj)
        self.mlp = nn.Sequential(nn.Linear(proj.shape[1], 64), nn.LeakyReLU(0.1), nn.Linear(64, 1))
        nn.init.zeros_(self.mlp[-1].weight)  # starts as the identity re-scorer
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(((x - self.mu) / self.sd) @ self.proj).squeeze(-1)


def fit(images: list[tuple[np.ndarray, np.ndarray, np.ndarray]], args: argparse.Namespace) -> Probe:
    """Train on ``(features, logit score, oracle IoU)`` per image; batches of 8 images."""
    x = torch.from_numpy(np.concatenate([i[0] for i in images]))
    probe = Probe(x, args.pca)
    opt = torch.optim.Adam(probe.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, 1e-2 ** (1 / args.iterations))
    rng = np.random.default_rng(0)
    for _ in range(args.iterations):
        pick = [images[j] for j in rng.choice(len(images), 8, replace=False)]
        feats = torch.from_numpy(np.concatenate([p[0] for p in pick]))
        base = torch.from_numpy(np.concatenate([p[1] for p in pick]))
        oracle = torch.from_numpy(np.concatenate([p[2] for p in pick]))
        order = torch.argsort(base, descending=True)  # batch-scope pairs: one confidence order
        feats, base, oracle = feats[order], base[order], oracle[order]
        refined = torch.sigmoid(base + probe(feats))
        valid = torch.ones(1, len(base), dtype=torch.bool)
        # feats[:, 2:4] are log(width, height) / 3: rows whose sqrt(area) is under small_px
        small = feats[:, 2:4].sum(dim=1) * 1.5 < np.log(args.small_px)
        weights = 1.0 + (args.small_weight - 1.0) * small.float()
        loss = pairwise_ranking_loss(
            refined[None],
            oracle[None],
            valid,
            weights[None],
            num_pairs=10,
            scale=10.0,
            pair_weight="product",
        )
        loss = loss + args.penalty * ((refined - torch.sigmoid(base)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return probe.eval()


def cross_validate(
    feats: dict[str, dict[str, dict[str, np.ndarray]]],
    dataset: FaceDataset,
    features: str,
    args: argparse.Namespace,
) -> dict[str, dict[str, dict[str, float]]]:
    """detector -> {"single", "probe"} -> setting -> AP, every fold scored by the other four."""
    folds = sorted({s.fold for s in dataset})
    preds: dict[str, dict[str, dict[str, Detections]]] = {
        d: {"single": {}, "probe": {}} for d in feats
    }
    # (probe inputs, logit score, oracle IoU) per detector and image, computed once for all folds
    inputs = {
        det: {
            s.name: (rows(f[s.name], features), logit(f[s.name]["scores"]), f[s.name]["iou"])
            for s in dataset
        }
        for det, f in feats.items()
    }
    for k in folds:
        train_images = [
            by_name[s.name] for by_name in inputs.values() for s in dataset if s.fold != k
        ]
        torch.manual_seed(k)
        probe = fit(train_images, args)
        with torch.no_grad():
            for det, f in feats.items():
                for s in dataset:
                    if s.fold != k:
                        continue
                    item = f[s.name]
                    boxes, scores = (
                        torch.from_numpy(item["boxes"]),
                        torch.from_numpy(item["scores"]),
                    )
                    x, base, _ = inputs[det][s.name]
                    refined = torch.sigmoid(torch.from_numpy(base) + probe(torch.from_numpy(x)))
                    preds[det]["single"][s.name] = postprocess(Detections(boxes, scores))
                    preds[det]["probe"][s.name] = postprocess(Detections(boxes, refined))
    return {
        det: {tag: evaluate(p, dataset).ap for tag, p in by_tag.items()}
        for det, by_tag in preds.items()
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--features", nargs="+", choices=FEATURES, default=list(FEATURES))
    ap.add_argument(
        "--detectors", nargs="+", default=["retinaface", "yunet_n", "scrfd_500m", "centerface"]
    )
    ap.add_argument("--data", help="wider_val200 folder (default: shared/data/wider_val200)")
    ap.add_argument("--cache-root", default="cache")
    ap.add_argument("--body", help="RetinaFace-MobileNet-0.25 .pth (default: shared/detectors)")
    ap.add_argument("--feature-dir", default="runs/probe_features", help="feature cache folder")
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--penalty", type=float, default=50.0, help="residual penalty weight")
    ap.add_argument("--pca", type=int, default=16, help="principal components (0: all)")
    ap.add_argument(
        "--small-weight",
        type=float,
        default=1.0,
        help="weight of candidates smaller than --small-px in the ranking loss (Hard-targeted)",
    )
    ap.add_argument("--small-px", type=float, default=12.0, help="sqrt(area) threshold, pixels")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    dataset = load_dataset(args.data or shared_path("data", "wider_val200"))
    cache = CandidateCache(args.cache_root, dataset.name)
    body = MobileNetV1(0.25)
    load_retinaface_body(body, args.body or shared_path("detectors", "retinaface_mnet025.pth"))
    body.eval()
    feats = {}
    for det in args.detectors:
        path = Path(args.feature_dir) / f"{det}.npz"
        if not path.is_file():  # one file per detector: an interrupted run resumes from here
            path.parent.mkdir(parents=True, exist_ok=True)
            flat = {
                f"{i}_{key}": arr
                for i in tqdm(range(len(dataset)), desc=f"features {det}", leave=False)
                for key, arr in extract_one(body, dataset, cache, det, i).items()
            }
            np.savez(path, **flat)
        with np.load(path) as z:
            feats[det] = {
                s.name: {key: z[f"{i}_{key}"] for key in FIELDS} for i, s in enumerate(dataset)
            }
    results = {}
    for features in args.features:
        results[features] = cross_validate(feats, dataset, features, args)
        for det, ap_ in results[features].items():
            cells = "  ".join(
                f"{st} {100 * ap_['single'][st]:.1f}->{100 * ap_['probe'][st]:.1f} "
                f"({100 * (ap_['probe'][st] - ap_['single'][st]):+.1f})"
                for st in ("easy", "medium", "hard")
            )
            print(f"{features:5s} {det:12s} {cells}", flush=True)
    if args.json:
        payload = {"config": {k: v for k, v in vars(args).items() if k != "json"}, **results}
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
