from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from crface.paths import shared_root


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ../shared folder (real detectors and data); skips the test when it is absent."""
    root = shared_root()
    if root is None:
        pytest.skip("../shared not found (set CRFACE_SHARED): real detectors/data unavailable")
    return root


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Slow real-data tests run locally on demand and in CI only when CRFACE_SLOW=1.
    if os.environ.get("CRFACE_SLOW") == "1" or config.getoption("markexpr"):
        return
    skip = pytest.mark.skip(reason="slow test: set CRFACE_SLOW=1 or pass -m slow to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
