"""Build an 8K-class face set from a full-resolution one: photos upscaled, boxes scaled (issue 11).

No real 8K photos with face labels are reachable here, so upscaled pixels stand in for an 8K
capture: the faces are as large as in one (a 10 px face becomes 75 px, a 400 px face 3000 px),
which is what breaks detectors at 8K (large faces outgrow their anchors), but the pixels carry no
detail beyond the source's. Say so wherever the set's numbers are shown.

    .venv/bin/python benchmarks/make_hires.py --data ../shared/data/wider_val_fullres \
        --out cache/hires/wider_val_fullres_8k --photos 48
    .venv/bin/python benchmarks/make_hires.py --data ../shared/data/wider_train \
        --out cache/hires/wider_train_8k --photos 160

Photos are taken by the widest spread of face sizes (largest over smallest face width, faces of
at least ``--min-face`` px; ties by name), each resized so its long side is ``--long-side`` px
(bicubic, JPEG quality 95). ``labels.txt`` keeps every row and its attribute columns with the
boxes scaled, so ``splits/`` (Easy / Medium / Hard keep lists, folds) apply unchanged and are
copied; ``image_sizes.tsv`` gives the new sizes. Re-running skips photos already written.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from crface.data import FaceDataset, load_dataset
from crface.paths import shared_path

LONG_SIDE = 7680
QUALITY = 95


def spread(widths: list[float], min_face: float) -> float:
    """``log2`` of the largest over the smallest face width of a photo (0 below two faces)."""
    kept = [w for w in widths if w >= min_face]
    return math.log2(max(kept) / min(kept)) if len(kept) > 1 else 0.0


def pick(dataset: FaceDataset, photos: int | None, min_face: float) -> list[str]:
    """The ``photos`` photos with the widest spread of face sizes (all if None), in the source order."""
    value = {s.name: spread((s.boxes[:, 2] - s.boxes[:, 0]).tolist(), min_face) for s in dataset}
    chosen = set(sorted(value, key=lambda n: (-value[n], n))[:photos])
    return [n for n in dataset.names if n in chosen]  # the source's order


def _label_blocks(path: Path) -> dict[str, list[str]]:
    """``labels.txt`` as ``name -> [count line, row lines...]`` (rows kept verbatim)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = {}, 0
    while i < len(lines):
        name = lines[i].strip()
        if not name:
            i += 1
            continue
        count = int(lines[i + 1])
        # WIDER may write one all-numeric placeholder row for a photo without faces.
        rows = count or int(i + 2 < len(lines) and _numeric(lines[i + 2]))
        blocks[name] = lines[i + 1 : i + 2 + rows]
        i += 2 + rows
    return blocks


def _numeric(line: str) -> bool:
    try:
        return bool([float(v) for v in line.split()])
    except ValueError:
        return False


def _scaled_rows(block: list[str], factor: float) -> list[str]:
    out = [block[0]]
    for row in block[1:]:
        cells = row.split()
        xywh = [f"{float(v) * factor:.2f}" for v in cells[:4]]
        out.append(" ".join(xywh + cells[4:]))
    return out


def _copy_splits(src: Path, dst: Path, names: set[str]) -> None:
    """Per-photo split files filtered to ``names`` (they index rows, which stay in order)."""
    if not (src / "splits").is_dir():
        return
    (dst / "splits").mkdir(parents=True, exist_ok=True)
    for f in sorted((src / "splits").glob("*.txt")):
        kept = [ln for ln in f.read_text().splitlines() if ln.split(" ", 1)[0] in names]
        (dst / "splits" / f.name).write_text("\n".join(kept) + "\n")


def build(args: argparse.Namespace) -> Path:
    src = Path(args.data or shared_path("data", "wider_val_fullres")).resolve()
    out = Path(args.out)
    dataset = load_dataset(src)
    names = pick(dataset, args.photos, args.min_face)
    blocks = _label_blocks(src / "labels.txt")
    labels, sizes = [], ["path\twidth\theight"]
    for name in tqdm(names, desc=f"upscaling to {args.long_side} px", unit="photo"):
        sample = dataset.by_name(name)
        h, w = sample.image_size or Image.open(sample.image_path).size[::-1]
        factor = args.long_side / max(h, w)
        size = (round(w * factor), round(h * factor))
        target = out / "images" / name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            with Image.open(sample.image_path) as im:
                big = im.convert("RGB").resize(size, Image.Resampling.BICUBIC)
            partial = target.with_suffix(".part")
            big.save(partial, format="JPEG", quality=QUALITY)
            partial.replace(target)  # a killed run never leaves a truncated photo behind
        labels += [name, *_scaled_rows(blocks[name], factor)]
        sizes.append(f"{name}\t{size[0]}\t{size[1]}")
    (out / "labels.txt").write_text("\n".join(labels) + "\n")
    (out / "image_sizes.tsv").write_text("\n".join(sizes) + "\n")
    _copy_splits(src, out, set(names))
    readme = src / "README.md"
    (out / "README.md").write_text(
        f"# {out.name}\n\n{len(names)} photos of `{src.name}` with the widest spread of face "
        f"sizes, upscaled to a long side of {args.long_side} px (bicubic, JPEG {QUALITY}) by "
        "`benchmarks/make_hires.py`; boxes scaled, keep lists and folds unchanged. **Upscaled "
        "pixels stand in for a real 8K capture**: faces have 8K sizes, not 8K detail. Source "
        f"and terms: the source set's README{' (copied below)' if readme.exists() else ''}.\n\n"
        + (readme.read_text() if readme.exists() else "")
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="source set (default ../shared/data/wider_val_fullres)")
    parser.add_argument("--out", required=True, help="folder of the new set (images/, labels.txt)")
    parser.add_argument("--photos", type=int, default=None, help="how many photos (default all)")
    parser.add_argument("--long-side", type=int, default=LONG_SIDE)
    parser.add_argument("--min-face", type=float, default=4.0, help="faces counted for spread")
    args = parser.parse_args(argv)
    if args.photos is not None and args.photos < 1:
        parser.error(f"--photos must be >= 1; got {args.photos}")
    out = build(args)
    print(
        f"wrote {out} ({sum(1 for _ in (out / 'images').rglob('*.jpg'))} photos)", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
