from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from crface.cli import main
from crface.train import trainer as T
from crface.train.trainer import TrainConfig, load_checkpoint, train
from crface.weights import build_model
from tests.test_train_data import make_synthetic

TINY = {
    "num_boxes": 32,
    "image_size": 64,
    "bpn_channels": 8,
    "bpn_layers": 3,
    "fpn_channels": 16,
    "head_channels": 16,
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny models gain nothing from intra-op threads, and lose a lot on a busy machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> tuple[Path, Path]:
    return make_synthetic(tmp_path_factory.mktemp("train_trainer"), num_images=10)


def _config(synth, **kw) -> TrainConfig:
    data, cache_root = synth
    base = {
        "model": TINY,
        "train_data": [{"root": str(data), "folds": [0, 1, 2, 3]}],
        "heldout": {"root": str(data), "folds": [4]},
        "cache_root": str(cache_root),
        "detectors": ["detA", "detB"],
        "variants": [[1.0, False], [2.0, False]],
        "batch_size": 4,
        "iterations": 6,
        "lr": 1e-2,
        "lr_final": 1e-3,
        "log_every": 1,
        "eval_every": 3,
        "checkpoint_every": 2,
        "device": "cpu",
    }
    return TrainConfig.from_dict({**base, **kw})


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def _strip_time(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "time"} for r in rows]


def test_loss_goes_down_and_run_files(synth, tmp_path) -> None:
    cfg = _config(synth, iterations=30, eval_every=15, checkpoint_every=15)
    result = train(cfg, tmp_path / "run", progress=False)
    assert result.finished and result.iteration == 30
    rows = _rows(tmp_path / "run")
    losses = [r["loss"] for r in rows if r["type"] == "train"]
    assert len(losses) == 30
    assert sum(losses[-5:]) < 0.8 * sum(losses[:5])
    lrs = [r["lr"] for r in rows if r["type"] == "train"]
    assert lrs[0] == pytest.approx(1e-2) and lrs[-1] == pytest.approx(1e-3, rel=0.1)
    assert all(a > b for a, b in itertools.pairwise(lrs))
    assert rows[0]["type"] == "baseline" and set(rows[0]["ap"]) == {"detA", "detB"}
    evals = [r for r in rows if r["type"] == "eval"]
    assert [r["iteration"] for r in evals] == [15, 30]
    # The fake detectors rank false positives first: the ranker learns to fix that.
    assert set(evals[-1]["ap"]) == {"easy", "medium", "hard"}
    assert evals[-1]["ap"]["hard"] > evals[-1]["baseline_ap"]["hard"]
    with Image.open(tmp_path / "run" / "curve.png") as im:
        assert im.size[0] > 300
    model, meta = build_model(result.final_weights)
    assert meta["trained"] is True and meta["detectors"] == ["detA", "detB"]
    assert meta["heldout"]["iteration"] == 30 and meta["config"]["iterations"] == 30
    assert meta["training_data"][0]["images"] == 8 and model.config.num_boxes == 32
    assert result.best_weights is not None
    assert build_model(result.best_weights)[1]["heldout"]["metric"] == max(
        r["metric"] for r in evals
    )
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")  # weights_only=True inside
    assert ckpt["iteration"] == 30
    assert json.loads((tmp_path / "run" / "config.json").read_text()) == cfg.to_dict()


def _assert_same_run(a: Path, b: Path) -> None:
    wa, wb = (
        torch.load(a / "final.pt", weights_only=True),
        torch.load(b / "final.pt", weights_only=True),
    )
    assert wa["state_dict"].keys() == wb["state_dict"].keys()
    for k, v in wa["state_dict"].items():
        assert torch.equal(v, wb["state_dict"][k]), k
    ca, cb = load_checkpoint(a / "last.pt"), load_checkpoint(b / "last.pt")
    for (ka, sa), (kb, sb) in zip(
        ca["optimizer"]["state"].items(), cb["optimizer"]["state"].items()
    ):
        assert ka == kb and all(torch.equal(sa[x], sb[x]) for x in sa)
    assert ca["scheduler"] == cb["scheduler"]
    assert _strip_time(_rows(a)) == _strip_time(_rows(b))


