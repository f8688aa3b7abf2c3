"""Where the optional shared material (real detectors, datasets) lives.

Nothing under ``shared/`` is ever bundled: code takes a path, defaulting to ``$CRFACE_SHARED`` or a
``shared/`` folder beside the current directory or the source checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "CRFACE_SHARED"


def shared_root() -> Path | None:
    """The shared folder: ``$CRFACE_SHARED`` if set, else ``../shared`` from the working directory or
    from the source checkout; ``None`` when none exists."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env) if Path(env).is_dir() else None
    for base in (Path.cwd(), Path(__file__).resolve().parents[1]):
        cand = base.parent / "shared"
        if cand.is_dir():
            return cand
    return None


def shared_path(*parts: str) -> Path:
    """A path inside the shared folder.

    Raises:
        FileNotFoundError: naming the path and how to point crface at the folder.
    """
    root = shared_root()
    rel = Path(*parts)
    if root is None or not (root / rel).exists():
        where = root / rel if root is not None else f"../shared/{rel}"
        raise FileNotFoundError(
            f"{where} not found; set {ENV_VAR}=/path/to/shared or pass an explicit path"
        )
    return root / rel
