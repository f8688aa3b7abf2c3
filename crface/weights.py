"""Weights files and the registry of named, checksummed weights.

A weights file is a ``torch.save`` of plain data only, so it loads with
``torch.load(weights_only=True)`` (no pickle code runs)::

    {"format": "crface-weights", "format_version": 1,
     "config": RankerConfig.to_dict(), "state_dict": {...}, "metadata": {...},
     "checksum": "sha256:<hex>"}

``checksum`` (see :func:`checksum`) covers the config, the metadata and every tensor (name,
dtype, shape and bytes, in sorted name order); it is written by :func:`save_weights` and verified
on every load, so a file changed after it was written (a flipped byte) is refused. Files written
before it existed load with a warning (or silently when a registry entry vouches for them);
:func:`add_checksum` upgrades them.

Named weights ship inside the package (``crface/assets``) and are listed in
``crface/assets/registry.json`` with the sha256 of the whole file, which is verified on every load
by name.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import warnings
import zipfile
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
                f"registry check failed: sha256 mismatch for {key!r} at {entry.path}: expected "
                f"{entry.sha256}, got {digest}; the file is corrupt or was replaced (reinstall "
                f"crface). Registered names: {sorted(reg)}"
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
    return _write(path, payload)


def _write(path: Path, payload: dict[str, Any]) -> Path:
    """``torch.save`` ``payload`` with its :func:`checksum`, atomically."""
    payload = {**payload, "checksum": checksum(payload)}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)  # never leave a half-written weights file behind
    return path


def checksum(payload: dict[str, Any]) -> str:
    """The ``"sha256:<hex>"`` digest a weights file stores of its own content.

    It covers ``config`` and ``metadata`` (as sorted-key JSON) and every tensor of
    ``state_dict`` in sorted name order (name, dtype, shape, then the raw bytes), so it does not
    depend on how ``torch.save`` lays out the archive.

    Args:
        payload: a weights file's dict (its ``"checksum"`` entry, if any, is ignored).

    Returns:
        ``"sha256:"`` followed by 64 hex digits.
    """
    h = hashlib.sha256()
    for part in ("config", "metadata"):
        h.update(json.dumps(payload.get(part), sort_keys=True, default=repr).encode())
    state = payload.get("state_dict") or {}
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(json.dumps([name, str(t.dtype), list(t.shape)]).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return f"sha256:{h.hexdigest()}"


def add_checksum(path: str | os.PathLike) -> Path:
    """Rewrite a weights file written before checksums existed with its :func:`checksum`.

    The config, metadata and tensors are kept exactly (same dtypes and bytes).

    Raises:
        ValueError: as :func:`load_weights` (an existing checksum must verify first).
    """
    path = Path(path)
    payload = _read(path)
    if "checksum" in payload:
        _verify(path, payload)
    return _write(path, payload)


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
    payload = _read(path)
    _verify(path, payload)
    if payload.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path} has format_version {payload.get('format_version')!r}; this crface reads "
            f"{FORMAT_VERSION}: upgrade crface"
        )
    config = RankerConfig.from_dict(payload["config"])
    return config, payload["state_dict"], payload.get("metadata", {})


def _read(path: Path) -> dict[str, Any]:
    """The payload of a weights file; every failure is one line naming ``path``."""
    try:
        with warnings.catch_warnings():  # e.g. torch's notes on a foreign pickle protocol
            warnings.simplefilter("ignore", UserWarning)
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated / foreign files
        if not zipfile.is_zipfile(path):
            why = "not a torch.save archive: the file is truncated, corrupt or of another kind"
        elif isinstance(exc, pickle.UnpicklingError):
            why = (
                "it holds Python objects other than tensors and plain data (crface never runs them)"
            )
        else:
            why = f"the archive is damaged ({type(exc).__name__})"
        # from None: torch's own message advises weights_only=False, which would run pickle code
        raise ValueError(
            f"cannot read crface weights from {path}: {why}; re-download or re-save it"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a crface weights file (no format={FORMAT!r} marker)")
    return payload


def _verify(path: Path, payload: dict[str, Any]) -> None:
    """Check the embedded checksum; a file without one passes only if the registry vouches."""
    stored = payload.get("checksum")
    if stored is None:
        entry = next((e for e in _registry().values() if _same_file(e.path, path)), None)
        if entry is None or sha256_of(path) != entry.sha256:
            warnings.warn(
                f"{path} carries no embedded checksum (written by an older crface), so corruption "
                "cannot be detected; upgrade it with crface.weights.add_checksum(path)",
                UserWarning,
                stacklevel=4,
            )
        return
    actual = checksum(payload)
    if stored != actual:
        raise ValueError(
            f"{path} failed its embedded sha256 checksum check: the file records {stored} but "
            f"its config, metadata and tensors hash to {actual}; it was modified or corrupted "
            "after it was written: re-download or re-save it"
        )


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.is_file() and os.path.samefile(a, b)
    except OSError:
        return False


def build_model(path: str | os.PathLike) -> tuple[ConfidenceRanker, dict[str, Any]]:
    """Instantiate the ranker stored at ``path`` (a file or a registered name, see
    :func:`resolve`; eval mode, CPU) and return it with its metadata.

    Raises:
        FileNotFoundError: neither an existing file nor a registered name (lists the names).
        ValueError: unreadable file, or a state dict that does not fit its config.
    """
    config, state, metadata = load_weights(resolve(path))
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