def test_exact_resume_after_stop_and_after_crash(synth, tmp_path, monkeypatch) -> None:
    cfg = _config(synth, iterations=7, augment={"crop_prob": 0.8, "flip_prob": 0.5})
    full = train(cfg, tmp_path / "full", progress=False)
    assert full.finished

    part = train(cfg, tmp_path / "stopped", stop_after=3, progress=False)
    assert not part.finished and part.iteration == 3 and part.final_weights is None
    assert load_checkpoint(tmp_path / "stopped" / "last.pt")["iteration"] == 3
    assert train(cfg, tmp_path / "stopped", progress=False).finished
    _assert_same_run(tmp_path / "full", tmp_path / "stopped")

    # A crash after iteration 5: the checkpoint of iteration 4 is the restart point and the
    # log row the crashed process wrote for iteration 5 is replaced.
    make_loss, calls = T.make_loss, []

    def crashing(*args, **kw):
        fn = make_loss(*args, **kw)

        def wrapped(*a, **k):
            calls.append(1)
            if len(calls) == 6:
                raise KeyboardInterrupt
            return fn(*a, **k)

        return wrapped

    monkeypatch.setattr(T, "make_loss", crashing)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "crashed", progress=False)
    monkeypatch.setattr(T, "make_loss", make_loss)
    assert max(r["iteration"] for r in _rows(tmp_path / "crashed")) == 5
    assert load_checkpoint(tmp_path / "crashed" / "last.pt")["iteration"] == 4
    train(cfg, tmp_path / "crashed", progress=False)
    _assert_same_run(tmp_path / "full", tmp_path / "crashed")

    # Resuming under another config is refused; starting over is allowed.
    with pytest.raises(ValueError, match=r"different config \(seed differ"):
        train(dataclasses.replace(cfg, seed=1), tmp_path / "crashed", progress=False)
    again = train(
        dataclasses.replace(cfg, seed=1, iterations=2),
        tmp_path / "crashed",
        resume=False,
        progress=False,
    )
    assert again.finished and again.iteration == 2
    assert max(r["iteration"] for r in _rows(tmp_path / "crashed")) == 2


@pytest.mark.parametrize("loss", ["ce", "smooth_l1"])
def test_regression_losses_train_without_heldout(synth, tmp_path, loss: str) -> None:
    cfg = _config(synth, loss=loss, heldout=None, iterations=2)
    result = train(cfg, tmp_path / "run", progress=False)
    assert result.finished and result.best_weights is None and result.last_eval is None
    assert (tmp_path / "run" / "curve.png").is_file()
    assert all(r["type"] == "train" for r in _rows(tmp_path / "run"))


def test_config_validation(synth, tmp_path) -> None:
    with pytest.raises(
        ValueError, match=r"unknown TrainConfig keys \['iters'\]; valid: .*'iterations'"
    ):
        _config(synth, iters=3)
    with pytest.raises(ValueError, match=r"unknown data spec keys \['fold'\]"):
        _config(synth, heldout={"root": "x", "fold": [4]})
    with pytest.raises(ValueError, match="unknown model preset 'tiny'"):
        _config(synth, model="tiny")
    with pytest.raises(ValueError, match=r"unknown loss 'hinge'"):
        _config(synth, loss="hinge")
    with pytest.raises(ValueError, match="lr_final"):
        _config(synth, lr_final=1.0)
    with pytest.raises(ValueError, match="variants"):
        _config(synth, variants=[[1.0]])
    with pytest.raises(ValueError, match="held-out image"):
        train(
            _config(synth, heldout={"root": str(synth[0]), "folds": [0]}), tmp_path, progress=False
        )
    path = tmp_path / "c.json"
    path.write_text("{")
    with pytest.raises(ValueError, match="invalid JSON"):
        TrainConfig.from_file(path)
    assert _config(synth, model={"preset": "small", "num_boxes": 8}).ranker_config().num_boxes == 8


def test_the_documented_recipe_is_the_shipped_models() -> None:
    """docs/training.md names configs/crop_floor_fold4.json as crface-small's recipe."""
    from crface.weights import build_model

    cfg = TrainConfig.from_file(
        Path(__file__).resolve().parents[1] / "configs" / "crop_floor_fold4.json"
    )
    shipped = TrainConfig.from_dict(build_model("crface-small")[1]["training_config"])
    assert cfg == shipped
    assert cfg.ranker_config().head == "crop" and cfg.heldout.folds == (4,)


