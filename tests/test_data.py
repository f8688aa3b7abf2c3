"""Dataset readers: the shared layout, the official WIDER text and .mat ground truth."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from crface.data import (
    SETTINGS,
    FaceDataset,
    Sample,
    hash_fold,
    load_dataset,
    load_wider_mat,
    load_wider_txt,
)
from crface.eval import evaluate

LABELS = """\
0--Parade/a.jpg
2
10 20 30 40 2 0 0 0 0 0
5.5 6.25 0 8 1 0 0 1 0 0

0--Parade/empty_dummy.jpg
0
0 0 0 0 0 0 0 0 0 0
0--Parade/empty_bare.jpg
0
1--Handshaking/b.jpg
1
1 2 3 4
1--Handshaking/last_empty.jpg
0
"""


def _write(root, labels=LABELS, splits=None, folds=None, sizes=None):
    root.mkdir(parents=True, exist_ok=True)
    (root / "labels.txt").write_text(labels)
    if splits is not None or folds is not None:
        (root / "splits").mkdir(exist_ok=True)
    for setting, text in (splits or {}).items():
        (root / "splits" / f"{setting}.txt").write_text(text)
    if folds is not None:
        (root / "splits" / "folds.txt").write_text(folds)
    if sizes is not None:
        (root / "image_sizes.tsv").write_text(sizes)
    return root


NAMES = [
    "0--Parade/a.jpg",
    "0--Parade/empty_dummy.jpg",
    "0--Parade/empty_bare.jpg",
    "1--Handshaking/b.jpg",
    "1--Handshaking/last_empty.jpg",
]
SPLITS = {
    "easy": "0--Parade/a.jpg 0\n0--Parade/empty_dummy.jpg\n0--Parade/empty_bare.jpg \n"
    "1--Handshaking/b.jpg\n1--Handshaking/last_empty.jpg\n",
    "medium": "1--Handshaking/b.jpg 0\n0--Parade/a.jpg 0\n0--Parade/empty_dummy.jpg\n"
    "0--Parade/empty_bare.jpg\n1--Handshaking/last_empty.jpg\n",
    "hard": "0--Parade/a.jpg 0 1\n0--Parade/empty_dummy.jpg\n0--Parade/empty_bare.jpg\n"
    "1--Handshaking/b.jpg 0\n1--Handshaking/last_empty.jpg\n",
}
FOLDS = "".join(f"{n} {i % 2}\n" for i, n in enumerate(NAMES))


def test_labels_parse_counts_dummy_rows_and_attributes(tmp_path):
    ds = load_dataset(_write(tmp_path / "set"))
    assert ds.names == NAMES
    assert [len(s) for s in ds] == [2, 0, 0, 1, 0]
    a = ds[0]
    assert a.boxes.dtype == torch.float32
    # x y w h -> x1 y1 x2 y2; the zero-width face is kept
    assert a.boxes.tolist() == [[10, 20, 40, 60], [5.5, 6.25, 5.5, 14.25]]
    assert a.image_path == tmp_path / "set" / "images" / "0--Parade" / "a.jpg"
    assert ds.settings == ("all",)
    assert not ds.has_splits
    for s in SETTINGS:  # without splits every face counts
        assert a.keep[s].tolist() == [True, True]
    # Without splits/folds.txt the fold is the stable name hash (4: the held-out part).
    assert [s.fold for s in ds] == [hash_fold(n) for n in NAMES]
    assert a.image_size is None
    assert ds.num_faces == 3
    assert ds.folds == tuple(sorted({hash_fold(n) for n in NAMES}))


def test_labels_crlf_and_trailing_spaces(tmp_path):
    root = _write(tmp_path / "set", LABELS.replace("\n", " \r\n"))
    assert [len(s) for s in load_dataset(root)] == [2, 0, 0, 1, 0]


@pytest.mark.parametrize(
    ("labels", "where", "message"),
    [
        ("a.jpg\ntwo\n", ":2:", "face count"),
        ("a.jpg\n-1\n", ":2:", "face count"),
        ("a.jpg\n1.0\n1 2 3 4\n", ":2:", "face count"),
        ("a.jpg\n1\n1 2 3\n", ":3:", "x y w h"),
        ("a.jpg\n1\n1 2 three 4\n", ":3:", "x y w h"),
        ("a.jpg\n1\n1 2 nan 4\n", ":3:", "x y w h"),
        ("a.jpg\n2\n1 2 3 4\n", "", "ends after 1 of the 2 rows"),
        ("a.jpg\n", ":1:", "no face-count line"),
        ("a.jpg\n1\n1 2 3 4\n5 6 7 8\n", ":4:", "expected an image name"),
        ("a.jpg\n0\nb.jpg\n0\na.jpg\n0\n", ":5:", "duplicate image"),
    ],
)
def test_labels_malformed(tmp_path, labels, where, message):
    root = _write(tmp_path / "set", labels)
    with pytest.raises(ValueError, match=message) as info:
        load_dataset(root)
    assert f"labels.txt{where}" in str(info.value)


def test_splits_folds_and_sizes(tmp_path):
    sizes = "path\torig_width\torig_height\twidth\theight\n0--Parade/a.jpg\t100\t80\t50\t40\n"
    ds = load_dataset(_write(tmp_path / "set", splits=SPLITS, folds=FOLDS, sizes=sizes))
    assert ds.has_splits
    assert ds.settings == SETTINGS
    a, b = ds.by_name("0--Parade/a.jpg"), ds.by_name("1--Handshaking/b.jpg")
    assert a.keep["easy"].tolist() == [True, False]
    assert a.keep["medium"].tolist() == [True, False]
    assert a.keep["hard"].tolist() == [True, True]
    assert b.keep["easy"].tolist() == [False]
    assert b.keep["medium"].tolist() == [True]
    assert a.image_size == (40, 50)  # (height, width) of the stored image
    assert b.image_size is None
    assert [s.fold for s in ds] == [0, 1, 0, 1, 0]
    assert ds.folds == (0, 1)
    train, test = ds.split_folds(1)
    assert test.names == [NAMES[1], NAMES[3]]
    assert train.names == [NAMES[0], NAMES[2], NAMES[4]]
    assert train.settings == SETTINGS
    with pytest.raises(ValueError, match="fold 7 not in dataset"):
        ds.split_folds(7)


@pytest.mark.parametrize(
    ("setting", "text", "message"),
    [
        ("easy", "0--Parade/a.jpg 2\n", r"easy.txt:1: face index 2 out of range"),
        ("easy", "0--Parade/a.jpg x\n", r"easy.txt:1: face indices must be"),
        ("easy", "\n0--Parade/zzz.jpg 0\n", r"easy.txt:2: image '0--Parade/zzz.jpg' is not in"),
        ("easy", "0--Parade/a.jpg 0\n0--Parade/a.jpg 0\n", r"easy.txt:2: duplicate line"),
        ("easy", "0--Parade/a.jpg 0\n", r"easy.txt: no line for 4 labelled image"),
        ("folds", FOLDS.replace(" 1\n", " one\n", 1), r"folds.txt:2: expected '<image> <fold>'"),
    ],
)
def test_splits_malformed(tmp_path, setting, text, message):
    splits = dict(SPLITS)
    folds = FOLDS
    if setting == "folds":
        folds = text
    else:
        splits[setting] = text
    with pytest.raises(ValueError, match=message):
        load_dataset(_write(tmp_path / "set", splits=splits, folds=folds))


def test_sizes_malformed(tmp_path):
    with pytest.raises(ValueError, match=r"image_sizes.tsv:1: expected a header"):
        load_dataset(_write(tmp_path / "a", sizes="name\tw\th\n"))
    with pytest.raises(ValueError, match=r"image_sizes.tsv:2: malformed row"):
        load_dataset(_write(tmp_path / "b", sizes="path\twidth\theight\n0--Parade/a.jpg\t5\n"))


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset folder not found"):
        load_dataset(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"labels file not found: .*empty.labels\.txt"):
        load_dataset(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match=r"incomplete difficulty splits: missing .*medium"):
        load_dataset(_write(tmp_path / "set", splits={"easy": SPLITS["easy"]}))
    with pytest.raises(FileNotFoundError, match="labels file not found"):
        load_wider_txt(tmp_path / "gt.txt")


def test_dataset_api(tmp_path):
    root = _write(tmp_path / "set", folds=FOLDS)
    (root / "images" / "0--Parade").mkdir(parents=True)
    Image.new("L", (6, 4), 128).save(root / "images" / "0--Parade" / "a.jpg")
    ds = load_dataset(root)
    assert ds.name == "set"
    assert ds.root == root
    assert "set" in repr(ds)
    assert "faces=2" in repr(ds[0])
    img = ds.load_image(0)
    assert img.shape == (4, 6, 3)
    assert img.dtype == np.uint8
    with pytest.raises(FileNotFoundError):
        ds.load_image(3)
    assert len(ds[1:3]) == 2
    assert isinstance(ds[1:3], FaceDataset)
    assert ds.subset([4, 0]).names == [NAMES[4], NAMES[0]]
    assert ds.subset(lambda s: len(s) > 0).names == [NAMES[0], NAMES[3]]
    assert NAMES[2] in ds
    assert "nope.jpg" not in ds
    assert ds[0] in ds
    with pytest.raises(KeyError, match="nope"):
        ds.by_name("nope.jpg")
    with pytest.raises(ValueError, match="has no folds"):
        FaceDataset([Sample("x.jpg", "x.jpg", torch.zeros(0, 4))]).split_folds(0)
    with pytest.raises(ValueError, match="duplicate image name"):
        FaceDataset([ds[0], ds[0]])
    with pytest.raises(TypeError, match="Sample objects"):
        FaceDataset(["a.jpg"])


def test_sample_validation():
    with pytest.raises(ValueError, match=r"shape \(M, 4\)"):
        Sample("a", "a", torch.zeros(3, 5))
    with pytest.raises(ValueError, match=r"keep\['easy'\] must be a bool mask of shape \(2,\)"):
        Sample("a", "a", torch.zeros(2, 4), {"easy": torch.ones(3, dtype=torch.bool)})
    with pytest.raises(ValueError, match="bool mask"):
        Sample("a", "a", torch.zeros(2, 4), {"easy": torch.ones(2)})
    with pytest.raises(ValueError, match="unknown keep settings"):
        Sample("a", "a", torch.zeros(2, 4), {"tiny": torch.ones(2, dtype=torch.bool)})
    s = Sample("a", "a", torch.zeros(0))
    assert s.boxes.shape == (0, 4)
    assert s.keep_mask("all").shape == (0,)
    with pytest.raises(ValueError, match="unknown setting"):
        s.keep_mask("tricky")


OFFICIAL_TXT = """\
0--Parade/0_Parade_a_1.jpg
2
345 211 4 4 2 0 0 0 2 0
1026 474 -2 23 2 0 0 0 2 0
0--Parade/0_Parade_b_2.jpg
1
0 0 0 0 0 0 0 0 0 0
1--Handshaking/1_Handshaking_c_3.jpg
1
10 10 20 30 0 0 0 0 0 0
"""


def _write_mat(gt_dir):
    sio = pytest.importorskip("scipy.io")
    gt_dir.mkdir()

    def cells(items):
        out = np.empty((len(items), 1), dtype=object)
        for i, item in enumerate(items):
            out[i, 0] = item
        return out

    events = cells(["0--Parade", "1--Handshaking"])
    files = cells([cells(["0_Parade_a_1", "0_Parade_b_2"]), cells(["1_Handshaking_c_3"])])
    boxes = cells(
        [
            cells([np.array([[345, 211, 4, 4], [1026, 474, -2, 23]]), np.zeros((1, 4), int)]),
            cells([np.array([[10, 10, 20, 30]])]),
        ]
    )
    keep = {"easy": ([1], [], [1]), "medium": ([1], [], [1]), "hard": ([1, 2], [], [1])}
    for key in ("face", *SETTINGS):
        mat = {"event_list": events, "file_list": files, "face_bbx_list": boxes}
        if key != "face":
            a, b, c = (np.array(k, dtype=np.uint8).reshape(-1, 1) for k in keep[key])
            mat["gt_list"] = cells([cells([a, b]), cells([c])])
        sio.savemat(gt_dir / f"wider_{key}_val.mat", mat)


def test_official_txt_and_mat_agree(tmp_path):
    (tmp_path / "gt.txt").write_text(OFFICIAL_TXT)
    txt = load_wider_txt(tmp_path / "gt.txt", images_dir=tmp_path / "WIDER_val" / "images")
    _write_mat(tmp_path / "ground_truth")
    mat = load_wider_mat(tmp_path)  # finds ground_truth/ below
    assert txt.names == mat.names
    assert txt.settings == ("all",)
    assert mat.settings == SETTINGS
    for a, b in zip(txt, mat, strict=True):
        torch.testing.assert_close(a.boxes, b.boxes)
    # Negative-size and all-zero placeholder rows are kept as boxes.
    assert mat[0].boxes.tolist() == [[345, 211, 349, 215], [1026, 474, 1024, 497]]
    assert mat[1].boxes.tolist() == [[0, 0, 0, 0]]
    assert mat[0].keep["easy"].tolist() == [True, False]
    assert mat[0].keep["hard"].tolist() == [True, True]
    assert mat[1].keep["hard"].tolist() == [False]
    assert txt[0].image_path == tmp_path / "WIDER_val" / "images" / "0--Parade" / "0_Parade_a_1.jpg"


def test_mat_errors(tmp_path):
    pytest.importorskip("scipy.io")
    with pytest.raises(FileNotFoundError, match=r"wider_face_val\.mat"):
        load_wider_mat(tmp_path)
    _write_mat(tmp_path / "gt")
    (tmp_path / "gt" / "wider_medium_val.mat").unlink()
    with pytest.warns(UserWarning, match=r"lacks wider_medium_val\.mat: those settings are not"):
        mat = load_wider_mat(tmp_path / "gt")
    assert mat.settings == ("easy", "hard")  # medium is not scored as if every face counted
    assert evaluate({}, mat, settings=("all", "easy")).num_images == 3
    with pytest.raises(
        ValueError, match=r"has no 'medium' split \(its settings: \('easy', 'hard'\)\)"
    ):
        evaluate({}, mat, settings=("medium",))
    for name in ("easy", "hard"):
        (tmp_path / "gt" / f"wider_{name}_val.mat").unlink()
    with pytest.warns(
        UserWarning, match="wider_easy_val.mat, wider_medium_val.mat, wider_hard_val.mat"
    ):
        assert load_wider_mat(tmp_path / "gt").settings == ("all",)


# ----------------------------------------------------------------------------- real data


@pytest.mark.shared
def test_wider_val200(shared_dir):
    ds = load_dataset(shared_dir / "data" / "wider_val200")
    assert load_dataset("wider_val200").names == ds.names  # a bare name looks in shared/data
    assert len(ds) == 200
    assert ds.num_faces == 4372
    assert ds.settings == SETTINGS
    kept = {s: sum(int(x.keep[s].sum()) for x in ds) for s in SETTINGS}
    assert 0 < kept["easy"] < kept["medium"] < kept["hard"] < 4372
    for x in ds:  # the official settings are nested
        assert not (x.keep["easy"] & ~x.keep["medium"]).any()
        assert not (x.keep["medium"] & ~x.keep["hard"]).any()
    assert ds.folds == (0, 1, 2, 3, 4)
    for k in ds.folds:
        train, test = ds.split_folds(k)
        assert len(test) > 0
        assert len(train) + len(test) == 200
    assert all(x.image_size == (416, 416) for x in ds)
    assert ds.load_image(0).shape == (416, 416, 3)
    assert ds.by_name("0--Parade/0_Parade_Parade_0_102.jpg").boxes[0].tolist() == pytest.approx(
        [327.44, 224.51, 337.19, 240.76]
    )


def _label_counts(labels):
    """(images, faces) counted straight from a WIDER-format labels.txt, independently of the reader."""
    lines = [ln.strip() for ln in labels.read_text().splitlines() if ln.strip()]
    starts = [i for i, ln in enumerate(lines) if ln.lower().endswith((".jpg", ".jpeg", ".png"))]
    return len(starts), sum(int(lines[i + 1]) for i in starts)


def _shared_set(shared_dir, name):
    root = shared_dir / "data" / name
    if not root.is_dir():
        pytest.skip(
            f"shared set {name} not present in {shared_dir / 'data'} (sets change between rounds)"
        )
    return root


@pytest.mark.shared
@pytest.mark.parametrize("name", ["facemask_kaggle", "roboflow_faces_gray", "wider_train"])
def test_other_shared_sets(shared_dir, name):
    root = _shared_set(shared_dir, name)
    ds = load_dataset(root)
    assert (len(ds), ds.num_faces) == _label_counts(root / "labels.txt")
    assert len(ds) == sum(1 for p in (root / "images").rglob("*") if p.is_file())
    assert ds.settings == ("all",)


@pytest.mark.shared
def test_wider_train_and_val_fullres(shared_dir):
    train = load_dataset(_shared_set(shared_dir, "wider_train"))
    val = load_dataset(_shared_set(shared_dir, "wider_val_fullres"))
    assert train.folds == val.folds == (0, 1, 2, 3, 4)
    assert val.settings == SETTINGS
    assert not set(train.names) & set(val.names)
    assert {s.image_size[1] for s in train} == {1024}  # full resolution, not 416 px copies
    val200 = load_dataset(_shared_set(shared_dir, "wider_val200"))
    shared = [n for n in val.names if n in set(val200.names)]
    assert shared  # the 416 px copies of these photos must never be trained on
    for name in shared:
        assert val.by_name(name).boxes.shape == val200.by_name(name).boxes.shape, name


@pytest.mark.shared
def test_official_val_txt_and_mat(shared_dir):
    pytest.importorskip("scipy.io")
    root = shared_dir / "data" / "wider_val_annotations"
    txt = load_wider_txt(root / "wider_face_val_bbx_gt.txt")
    assert len(txt) == 3226
    assert txt.num_faces == 39708
    mat = load_wider_mat(root / "ground_truth")
    assert sorted(mat.names) == sorted(txt.names)
    for s in txt:
        assert torch.equal(mat.by_name(s.name).boxes, s.boxes), s.name
    kept = {s: sum(int(x.keep[s].sum()) for x in mat) for s in SETTINGS}
    assert kept == {"easy": 7211, "medium": 13319, "hard": 31958}
    # wider_val200 is a subset of the official val set, with the same keep lists.
    val200 = load_dataset(shared_dir / "data" / "wider_val200")
    for s in val200:
        for setting in SETTINGS:
            assert torch.equal(s.keep[setting], mat.by_name(s.name).keep[setting]), s.name
    # wider_val_fullres holds official val photos at full size: the official rows and keep lists.
    for s in load_dataset(shared_dir / "data" / "wider_val_fullres"):
        official = mat.by_name(s.name)
        assert torch.equal(s.boxes, official.boxes), s.name
        for setting in SETTINGS:
            assert torch.equal(s.keep[setting], official.keep[setting]), (s.name, setting)
