"""Training a ranker on cached detector candidates (paper sec. 4.2), with exact resume.

A run is described by a :class:`TrainConfig` (a JSON file, see below) and lives in a folder::

    RUN/config.json   the configuration as run
    RUN/log.jsonl     one JSON object per line: {"type": "train", iteration, loss, lr, time},
                      {"type": "baseline", ...} once, {"type": "eval", iteration, time, ap,
                      baseline_ap, metric, per_detector}
    RUN/last.pt       checkpoint (every ``checkpoint_every`` iterations and at the end)
    RUN/best.pt       weights (crface.weights format) of the best held-out evaluation
    RUN/final.pt      weights after the last iteration
    RUN/curve.png     loss and held-out AP against iteration

``train(config, run_dir)`` resumes from ``RUN/last.pt`` when it exists: the resumed run is
bit-for-bit the run that was never interrupted (same weights; data order and augmentation are
functions of (seed, iteration) only, and the checkpoint holds model, optimizer, scheduler and every
RNG state). That holds on the CPU; on CUDA only with ``"deterministic": true``, since some CUDA
kernels (e.g. the backward of nearest interpolation) add in a nondeterministic order. Log rows
written after the checkpoint by the interrupted process are dropped.

Config file (JSON; keys, defaults in brackets)::

    {
      "model": "small",           # [None] preset name ("small", "paper"), a RankerConfig dict, or
                                  #   {"preset": "small", "image_size": 416, ...}: a preset with
                                  #   overrides. None: "small", or the config of init_weights.
      "init_weights": null,       # [None] weights file / registered name to start from
      "init_backbone": null,      # [None] RetinaFace-MobileNet-0.25 .pth whose face-trained body
                                  #   initialises the backbone (needs input_norm "retinaface");
                                  #   "shared:NAME" means NAME under shared/detectors
      "freeze_backbone": false,   # [false] keep the backbone fixed (weights and BN statistics)
      "train_data": [             # (required) datasets; "root" is a folder or a set under
                                  #   shared/data. "folds"/"names" restrict the images.
        {"root": "wider_val200", "folds": [0, 1, 2, 3]},
        {"root": "facemask_kaggle", "exhaustive": false, "unlabelled_max_px": 40}
      ],                          #   exhaustive [true]: false zero-weights small candidates that
                                  #   match no label (possible unlabelled faces).
      "heldout": {"root": "wider_val200", "folds": [4]},   # [None] evaluation images
      "cache_root": "cache",      # ["cache"] CandidateCache root (relative to the working dir)
      "detectors": ["retinaface", "yunet_n"],              # (required) cache folders to mix
      "eval_detectors": null,     # [None = detectors] detectors evaluated on the held-out set
      "variants": [[1.0, false], [2.0, false]],            # [[[1.0, false]]] (scale, flip) caches
      "augment": {"crop_prob": 0.5},                       # [{}] AugmentConfig overrides
      "loss": "rank",             # ["rank"] or "ce", "l1", "l2", "smooth_l1" (Table 1 baselines)
      "loss_params": {"num_pairs": 10, "ties": "ignore"}, # [{}] options of the loss
      "pair_scope": "image",      # ["image"] rows the loss sees in detector-confidence order:
                                  #   per image (the paper), or "batch": the batch's rows merged
                                  #   and sorted by confidence, so neighbour pairs span images
                                  #   (WIDER AP thresholds all images at once)
      "cluster_pairs": 0.0,       # [0] weight of crface.train.losses.cluster_pair_loss: pairs of
                                  #   rivals inside one NMS cluster (IoU >= 0.4), ordered by
                                  #   the oracle (with the rank loss's floor and scale)
      "residual_penalty": 0.0,    # [0] weight of mean (refined - input confidence)^2: the ranking
                                  #   loss is blind to a shift of all scores, which can drift
                                  #   them all to 0; this anchors them to the detector's scale
      "batch_size": 8,            # [8] (paper: 32)
      "iterations": 100000,       # [100000] (paper: 100K)
      "lr": 0.001, "lr_final": 1e-06,   # Adam, decayed exponentially from lr to lr_final
      "weight_decay": 0.0,
      "seed": 0,                  # model init, data order and augmentation
      "log_every": 10, "eval_every": 1000, "checkpoint_every": 1000,
      "eval_batch_size": 8,
      "device": "auto",           # "auto" (CUDA when available), "cpu", "cuda", "cuda:N"
      "num_workers": 0,           # DataLoader worker processes
      "deterministic": false      # CUDA: deterministic kernels (slower); CPU always is
    }

Held-out evaluation: for each evaluation detector, its single-scale cached candidates of the
held-out images are reranked with :meth:`crface.refiner.Refiner.from_model` + hard NMS 0.4
(score threshold 0.02, at most 750 detections) and scored with :func:`crface.eval.evaluate`; the
baseline is the same NMS on the detector's own scores. ``metric`` (used to pick ``best.pt``) is the
mean reranked AP over detectors and settings.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from crface import __version__
from crface._optional import require
from crface.backbones import load_retinaface_body
from crface.cache import CandidateCache
from crface.data import FaceDataset, load_dataset
from crface.eval import evaluate
from crface.eval.sizes import ap_by_size
from crface.model import PRESETS, ConfidenceRanker, RankerConfig
from crface.ops import nms
from crface.paths import shared_path
from crface.refiner import Refiner, _resolve_device
from crface.train.augment import AugmentConfig
from crface.train.data import RankingDataset, RankingItem, TrainSource
from crface.train.losses import cluster_pair_loss, make_loss
from crface.types import Detections
from crface.weights import load_weights, resolve, save_weights

CHECKPOINT_FORMAT = "crface-train-checkpoint"
CHECKPOINT_VERSION = 1
PAIR_SCOPES = ("image", "batch")
# Keys that may change between an interrupted run and its resumption.
RESUMABLE_KEYS = (
    "iterations",
    "device",
    "num_workers",
    "eval_every",
    "checkpoint_every",
    "log_every",
    "eval_batch_size",
)
EVAL_NMS_IOU = 0.4
EVAL_SCORE_THRESHOLD = 0.02
EVAL_MAX_DET = 750


def _unknown_keys(cls: type, d: Mapping[str, Any], what: str) -> None:
    if not isinstance(d, Mapping):
        raise TypeError(f"{what} must be a JSON object; got {type(d).__name__}")
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(d) - set(names))
    if unknown:
        raise ValueError(f"unknown {what} keys {unknown}; valid: {names}")


@dataclass(frozen=True)
class DataSpec:
    """A dataset and which of its images to use.

    Attributes:
        root: dataset folder, or the name of a set under ``shared/data``.
        folds: use only images of these folds (``splits/folds.txt``).
        names: use only these images.
        exhaustive: whether every face is labelled (see :class:`crface.train.data.TrainSource`).
        unlabelled_max_px: with ``exhaustive=False``, the long side below which an unmatched
            candidate is not penalised.
    """

    root: str
    folds: tuple[int, ...] | None = None
    names: tuple[str, ...] | None = None
    exhaustive: bool = True
    unlabelled_max_px: float = 40.0

    def __post_init__(self) -> None:
        if not isinstance(self.root, str) or not self.root:
            raise ValueError(f"data root must be a non-empty string; got {self.root!r}")
        if self.folds is not None:
            object.__setattr__(self, "folds", tuple(int(f) for f in self.folds))
        if self.names is not None:
            object.__setattr__(self, "names", tuple(str(n) for n in self.names))
        if not self.unlabelled_max_px >= 0:
            raise ValueError(f"unlabelled_max_px must be >= 0; got {self.unlabelled_max_px!r}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DataSpec:
        _unknown_keys(cls, d, "data spec")
        if "root" not in d:
            raise ValueError(f"a data spec needs a 'root'; got {dict(d)}")
        return cls(**d)

    def load(self) -> FaceDataset:
        """The dataset restricted to the selected images.

        Raises:
            ValueError: unknown folds or names.
        """
        ds = load_dataset(self.root)
        if self.folds is not None:
            missing = sorted(set(self.folds) - set(ds.folds))
            if missing:
                raise ValueError(
                    f"{ds.name}: folds {missing} not in the dataset (folds: {ds.folds})"
                )
            ds = ds.subset(lambda s: s.fold in self.folds)
        if self.names is not None:
            missing = [n for n in self.names if n not in ds]
            if missing:
                raise ValueError(
                    f"{ds.name}: {len(missing)} selected image(s) not found, e.g. {missing[0]!r}"
                )
            position = {n: i for i, n in enumerate(ds.names)}
            ds = ds.subset([position[n] for n in self.names])
        if not len(ds):
            raise ValueError(f"{ds.name}: the selection holds no image")
        return ds


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; see the module docstring for the JSON form.

    Validation happens on construction (unknown keys, presets, losses, augmentation options);
    files are only touched by :func:`train`.

    Example:
        >>> cfg = TrainConfig.from_dict(
        ...     {"train_data": [{"root": "wider_val200", "folds": [0, 1, 2, 3]}],
        ...      "detectors": ["retinaface"], "model": {"preset": "small", "image_size": 416}}
        ... )
        >>> cfg.ranker_config().image_size, cfg.variants, cfg.train_data[0].folds
        (416, ((1.0, False),), (0, 1, 2, 3))
    """

    train_data: tuple[DataSpec, ...]
    detectors: tuple[str, ...]
    cache_root: str = "cache"
    variants: tuple[tuple[float, bool], ...] = ((1.0, False),)
    heldout: DataSpec | None = None
    eval_detectors: tuple[str, ...] | None = None
    model: str | Mapping[str, Any] | None = None
    init_weights: str | None = None
    init_backbone: str | None = None
    freeze_backbone: bool = False
    augment: Mapping[str, Any] = field(default_factory=dict)
    loss: str = "rank"
    loss_params: Mapping[str, Any] = field(default_factory=dict)
    residual_penalty: float = 0.0
    cluster_pairs: float = 0.0
    pair_scope: str = "image"
    batch_size: int = 8
    iterations: int = 100_000
    lr: float = 1e-3
    lr_final: float = 1e-6
    weight_decay: float = 0.0
    seed: int = 0
    log_every: int = 10
    eval_every: int = 1000
    checkpoint_every: int = 1000
    eval_batch_size: int = 8
    device: str = "auto"
    num_workers: int = 0
    deterministic: bool = False

    def __post_init__(self) -> None:
        specs = tuple(
            s if isinstance(s, DataSpec) else DataSpec.from_dict(s) for s in self.train_data
        )
        if not specs:
            raise ValueError("train_data must list at least one dataset")
        object.__setattr__(self, "train_data", specs)
        if self.heldout is not None and not isinstance(self.heldout, DataSpec):
            object.__setattr__(self, "heldout", DataSpec.from_dict(self.heldout))
        if isinstance(self.detectors, str) or not self.detectors:
            raise ValueError(f"detectors must be a non-empty list of names; got {self.detectors!r}")
        object.__setattr__(self, "detectors", tuple(self.detectors))
        if self.eval_detectors is not None:
            object.__setattr__(self, "eval_detectors", tuple(self.eval_detectors))
        variants = []
        for v in self.variants:
            if len(v) != 2 or not isinstance(v[1], bool) or not float(v[0]) > 0:
                raise ValueError(f"variants must be [scale > 0, flip bool] pairs; got {v!r}")
            variants.append((float(v[0]), bool(v[1])))
        if not variants:
            raise ValueError("variants must list at least one [scale, flip] pair")
        object.__setattr__(self, "variants", tuple(variants))
        object.__setattr__(self, "augment", dict(self.augment))
        object.__setattr__(self, "loss_params", dict(self.loss_params))
        for name in (
            "batch_size",
            "iterations",
            "log_every",
            "eval_every",
            "checkpoint_every",
            "eval_batch_size",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0; got {self.num_workers!r}")
        if not 0 < self.lr_final <= self.lr:
            raise ValueError(
                f"need 0 < lr_final <= lr; got lr={self.lr!r}, lr_final={self.lr_final!r}"
            )
        if self.pair_scope not in PAIR_SCOPES:
            raise ValueError(f"pair_scope must be one of {PAIR_SCOPES}; got {self.pair_scope!r}")
        if not self.cluster_pairs >= 0:
            raise ValueError(f"cluster_pairs must be >= 0; got {self.cluster_pairs!r}")
        if not self.residual_penalty >= 0:
            raise ValueError(f"residual_penalty must be >= 0; got {self.residual_penalty!r}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0; got {self.weight_decay!r}")
        # Fail on typos now rather than after the data has loaded.
        self.augment_config()
        make_loss(self.loss, **self.loss_params)
        head = None if self.model is None else _model_config(self.model)
        if head and not head.uses_backbone and (self.init_backbone or self.freeze_backbone):
            raise ValueError(
                f"head {head.head!r} has no backbone: init_backbone and freeze_backbone must be unset"
            )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        """Build from a dict; unknown keys raise ValueError listing the valid ones."""
        _unknown_keys(cls, d, "TrainConfig")
        missing = [k for k in ("train_data", "detectors") if k not in d]
        if missing:
            raise ValueError(f"TrainConfig needs {missing}")
        return cls(**d)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> TrainConfig:
        """Read a JSON config file.

        Raises:
            FileNotFoundError: no such file.
            ValueError: invalid JSON (with line/column) or invalid contents.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: invalid JSON: {exc}") from exc
        try:
            return cls.from_dict(raw)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def augment_config(self) -> AugmentConfig:
        return AugmentConfig.from_dict(self.augment)

    def ranker_config(self) -> RankerConfig:
        """The network's config: from ``model``, else from ``init_weights``, else ``"small"``.

        Raises:
            ValueError: unknown preset/keys, or ``model`` disagrees with ``init_weights``.
        """
        wanted = None if self.model is None else _model_config(self.model)
        if self.init_weights is None:
            return wanted or PRESETS["small"]
        stored, _, _ = load_weights(resolve(self.init_weights))
        if wanted is not None and wanted != stored:
            diff = {
                k: (v, stored.to_dict()[k])
                for k, v in wanted.to_dict().items()
                if v != stored.to_dict()[k]
            }
            raise ValueError(
                f"model config differs from init_weights {self.init_weights!r} in "
                f"{sorted(diff)} (config, weights): {diff}"
            )
        return stored


def _model_config(spec: str | Mapping[str, Any]) -> RankerConfig:
    if isinstance(spec, str):
        if spec not in PRESETS:
            raise ValueError(f"unknown model preset {spec!r}; presets: {sorted(PRESETS)}")
        return PRESETS[spec]
    if not isinstance(spec, Mapping):
        raise TypeError(f"model must be a preset name or a dict; got {type(spec).__name__}")
    spec = dict(spec)
    preset = spec.pop("preset", None)
    if preset is None:
        return RankerConfig.from_dict(spec)
    return RankerConfig.from_dict({**_model_config(preset).to_dict(), **spec})


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` produced.

    Attributes:
        run_dir: the run folder.
        iteration: iterations completed.
        finished: whether ``iteration == config.iterations`` (False after ``stop_after``).
        final_weights: ``RUN/final.pt`` when finished, else ``None``.
        best_weights: ``RUN/best.pt`` when a held-out evaluation ran, else ``None``.
        last_eval: the last evaluation's log row, or ``None``.
    """

    run_dir: Path
    iteration: int
    finished: bool
    final_weights: Path | None
    best_weights: Path | None
    last_eval: dict[str, Any] | None


# ---------------------------------------------------------------------------- held-out evaluation
def _detector_nms(det: Detections) -> Detections:
    """The detector's own single-scale result, post-processed exactly like a reranked one."""
    ok = (det.boxes[:, 2] > det.boxes[:, 0]) & (det.boxes[:, 3] > det.boxes[:, 1])
    ok &= det.scores >= EVAL_SCORE_THRESHOLD
    boxes, scores = det.boxes[ok], det.scores[ok]
    keep = nms(boxes, scores, EVAL_NMS_IOU)[:EVAL_MAX_DET]
    return Detections(boxes[keep], scores[keep])


def _nan_to_none(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


class HeldOut:
    """Held-out evaluation on cached single-scale candidates (see the module docstring).

    Args:
        dataset: the held-out images.
        cache: their candidate cache.
        detectors: the detectors to evaluate.
        batch_size: images per forward pass.

    Raises:
        FileNotFoundError: a held-out image has no cached candidates (names the dump to run).
    """

    def __init__(
        self,
        dataset: FaceDataset,
        cache: CandidateCache,
        detectors: Sequence[str],
        batch_size: int = 8,
    ) -> None:
        self.dataset = dataset
        self.detectors = tuple(detectors)
        self.batch_size = batch_size
        self.candidates = {
            det: [cache.load(det, 1.0, False, s.name) for s in dataset] for det in self.detectors
        }
        baseline = {
            det: {s.name: _detector_nms(c) for s, c in zip(dataset, self.candidates[det])}
            for det in self.detectors
        }
        self.baseline = {det: evaluate(p, dataset).ap for det, p in baseline.items()}
        self.baseline_size = {det: ap_by_size(p, dataset) for det, p in baseline.items()}

    def run(self, model: ConfidenceRanker, device: torch.device) -> dict[str, Any]:
        """Evaluate ``model`` (left in eval mode); returns the ``"eval"`` log row's payload."""
        refiner = Refiner.from_model(model, device=str(device), batch_size=self.batch_size)
        preds: dict[str, dict[str, Detections]] = {det: {} for det in self.detectors}
        names = self.dataset.names
        for start in range(0, len(names), self.batch_size):
            idx = range(start, min(start + self.batch_size, len(names)))
            images = [self.dataset.load_image(i) for i in idx]
            for det in self.detectors:
                outs = refiner.rerank_batch(
                    images,
                    [self.candidates[det][i] for i in idx],
                    nms="hard",
                    nms_iou=EVAL_NMS_IOU,
                    score_threshold=EVAL_SCORE_THRESHOLD,
                    max_det=EVAL_MAX_DET,
                    invalid="drop",
                )
                preds[det].update(zip((names[i] for i in idx), outs))
        per_det = {
            det: {
                "ap": evaluate(preds[det], self.dataset).ap,
                "baseline_ap": self.baseline[det],
                # Where the gain is: AP by face width (< 16, 16-48, > 48 px).
                "ap_size": ap_by_size(preds[det], self.dataset),
                "baseline_ap_size": self.baseline_size[det],
            }
            for det in self.detectors
        }
        settings = list(self.dataset.settings)

        def mean(key: str, s: str) -> float:
            values = [per_det[d][key][s] for d in self.detectors]
            return float(np.nanmean(values)) if not all(math.isnan(v) for v in values) else math.nan

        ap = {s: mean("ap", s) for s in settings}
        values = [v for v in ap.values() if not math.isnan(v)]
        return {
            "ap": {s: _nan_to_none(v) for s, v in ap.items()},
            "baseline_ap": {s: _nan_to_none(mean("baseline_ap", s)) for s in settings},
            "metric": float(np.mean(values)) if values else None,
            "per_detector": {
                d: {k: {s: _nan_to_none(v) for s, v in r.items()} for k, r in row.items()}
                for d, row in per_det.items()
            },
        }


# ---------------------------------------------------------------------------- data order
class _BatchKeys:
    """An endless stream of batches of ``(index, epoch)`` keys starting at ``start_iteration``.

    Sample position ``p = iteration * batch_size + j`` is item ``perm_e[p % n]`` of epoch
    ``e = p // n``, where ``perm_e`` is a permutation seeded from ``(seed, e)``: the data order is a
    function of the iteration alone, so a resumed run reads exactly what the uninterrupted one did.
    """

    def __init__(self, n: int, batch_size: int, seed: int, start_iteration: int) -> None:
        self.n, self.batch_size, self.seed, self.start = n, batch_size, seed, start_iteration

    def __iter__(self):
        pos = self.start * self.batch_size
        epoch, perm = -1, None
        while True:
            batch = []
            for p in range(pos, pos + self.batch_size):
                e, offset = divmod(p, self.n)
                if e != epoch:
                    epoch, perm = e, np.random.default_rng([self.seed, e]).permutation(self.n)
                batch.append((int(perm[offset]), e))
            yield batch
            pos += self.batch_size


def _worker_init(_: int) -> None:
    # Each worker builds items single-threaded; parallelism comes from the workers themselves.
    torch.set_num_threads(1)


# ---------------------------------------------------------------------------- checkpoints
def _rng_state() -> dict[str, Any]:
    # The legacy global numpy RNG is saved for code outside crface that may draw from it; crface
    # itself only uses explicitly seeded generators.
    np_state = np.random.get_state()  # noqa: NPY002
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {"version": py_version, "state": list(py_state), "gauss": py_gauss},
    }


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        (
            "MT19937",
            n["keys"].numpy().astype(np.uint32),
            n["pos"],
            n["has_gauss"],
            n["cached_gaussian"],
        )
    )
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


