from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from crface.cli import main
from crface.io import read_detections, write_detections
from crface.types import Detections
from tests.helpers import SHIPPED_WEIGHTS, random_boxes


@pytest.fixture
def image_file(tmp_path):
    path = tmp_path / "img.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8)).save(
        path
    )
    return path


def test_weights_lists_shipped_weights(capsys) -> None:
    assert main(["weights"]) == 0
    out = capsys.readouterr().out
    assert "crface-small" in out and "crface-boxes" in out
    assert main(["weights", "--json"]) == 0
    names = {row["name"] for row in json.loads(capsys.readouterr().out)}
    assert names == set(SHIPPED_WEIGHTS)


def test_demo_writes_png_and_table(tmp_path, capsys) -> None:
    out = tmp_path / "demo.png"
    assert main(["demo", "--out", str(out), "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "detections >= 0.5" in text and "rank before" in text
    assert Image.open(out).size[0] > 1000


def test_demo_says_whether_the_two_sides_differ(tmp_path, capsys) -> None:
    out = str(tmp_path / "demo.png")
    assert main(["demo", "--out", out, "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    # the bundled photo at 0.5: the same six faces; the demo names a threshold where they differ
    assert "the two sides are identical at threshold 0.5 (6 faces each)" in text
    hint = re.search(r"lower, they differ: at threshold ([\d.]+): .*\(--draw-threshold \1\)", text)
    assert hint, text
    lower = ["--draw-threshold", hint.group(1)]
    assert main(["demo", "--out", out, "--device", "cpu", *lower]) == 0
    text = capsys.readouterr().out
    assert f"at threshold {hint.group(1)}: " in text and " dropped" in text
    assert "identical" not in text and "lower, they differ" not in text


def test_demo_strength_options(tmp_path, capsys) -> None:
    out = str(tmp_path / "demo.png")
    assert main(["demo", "--out", out, "--device", "cpu", "--strength", "0"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if "(" in line]
    table = [r for r in rows if r[0].isdigit()]
    assert table and all(r[-3] == r[-2] for r in table)  # strength 0: refined == detector
    assert main(["demo", "--out", out, "--device", "cpu", "--for-detector", "nope"]) == 2
    assert "no strength stored for detector 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".json", ".npy", ".txt"])
def test_rerank_round_trip(tmp_path, image_file, suffix, capsys) -> None:
    boxes, scores = random_boxes(20, 120, 90)
    src = tmp_path / f"cands{suffix}"
    write_detections(src, Detections(boxes, scores), image_name="img.png")
    out, png = tmp_path / f"out{suffix}", tmp_path / "draw.png"
    assert (
        main(
            [
                "rerank",
                str(image_file),
                "--detections",
                str(src),
                "--out",
                str(out),
                "--draw",
                str(png),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert "20 candidates" in capsys.readouterr().out
    got = read_detections(out)
    assert len(got) > 0 and png.is_file()
    assert torch.all(got.scores[:-1] >= got.scores[1:])


def test_read_detections_formats(tmp_path) -> None:
    rows = [[10, 20, 30, 40, 0.9], [1, 2, 3, 4, 0.5]]
    (tmp_path / "a.json").write_text(json.dumps(rows))
    (tmp_path / "b.json").write_text(
        json.dumps({"boxes": [r[:4] for r in rows], "scores": [0.9, 0.5], "box_format": "xywh"})
    )
    np.save(tmp_path / "c.npy", np.array(rows))
    np.savez(tmp_path / "d.npz", boxes=np.array(rows)[:, :4], scores=np.array([0.9, 0.5]))
    (tmp_path / "e.txt").write_text("# comment\n10 20 30 40 0.9\n1 2 3 4 0.5\n")
    (tmp_path / "f.txt").write_text("img\n2\n10 20 20 20 0.9\n1 2 2 2 0.5\n")
    xyxy = [[10.0, 20.0, 30.0, 40.0], [1.0, 2.0, 3.0, 4.0]]
    for name in ("a.json", "c.npy", "d.npz", "e.txt"):
        assert read_detections(tmp_path / name).boxes.tolist() == xyxy, name
    assert read_detections(tmp_path / "b.json").boxes.tolist() == [[10, 20, 40, 60], [1, 2, 4, 6]]
    assert read_detections(tmp_path / "f.txt").boxes.tolist() == [[10, 20, 30, 40], [1, 2, 3, 4]]
    assert read_detections(tmp_path / "a.json", box_format="xywh").boxes.tolist()[0] == [
        10,
        20,
        40,
        60,
    ]


@pytest.mark.parametrize(
    ("content", "suffix", "match"),
    [
        ("img\n3\n1 2 3 4 0.5\n", ".txt", "says 3 boxes"),
        ("1 2 three 4 0.5\n", ".txt", "cannot parse line"),
        ("{not json", ".json", "invalid JSON"),
        ('{"boxes": []}', ".json", "needs 'boxes' and 'scores'"),
        ("[[1, 2, 3]]", ".json", "rows of 5 numbers"),
        ("x", ".csv", "unsupported"),
    ],
)
def test_bad_detection_files(tmp_path, content, suffix, match) -> None:
    path = tmp_path / f"bad{suffix}"
    path.write_text(content)
    with pytest.raises(ValueError, match=match):
        read_detections(path)


@pytest.mark.parametrize(
    "argv_tail",
    [
        ["--detections", "missing.json", "--out", "o.json"],
        ["--detections", "{cands}", "--out", "o.csv"],
        ["--detections", "{cands}", "--out", "o.json", "--weights", "no-such-model"],
    ],
)
def test_rerank_errors_exit_2_with_one_line(tmp_path, image_file, argv_tail, capsys) -> None:
    cands = tmp_path / "c.npy"
    np.save(cands, np.array([[1, 1, 20, 20, 0.5]]))
    argv = ["rerank", str(image_file)] + [a.format(cands=cands) for a in argv_tail]
    argv = [str(tmp_path / a) if a in ("o.json", "o.csv") else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("crface rerank: error:") and "\n" not in err


def test_bad_scores_in_file_exit_2(tmp_path, image_file, capsys) -> None:
    np.save(tmp_path / "c.npy", np.array([[1, 1, 20, 20, 7.0]]))
    assert (
        main(
            [
                "rerank",
                str(image_file),
                "--detections",
                str(tmp_path / "c.npy"),
                "--out",
                str(tmp_path / "o.json"),
            ]
        )
        == 2
    )
    assert "probabilities" in capsys.readouterr().err


def test_python_m_crface_is_the_same_command() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "crface", "weights"], capture_output=True, text=True, check=False
    )
    assert res.returncode == 0 and "crface-small" in res.stdout
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "crface",
            "rerank",
            "nofile.png",
            "--detections",
            "x.json",
            "--out",
            "o.json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 2 and res.stderr.count("\n") == 1


def test_export_then_rerank_on_onnxruntime(tmp_path, image_file, capsys) -> None:
    pytest.importorskip("onnxruntime")
    onnx_path = tmp_path / "ranker.onnx"
    assert main(["export", "--out", str(onnx_path)]) == 0
    np.save(tmp_path / "c.npy", np.array([[1, 1, 20, 20, 0.5], [2, 2, 21, 21, 0.4]]))
    assert (
        main(
            [
                "rerank",
                str(image_file),
                "--detections",
                str(tmp_path / "c.npy"),
                "--out",
                str(tmp_path / "o.json"),
                "--weights",
                str(onnx_path),
                "--backend",
                "onnxruntime",
            ]
        )
        == 0
    )
    assert read_detections(tmp_path / "o.json").indices.tolist() == [0]


def test_cli_errors_name_flags_not_python_keywords(tmp_path, image_file, capsys) -> None:
    np.save(tmp_path / "c.npy", np.array([[50, 40, 20, 25, 0.9]]))  # x y w h read as xyxy
    base = ["rerank", str(image_file), "--detections", str(tmp_path / "c.npy")]
    base += ["--out", str(tmp_path / "o.json")]
    assert main(base) == 2
    err = capsys.readouterr().err
    assert "--box-format xywh" in err and "box_format=" not in err and "invalid=" not in err
    assert main([*base, "--for-detector", "nope"]) == 2
    err = capsys.readouterr().err
    assert "--strength" in err and "strength=" not in err


def test_cli_warnings_name_flags(tmp_path, image_file, capsys) -> None:
    np.save(tmp_path / "c.npy", np.array([[5, 5, 5, 30, 0.9], [10, 10, 40, 40, 0.8]]))
    argv = ["rerank", str(image_file), "--detections", str(tmp_path / "c.npy")]
    assert main([*argv, "--out", str(tmp_path / "o.json")]) == 0
    err = capsys.readouterr().err
    assert "crface rerank: warning: dropped 1 of 2" in err and "--invalid raise" in err
    assert "invalid=" not in err
