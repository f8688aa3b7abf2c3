"""Weights files and the registry of named, checksummed weights.

A weights file is a ``torch.save`` of plain data only, so it loads with
``torch.load(weights_only=True)`` (no pickle code runs)::

    {"format": "crface-weights", "format_version": 1,
     "config": RankerConfig.to_dict(), "state_dict": {...}, "metadata": {...}}

Named weights ship inside the package (``crface/assets``) and are listed in
``crface/assets/registry.json`` with their sha256, which is verified on every load.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from crface.model import ConfidenceRanker, RankerConfig

FORMAT = "crface-weights"
FORMAT_VERSION = 1
ASSETS = Path(__file__).resolve().parent / "assets"
REGISTRY_FILE = ASSETS / "registry.json"


@dataclass(frozen=True)
class WeightsEntry:
    """One registered weights file."""

    name: str
    file: str
    sha256: str
    size: int
    description: str
    trained: bool

    @property
    def path(self) -> Path:
        return ASSETS / self.file


def _registry() -> dict[str, WeightsEntry]:
    with open(REGISTRY_FILE, encoding="utf-8") as fh:
        raw = json.load(fh)
    return {name: WeightsEntry(name=name, **entry) for name, entry in raw.items()}


def list_weights() -> list[dict[str, Any]]:
    """The registered weights: name, file size in bytes, sha256, description, trained flag.

    Example:
        >>> "crface-small" in [w["name"] for w in list_weights()]
        True
    """
    return [
        {
            "name": e.name,
            "size": e.size,
            "sha256": e.sha256,
            "description": e.description,
            "trained": e.trained,
        }
        for e in _registry().values()
    ]


def sha256_of(path: str | os.PathLike) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def resolve(name_or_path: str | os.PathLike) -> Path:
    """Map a registered name to its verified file, or return an existing explicit path.

    Raises:
        FileNotFoundError: neither a registered name nor an existing file (lists the names), or
            the registered file is missing from the installation.
        ValueError: the registered file's sha256 does not match the registry.
    """
    reg = _registry()
    key = os.fspath(name_or_path)
    if key in reg:
        entry = reg[key]
        if not entry.path.is_file():
            raise FileNotFoundError(
                f"registered weights {key!r} missing at {entry.path}; the installation is "
                f"incomplete (reinstall crface). Registered names: {sorted(reg)}"
            )
        digest = sha256_of(entry.path)
        if digest != entry.sha256:
            raise ValueError(
                f"sha256 mismatch for {key!r} at {entry.path}: expected {entry.sha256}, got "
                f"{digest}; the file is corrupt or was replaced. Registered names: {sorted(reg)}"
            )
        return entry.path
    path = Path(key)
    if path.is_file():
        return path
    raise FileNotFoundError(
        f"{key!r} is neither a registered weights name nor an existing file; "
        f"registered names: {sorted(reg)}"
    )


def save_weights(
    path: str | os.PathLike,
    model: ConfidenceRanker,
    metadata: dict[str, Any] | None = None,
    *,
    half: bool = False,
) -> Path:
    """Write ``model``'s config, state dict and ``metadata`` (plain JSON-like types) to ``path``.

    ``half=True`` stores floating tensors as float16 (half the size, for shipped weights); they
    are cast back to float32 when loaded.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        k: (v.half() if half and v.is_floating_point() else v).detach().cpu().clone()
        for k, v in model.state_dict().items()
    }
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "state_dict": state,
        "metadata": dict(metadata or {}),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)  # never leave a half-written weights file behind
    return path


def load_weights(
    path: str | os.PathLike,
) -> tuple[RankerConfig, dict[str, torch.Tensor], dict[str, Any]]:
    """Read a weights file without executing pickle code.

    Returns:
        ``(config, state_dict, metadata)``.

    Raises:
        ValueError: the file is corrupt, truncated, not a crface weights file, or of an unknown
            format version; the message names the path.
    """
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated / foreign files
        raise ValueError(
            f"cannot read crface weights from {path}: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a crface weights file (no format={FORMAT!r} marker)")
    if payload.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path} has format_version {payload.get('format_version')!r}; this crface reads "
            f"{FORMAT_VERSION}: upgrade crface"
        )
    config = RankerConfig.from_dict(payload["config"])
    return config, payload["state_dict"], payload.get("metadata", {})


def build_model(path: str | os.PathLike) -> tuple[ConfidenceRanker, dict[str, Any]]:
    """Instantiate the ranker stored at ``path`` (eval mode, CPU) and return it with its metadata.

    Raises:
        ValueError: unreadable file, or a state dict that does not fit its config.
    """
    config, state, metadata = load_weights(path)
    model = ConfidenceRanker(config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"weights in {path} do not match their config: {exc}") from exc
    return model.eval(), metadata


def register_weights(name: str, source: str | os.PathLike, description: str) -> WeightsEntry:
    """Copy a weights file into the package assets and record it in the registry (maintainers).

    The entry's ``trained`` flag comes from the file's metadata (``metadata["trained"]``).
    """
    _, _, metadata = load_weights(source)
    dest = ASSETS / f"{name}.pt"
    if Path(source).resolve() != dest.resolve():
        dest.write_bytes(Path(source).read_bytes())
    entry = WeightsEntry(
        name=name,
        file=dest.name,
        sha256=sha256_of(dest),
        size=dest.stat().st_size,
        description=description,
        trained=bool(metadata.get("trained", False)),
    )
    raw = json.loads(REGISTRY_FILE.read_text()) if REGISTRY_FILE.is_file() else {}
    raw[name] = {k: v for k, v in entry.__dict__.items() if k != "name"}
    REGISTRY_FILE.write_text(json.dumps(raw, indent=2, sort_keys=True) + "\n")
    return entry