def _atomic_save(payload: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a training checkpoint (``RUN/last.pt``) without executing pickle code.

    It holds only tensors and plain types, so ``torch.load(weights_only=True)`` reads it: keys
    ``iteration``, ``model`` (state dict), ``optimizer``, ``scheduler``, ``rng``, ``state``,
    ``config`` (``TrainConfig.to_dict()``).

    Raises:
        ValueError: unreadable or not a crface training checkpoint.
    """
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated / foreign files
        raise ValueError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a crface training checkpoint")
    if payload.get("format_version") != CHECKPOINT_VERSION:
        raise ValueError(
            f"{path}: unsupported checkpoint version {payload.get('format_version')!r}"
        )
    return payload


# ---------------------------------------------------------------------------- log and curve
def _read_log(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def _write_log(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    os.replace(tmp, path)


def _append_log(path: Path, row: Mapping[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")


def plot_curve(log_rows: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Draw training loss and held-out AP (reranked solid, detector baseline dashed) to a PNG.

    Args:
        log_rows: the rows of ``log.jsonl``.
        path: the PNG to write.
    """
    require("matplotlib", "plotting the training curve")
    from matplotlib.figure import Figure

    train_rows = [r for r in log_rows if r.get("type") == "train"]
    eval_rows = [r for r in log_rows if r.get("type") == "eval"]
    fig = Figure(figsize=(8, 6.5 if eval_rows else 3.5), layout="constrained")
    axes = fig.subplots(2 if eval_rows else 1, 1, sharex=True, squeeze=False)[:, 0]
    axes[0].plot([r["iteration"] for r in train_rows], [r["loss"] for r in train_rows], lw=1)
    axes[0].set_ylabel("training loss")
    axes[0].grid(alpha=0.3)
    if eval_rows:
        ax = axes[1]
        its = [r["iteration"] for r in eval_rows]
        for i, setting in enumerate(eval_rows[-1]["ap"]):
            colour = f"C{i}"
            ys = [r["ap"].get(setting) for r in eval_rows]
            ax.plot(
                its,
                [math.nan if y is None else y for y in ys],
                "o-",
                color=colour,
                label=f"{setting} reranked",
            )
            base = eval_rows[-1]["baseline_ap"].get(setting)
            if base is not None:
                ax.axhline(base, color=colour, ls="--", lw=1, label=f"{setting} detector")
        ax.set_ylabel("held-out AP (mean over detectors)")
        ax.legend(fontsize="small", ncol=2)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("iteration")
    path = Path(path)
    fig.savefig(path, dpi=100)
    return path


# ---------------------------------------------------------------------------- training
def _build_data(config: TrainConfig, ranker: RankerConfig) -> tuple[RankingDataset, HeldOut | None]:
    datasets = [spec.load() for spec in config.train_data]
    heldout = None
    if config.heldout is not None:
        held = config.heldout.load()
        for ds in datasets:
            if ds.name == held.name:
                overlap = set(ds.names) & set(held.names)
                if overlap:
                    raise ValueError(
                        f"{len(overlap)} held-out image(s) of {ds.name!r} are also training "
                        f"images, e.g. {sorted(overlap)[0]!r}"
                    )
        heldout = HeldOut(
            held,
            CandidateCache(config.cache_root, held.name),
            config.eval_detectors or config.detectors,
            config.eval_batch_size,
        )
    sources = [
        TrainSource(
            ds, CandidateCache(config.cache_root, ds.name), spec.exhaustive, spec.unlabelled_max_px
        )
        for spec, ds in zip(config.train_data, datasets)
    ]
    train_set = RankingDataset(
        sources,
        config.detectors,
        config.variants,
        num_boxes=ranker.num_boxes,
        image_size=ranker.image_size,
        augment=config.augment_config(),
        seed=config.seed,
    )
    return train_set, heldout


def _check_resumable(saved: Mapping[str, Any], config: TrainConfig, path: Path) -> None:
    now = config.to_dict()
    diff = sorted(
        k for k in set(saved) | set(now) if k not in RESUMABLE_KEYS and saved.get(k) != now.get(k)
    )
    if diff:
        raise ValueError(
            f"{path} was written with a different config ({', '.join(diff)} differ); resume with "
            "the same config, or start over (--no-resume / resume=False) or in a new run dir"
        )


def _pair_scope(
    scope: str, refined: torch.Tensor, batch: RankingItem
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The loss inputs ``(refined, oracle, valid, weights)``, ``(B, N)`` per image or, for
    ``"batch"``, ``(1, B*N)`` with all rows sorted by the detector's confidence (padding last)."""
    if scope == "image":
        return refined, batch.oracle, batch.valid, batch.weights
    conf = batch.boxes[..., 4].masked_fill(~batch.valid, -1.0).flatten()
    order = torch.argsort(conf, descending=True, stable=True)
    return tuple(
        t.flatten()[order][None] for t in (refined, batch.oracle, batch.valid, batch.weights)
    )


def residual_penalty(refined: torch.Tensor, batch: RankingItem) -> torch.Tensor:
    """Mean over real rows of ``(refined - input confidence)^2`` (see ``residual_penalty``)."""
    w = batch.valid.to(refined.dtype)
    return (((refined - batch.boxes[..., 4]) ** 2) * w).sum() / w.sum().clamp_min(1.0)


def _rival_options(config: TrainConfig) -> dict[str, float]:
    """The rank loss's ``scale`` and ``floor`` carried over to :func:`cluster_pair_loss`."""
    return {k: config.loss_params[k] for k in ("scale", "floor") if k in config.loss_params}


def _backbone_path(spec: str) -> Path:
    if spec.startswith("shared:"):
        return shared_path("detectors", spec.removeprefix("shared:"))
    return Path(spec)


def _set_train_mode(model: ConfidenceRanker, freeze_backbone: bool) -> None:
    """Training mode, except a frozen backbone: no gradients, BatchNorm statistics kept."""
    model.train()
    if freeze_backbone:
        model.backbone.eval()
        model.backbone.requires_grad_(False)


def train(
    config: TrainConfig,
    run_dir: str | os.PathLike,
    *,
    resume: bool = True,
    stop_after: int | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train a ranker; see the module docstring for the run folder and config.

    Args:
        config: the run's configuration.
        run_dir: the run folder (created).
        resume: continue from ``run_dir/last.pt`` when present (the config must match, except for
            ``RESUMABLE_KEYS``). ``False`` starts over and overwrites the folder's run files.
            Changing ``iterations`` on resume re-spreads the learning-rate decay over the new
            total from the current iteration's position on.
        stop_after: run at most this many iterations in this call, then checkpoint and return
            (``finished=False``); a later call resumes. For time-sliced jobs and tests.
        progress: show a tqdm progress bar.

    Returns:
        A :class:`TrainResult`.

    Raises:
        ValueError / FileNotFoundError: bad config, missing data or cache, incompatible checkpoint.
        FloatingPointError: the loss became NaN or infinite (the last checkpoint stays intact).

    Example:
        >>> cfg = TrainConfig.from_file("configs/crop_floor_fold4.json")    # doctest: +SKIP
        >>> train(cfg, "runs/crop").final_weights                             # doctest: +SKIP
        PosixPath('runs/crop/final.pt')
    """
    from tqdm.auto import tqdm

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = _resolve_device(config.device)
    if config.deterministic:
        # cuBLAS reads this when it initialises: effective unless CUDA ran earlier in the process.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)
    ranker_cfg = config.ranker_config()
    train_set, heldout = _build_data(config, ranker_cfg)
    loss_fn = make_loss(config.loss, **config.loss_params)
    rival_options = {"iou_threshold": EVAL_NMS_IOU, **_rival_options(config)}

    torch.manual_seed(config.seed)
    model = ConfidenceRanker(ranker_cfg)
    if config.init_weights is not None:
        _, state, _ = load_weights(resolve(config.init_weights))
        model.load_state_dict(state)
    if config.init_backbone is not None:
        load_retinaface_body(model.backbone, _backbone_path(config.init_backbone))
    model.to(device)
    _set_train_mode(model, config.freeze_backbone)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    total = config.iterations
    decay = config.lr_final / config.lr
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda t: decay ** (min(t, total) / total)
    )

    ckpt_path, log_path = run_dir / "last.pt", run_dir / "log.jsonl"
    iteration, elapsed, window = 0, 0.0, []
    best: dict[str, Any] = {"metric": None, "iteration": None}
    if resume and ckpt_path.is_file():
        ckpt = load_checkpoint(ckpt_path)
        _check_resumable(ckpt["config"], config, ckpt_path)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        _set_rng_state(ckpt["rng"])
        iteration = int(ckpt["iteration"])
        elapsed = float(ckpt["state"]["elapsed"])
        window = list(ckpt["state"]["loss_window"])
        best = dict(ckpt["state"]["best"])
        # Rows the interrupted process wrote after its last checkpoint are redone below.
        _write_log(log_path, [r for r in _read_log(log_path) if r.get("iteration", 0) <= iteration])
    else:
        _write_log(log_path, [])
        for stale in ("last.pt", "best.pt", "final.pt", "curve.png"):
            (run_dir / stale).unlink(missing_ok=True)
    (run_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")

    start_time = time.perf_counter()

    def now() -> float:
        return round(elapsed + time.perf_counter() - start_time, 3)

    if heldout is not None and iteration == 0:
        _append_log(
            log_path,
            {
                "type": "baseline",
                "iteration": 0,
                "time": now(),
                "ap": {
                    d: {s: _nan_to_none(v) for s, v in ap.items()}
                    for d, ap in heldout.baseline.items()
                },
            },
        )

    def metadata(last_eval: Mapping[str, Any] | None) -> dict[str, Any]:
        return {
            "trained": True,
            "crface_version": __version__,
            "iteration": iteration,
            "training_data": train_set.describe(),
            "detectors": list(config.detectors),
            "variants": [list(v) for v in config.variants],
            "loss": {"name": config.loss, **config.loss_params},
            "config": config.to_dict(),
            "heldout": None
            if last_eval is None
            else {
                "dataset": heldout.dataset.name,
                "images": len(heldout.dataset),
                **{
                    k: last_eval[k]
                    for k in ("iteration", "ap", "baseline_ap", "metric", "per_detector")
                },
            },
        }

    def checkpoint() -> None:
        _atomic_save(
            {
                "format": CHECKPOINT_FORMAT,
                "format_version": CHECKPOINT_VERSION,
                "iteration": iteration,
                "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": _rng_state(),
                "state": {"elapsed": now(), "loss_window": window, "best": best},
                "config": config.to_dict(),
            },
            ckpt_path,
        )

    last_eval = next((r for r in reversed(_read_log(log_path)) if r.get("type") == "eval"), None)

    def run_eval() -> None:
        nonlocal last_eval
        row = {"type": "eval", "iteration": iteration, "time": now(), **heldout.run(model, device)}
        _set_train_mode(model, config.freeze_backbone)
        _append_log(log_path, row)
        last_eval = row
        if row["metric"] is not None and (best["metric"] is None or row["metric"] > best["metric"]):
            best.update(metric=row["metric"], iteration=iteration)
            save_weights(run_dir / "best.pt", model, metadata(row))
        plot_curve(_read_log(log_path), run_dir / "curve.png")

    stop = total if stop_after is None else min(total, iteration + max(0, int(stop_after)))
    loader = DataLoader(
        train_set,
        batch_sampler=_BatchKeys(len(train_set), config.batch_size, config.seed, iteration),
        num_workers=config.num_workers,
        worker_init_fn=_worker_init if config.num_workers else None,
        pin_memory=device.type == "cuda",
    )
    bar = tqdm(
        total=total, initial=iteration, disable=not progress, dynamic_ncols=True, desc="train"
    )
    batches = iter(loader)
    try:
        while iteration < stop:
            batch = RankingItem(*(t.to(device, non_blocking=True) for t in next(batches)))
            lr = scheduler.get_last_lr()[0]
            refined = model(batch.image, batch.boxes)
            loss = loss_fn(*_pair_scope(config.pair_scope, refined, batch))
            if config.residual_penalty:
                loss = loss + config.residual_penalty * residual_penalty(refined, batch)
            if config.cluster_pairs:
                rivals = cluster_pair_loss(
                    refined, batch.oracle, batch.boxes, batch.weights, **rival_options
                )
                loss = loss + config.cluster_pairs * rivals
            value = float(loss.item())
            if not math.isfinite(value):
                raise FloatingPointError(
                    f"loss is {value} at iteration {iteration + 1}; the checkpoint {ckpt_path} "
                    "holds the last good state"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            iteration += 1
            window.append(value)
            bar.update(1)
            if iteration % config.log_every == 0 or iteration == total:
                mean_loss = float(np.mean(window))
                _append_log(
                    log_path,
                    {
                        "type": "train",
                        "iteration": iteration,
                        "loss": mean_loss,
                        "lr": lr,
                        "time": now(),
                    },
                )
                bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr:.2e}")
                window = []
            if heldout is not None and (iteration % config.eval_every == 0 or iteration == total):
                run_eval()
            if iteration % config.checkpoint_every == 0 or iteration == stop:
                checkpoint()
    finally:
        bar.close()
        del batches  # shuts worker processes down

    finished = iteration >= total
    final = None
    if finished:
        final = save_weights(run_dir / "final.pt", model, metadata(last_eval))
        if heldout is None:
            plot_curve(_read_log(log_path), run_dir / "curve.png")
    best_path = run_dir / "best.pt"
    return TrainResult(
        run_dir=run_dir,
        iteration=iteration,
        finished=finished,
        final_weights=final,
        best_weights=best_path if best_path.is_file() else None,
        last_eval=last_eval,
    )
