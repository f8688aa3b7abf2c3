from __future__ import annotations

import json

import pytest
import torch

import crface
from crface import weights as W
from crface.model import ConfidenceRanker
from crface.refiner import Refiner
from tests.helpers import SHIPPED_WEIGHTS, load_script, random_model


@pytest.mark.parametrize("name", SHIPPED_WEIGHTS)
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
    payload["checksum"] = W.checksum(payload)
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="do not match their config"):
        Refiner.load(tmp_path / "bad.pt")


def test_unknown_format_version_raises(tmp_path) -> None:
    path = W.save_weights(tmp_path / "m.pt", random_model())
    payload = torch.load(path, weights_only=True)
    payload["format_version"] = 99
    payload["checksum"] = W.checksum(payload)
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


def test_build_model_takes_a_name_and_names_the_valid_ones(fake_registry) -> None:
    model, _ = W.build_model("tiny")
    assert isinstance(model, ConfidenceRanker)
    with pytest.raises(FileNotFoundError, match=r"'nope\.pt' is neither .* \['tiny'\]"):
        W.build_model("nope.pt")  # not "truncated or corrupt": there is no such file


def test_register_weights_writes_entry(fake_registry, tmp_path) -> None:
    src = W.save_weights(tmp_path / "other.pt", random_model(seed=3), {"trained": False})
    entry = W.register_weights("other", src, "another")
    assert entry.trained is False and entry.path.is_file()
    assert {r["name"] for r in W.list_weights()} == {"tiny", "other"}
    assert W.resolve("other") == entry.path


# ----------------------------------------------------------------------------- issue 12


def _flip_tensor_byte(path) -> None:
    """Flip one byte inside the largest tensor record of a torch.save zip (not its headers)."""
    import struct
    import zipfile

    with zipfile.ZipFile(path) as zf:
        info = max((i for i in zf.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack(
        "<HH", data[info.header_offset + 26 : info.header_offset + 30]
    )
    at = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["garbage.pt", "trunc.pt", "pickled.pt"])
def test_unreadable_weights_give_one_line_without_torch_advice(tmp_path, name) -> None:
    import pickle

    path = W.save_weights(tmp_path / "m.pt", random_model())
    data = path.read_bytes()
    content = {
        "garbage.pt": b"\x00garbage" * 100,
        "trunc.pt": data[: len(data) // 2],
        "pickled.pt": pickle.dumps({"fn": print}),
    }[name]
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError) as info:
        Refiner.load(tmp_path / name, device="cpu")
    message = str(info.value)
    assert name in message and "\n" not in message
    assert "weights_only" not in message and "arbitrary code" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_flipped_byte_fails_the_embedded_checksum(tmp_path) -> None:
    path = W.save_weights(tmp_path / "m.pt", random_model(), {"trained": True})
    Refiner.load(path, device="cpu")
    _flip_tensor_byte(path)
    with pytest.raises(ValueError, match=r"m\.pt.*embedded sha256 checksum"):
        Refiner.load(path, device="cpu")
    with pytest.raises(ValueError, match="embedded sha256 checksum"):
        W.load_weights(path)


def test_named_weights_name_the_check_that_failed(fake_registry) -> None:
    _flip_tensor_byte(fake_registry)
    with pytest.raises(ValueError, match="registry"):
        Refiner.load("tiny")
    reg = json.loads(W.REGISTRY_FILE.read_text())
    reg["tiny"]["sha256"] = W.sha256_of(fake_registry)  # a registry made from the corrupt file
    W.REGISTRY_FILE.write_text(json.dumps(reg))
    with pytest.raises(ValueError, match="embedded sha256 checksum"):
        Refiner.load("tiny")


def _strip_checksum(path) -> None:
    payload = torch.load(path, weights_only=True)
    del payload["checksum"]
    torch.save(payload, path)


def test_files_without_checksum_warn_by_path_and_pass_by_name(fake_registry, tmp_path) -> None:
    old = W.save_weights(tmp_path / "old.pt", random_model())
    _strip_checksum(old)
    with pytest.warns(UserWarning, match=r"old\.pt carries no embedded checksum.*add_checksum"):
        Refiner.load(old, device="cpu")
    _strip_checksum(fake_registry)
    reg = json.loads(W.REGISTRY_FILE.read_text())
    reg["tiny"]["sha256"] = W.sha256_of(fake_registry)
    W.REGISTRY_FILE.write_text(json.dumps(reg))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Refiner.load("tiny", device="cpu")  # the registry's sha256 vouches for it
    W.add_checksum(old)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Refiner.load(old, device="cpu")


@pytest.mark.parametrize("name", SHIPPED_WEIGHTS)
def test_shipped_weights_embed_their_checksum(name) -> None:
    payload = torch.load(W.ASSETS / f"{name}.pt", weights_only=True)
    assert payload["checksum"] == W.checksum(payload)


def test_with_config_changes_inference_fields_and_keeps_the_tensors(tmp_path) -> None:
    tool = load_script("tools/with_config.py")
    model = random_model(num_boxes=8, image_size=64, head="crop")
    src = W.save_weights(tmp_path / "src.pt", model, {"trained": True, "detectors": ["x"]})
    out = tool.with_config(src, tmp_path / "out.pt", {"crop_sampling": 1})
    derived, meta = W.build_model(out)
    assert derived.config.crop_sampling == 1 and model.config.crop_sampling == 2
    for k, v in model.state_dict().items():
        assert torch.equal(derived.state_dict()[k], v), k
    assert meta["derived"] == {"from": W.sha256_of(src), "set": {"crop_sampling": 1}}
    assert meta["detectors"] == ["x"]
    with pytest.raises(ValueError, match="changes the shape of trained parameters"):
        tool.with_config(src, tmp_path / "bad.pt", {"crop_channels": 16})
    with pytest.raises(ValueError, match=r"unknown RankerConfig fields \['sampling'\]"):
        tool.with_config(src, tmp_path / "bad.pt", {"sampling": 1})
    assert tool.parse_change("crop_context=2.4") == ("crop_context", 2.4)
    assert tool.parse_change("input_norm=imagenet") == ("input_norm", "imagenet")
