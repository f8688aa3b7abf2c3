from __future__ import annotations

import json

import pytest
import torch

import crface
from crface import weights as W
from crface.refiner import Refiner
from tests.helpers import random_model


@pytest.mark.parametrize("name", ["crface-small", "crface-boxes"])
def test_list_weights_has_shipped_weights_with_checksum(name: str) -> None:
    row = {r["name"]: r for r in crface.list_weights()}[name]
    assert row["size"] == W.ASSETS.joinpath(f"{name}.pt").stat().st_size
    assert row["sha256"] == W.sha256_of(W.ASSETS / f"{name}.pt")
    assert row["size"] < 10_000_000 and row["trained"] is True


@pytest.mark.parametrize("half", [False, True])
def test_save_load_round_trip(tmp_path, half: bool) -> None:
    model = random_model()
    path = W.save_weights(
        tmp_path / "m.pt", model, {"trained": True, "detectors": ["x"]}, half=half
    )
    config, _, meta = W.load_weights(path)
    assert config == model.config and meta == {"trained": True, "detectors": ["x"]}
    loaded, _ = W.build_model(path)
    tol = 1e-3 if half else 0.0
    for k, v in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v, atol=tol, rtol=tol, check_dtype=False)
    assert Refiner.load(path, device="cpu").metadata["detectors"] == ["x"]


def test_corrupt_truncated_and_foreign_files_raise_naming_path(tmp_path) -> None:
    path = W.save_weights(tmp_path / "m.pt", random_model())
    data = path.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.pt").write_bytes(b"\x00garbage" * 100)
    torch.save({"hello": torch.zeros(1)}, tmp_path / "foreign.pt")
    for name, match in [
        ("trunc.pt", "cannot read"),
        ("junk.pt", "cannot read"),
        ("foreign.pt", "not a crface"),
    ]:
        with pytest.raises(ValueError, match=match) as info:
            Refiner.load(tmp_path / name)
        assert name in str(info.value)


def test_state_dict_not_matching_config_raises(tmp_path) -> None:
    path = W.save_weights(tmp_path / "m.pt", random_model())
    payload = torch.load(path, weights_only=True)
    payload["config"]["fpn_channels"] = 32
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="do not match their config"):
        Refiner.load(tmp_path / "bad.pt")


def test_unknown_format_version_raises(tmp_path) -> None:
    path = W.save_weights(tmp_path / "m.pt", random_model())
    payload = torch.load(path, weights_only=True)
    payload["format_version"] = 99
    torch.save(payload, path)
    with pytest.raises(ValueError, match="format_version 99"):
        W.load_weights(path)


@pytest.fixture
def fake_registry(tmp_path, monkeypatch):
    path = W.save_weights(tmp_path / "assets" / "tiny.pt", random_model(), {"trained": True})
    reg = {
        "tiny": {
            "file": "tiny.pt",
            "sha256": W.sha256_of(path),
            "size": path.stat().st_size,
            "description": "test",
            "trained": True,
        }
    }
    (tmp_path / "assets" / "registry.json").write_text(json.dumps(reg))
    monkeypatch.setattr(W, "ASSETS", tmp_path / "assets")
    monkeypatch.setattr(W, "REGISTRY_FILE", tmp_path / "assets" / "registry.json")
    return path


def test_registry_checksum_verified(fake_registry) -> None:
    assert Refiner.load("tiny", device="cpu").config.num_boxes == 16
    data = fake_registry.read_bytes()
    fake_registry.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    with pytest.raises(
        ValueError, match=r"sha256 mismatch for 'tiny'.*Registered names: \['tiny'\]"
    ):
        Refiner.load("tiny")


def test_registered_file_missing(fake_registry) -> None:
    fake_registry.unlink()
    with pytest.raises(FileNotFoundError, match=r"tiny\.pt"):
        Refiner.load("tiny")


def test_unknown_name_lists_registered(fake_registry) -> None:
    with pytest.raises(FileNotFoundError, match=r"registered names: \['tiny'\]"):
        W.resolve("nope")


def test_register_weights_writes_entry(fake_registry, tmp_path) -> None:
    src = W.save_weights(tmp_path / "other.pt", random_model(seed=3), {"trained": False})
    entry = W.register_weights("other", src, "another")
    assert entry.trained is False and entry.path.is_file()
    assert {r["name"] for r in W.list_weights()} == {"tiny", "other"}
    assert W.resolve("other") == entry.path