def test_cli_train_smoke(synth, tmp_path, capsys) -> None:
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(_config(synth, iterations=50).to_dict()))
    run = tmp_path / "run"
    args = [
        "train",
        "--config",
        str(path),
        "--run-dir",
        str(run),
        "--iterations",
        "2",
        "--no-progress",
    ]
    assert main([*args, "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "trained 2/2 iterations" in out and "final weights" in out and "held-out AP" in out
    assert load_checkpoint(run / "last.pt")["iteration"] == 2
    path.write_text(json.dumps({"detectors": ["a"]}))
    assert main([*args, "--no-resume"]) == 2
    assert "train_data" in capsys.readouterr().err


def test_worker_processes_read_the_same_items(synth, tmp_path) -> None:
    cfg = _config(synth, heldout=None, iterations=2, augment={"crop_prob": 0.8})
    train(cfg, tmp_path / "inline", progress=False)
    train(dataclasses.replace(cfg, num_workers=2), tmp_path / "workers", progress=False)
    a = torch.load(tmp_path / "inline" / "final.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "workers" / "final.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(v, b[k]) for k, v in a.items())


def test_init_backbone_and_freeze(synth, tmp_path) -> None:
    from crface.backbones import MobileNetV1

    donor = MobileNetV1(0.25)
    for p in donor.parameters():
        torch.nn.init.normal_(p)
    # Pytorch_Retinaface layout: the body under "body.", other heads beside it, DataParallel prefix.
    state = {f"module.body.{k}": v for k, v in donor.state_dict().items()}
    state["module.ClassHead.0.conv1x1.weight"] = torch.zeros(4, 64, 1, 1)
    ckpt = tmp_path / "retina.pth"
    torch.save(state, ckpt)
    model = {**TINY, "width_mult": 0.25, "input_norm": "retinaface"}
    cfg = _config(synth, model=model, init_backbone=str(ckpt), freeze_backbone=True, heldout=None)
    result = train(cfg, tmp_path / "run", progress=False)
    trained, _ = build_model(result.final_weights)
    # Frozen: weights and BatchNorm running statistics are the donor's, bit for bit.
    for k, v in donor.state_dict().items():
        assert torch.equal(trained.backbone.state_dict()[k], v), k
    assert trained.head_fc[0].weight.abs().sum() > 0  # the rest did train (it starts at zero)
    torch.save({"x": torch.zeros(1)}, tmp_path / "bad.pth")
    bad = _config(synth, model=model, init_backbone=str(tmp_path / "bad.pth"))
    with pytest.raises(ValueError, match="no 'body"):
        train(bad, tmp_path / "r2", progress=False)


def test_residual_penalty(synth, tmp_path) -> None:
    from crface.train.data import RankingItem

    boxes = torch.zeros(1, 3, 5)
    boxes[0, :2, 2] = 0.1  # two real rows, one padding row
    boxes[0, :, 4] = torch.tensor([0.5, 0.2, 0.0])
    valid = boxes[..., 2] > 0
    item = RankingItem(torch.zeros(1, 3, 8, 8), boxes, torch.zeros(1, 3), valid, valid.float())
    refined = torch.tensor([[0.7, 0.2, 0.9]])  # the padding row's value must not count
    assert float(T.residual_penalty(refined, item)) == pytest.approx(0.2**2 / 2)
    with pytest.raises(ValueError, match="residual_penalty must be >= 0"):
        _config(synth, residual_penalty=-1.0)
    train(_config(synth, residual_penalty=5.0, heldout=None), tmp_path / "run", progress=False)


def test_cluster_pairs_train_and_take_the_rank_loss_options(synth, tmp_path) -> None:
    with pytest.raises(ValueError, match="cluster_pairs must be >= 0"):
        _config(synth, cluster_pairs=-1.0)
    cfg = _config(synth, cluster_pairs=1.0, heldout=None, loss_params={"floor": 0.5, "scale": 4})
    assert T._rival_options(cfg) == {"scale": 4, "floor": 0.5}
    result = train(cfg, tmp_path / "run", progress=False)
    rows = [json.loads(line) for line in (result.run_dir / "log.jsonl").read_text().splitlines()]
    assert result.finished and all(r["loss"] > 0 for r in rows if r["type"] == "train")


def test_pair_scope_batch_merges_images_in_confidence_order(synth) -> None:
    from crface.train.data import RankingItem

    boxes = torch.zeros(2, 3, 5)
    boxes[:, :2, 2] = 0.1  # two real rows per image, one padding row
    boxes[..., 4] = torch.tensor([[0.9, 0.3, 0.0], [0.6, 0.5, 0.0]])
    valid = boxes[..., 2] > 0
    oracle = torch.tensor([[0.8, 0.0, 0.0], [0.0, 0.7, 0.0]])
    item = RankingItem(torch.zeros(2, 3, 8, 8), boxes, oracle, valid, valid.float())
    refined = boxes[..., 4] + 0.01
    r, o, v, w = T._pair_scope("batch", refined, item)
    assert r.shape == (1, 6)
    assert torch.allclose(r[0, :4], torch.tensor([0.91, 0.61, 0.51, 0.31]))
    assert o[0, :4].tolist() == pytest.approx([0.8, 0.0, 0.7, 0.0])
    assert v[0].tolist() == [True] * 4 + [False] * 2 and w.shape == (1, 6)
    assert T._pair_scope("image", refined, item)[0] is refined
    with pytest.raises(ValueError, match="pair_scope must be one of"):
        _config(synth, pair_scope="global")


@pytest.mark.parametrize("head", ["rows", "crop"])
def test_backbone_free_heads_train(synth, tmp_path, head: str) -> None:
    model = {**TINY, "head": head}
    result = train(_config(synth, model=model, heldout=None), tmp_path / "run", progress=False)
    trained, _ = build_model(result.final_weights)
    assert trained.backbone is None
    assert trained.roi_mlp[-1].weight.abs().sum() > 0  # it trained (it starts at zero)
    with pytest.raises(ValueError, match=f"head '{head}' has no backbone"):
        _config(synth, model=model, freeze_backbone=True)
