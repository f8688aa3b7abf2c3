"""Training the ranker: losses, joint augmentation, the training set and the training loop.

>>> from crface.train import TrainConfig, train
>>> train(TrainConfig.from_file("configs/crop_floor_fold4.json"), "runs/crop")  # doctest: +SKIP
"""

from __future__ import annotations

from crface.train.augment import AugmentConfig, augment
from crface.train.data import RankingDataset, RankingItem, TrainSource
from crface.train.losses import LOSSES, make_loss, pairwise_ranking_loss
from crface.train.trainer import DataSpec, TrainConfig, TrainResult, load_checkpoint, train

__all__ = [
    "LOSSES",
    "AugmentConfig",
    "DataSpec",
    "RankingDataset",
    "RankingItem",
    "TrainConfig",
    "TrainResult",
    "TrainSource",
    "augment",
    "load_checkpoint",
    "make_loss",
    "pairwise_ranking_loss",
    "train",
]
