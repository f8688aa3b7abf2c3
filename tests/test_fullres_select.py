"""benchmarks/fullres.py's choice of (suppression, strength) per detector, on hand-made grids."""

from __future__ import annotations

import pytest

from tests.helpers import load_script

fullres = load_script("benchmarks/fullres.py")


def grid(**rows: dict[str, float]) -> dict:
    return {m: {a: {"ap": {"all": ap}} for a, ap in row.items()} for m, row in rows.items()}


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ({"hard": {"0.0": 0.5, "1.0": 0.6}, "vote": {"0.0": 0.55, "1.0": 0.62}}, ("vote", 1.0)),
        ({"hard": {"0.0": 0.5, "0.5": 0.6}, "vote": {"0.0": 0.4, "0.5": 0.59}}, ("hard", 0.5)),
        # ties: hard NMS first, then the smaller strength
        ({"hard": {"0.5": 0.6, "1.0": 0.6}, "vote": {"0.5": 0.6}}, ("hard", 0.5)),
        ({"hard": {"0.0": 0.6}}, ("hard", 0.0)),
    ],
)
def test_best_choice(rows, expected) -> None:
    assert fullres.best_choice(grid(**rows)) == expected


def test_choice_falls_back_to_defaults_and_old_jsons() -> None:
    new = {"per_detector": {"a": 1.0}, "default": 0.5, "nms": {"a": "vote"}, "nms_default": "hard"}
    assert fullres.choice(new, "a") == (1.0, "vote")
    assert fullres.choice(new, "unseen") == (0.5, "hard")
    old = {"per_detector": {"a": 0.75}, "default": 0.75}  # written before the NMS choice
    assert fullres.choice(old, "a") == (0.75, "hard")
    assert fullres.by_nms({"0.0": {}, "1.0": {}}) == {"hard": {"0.0": {}, "1.0": {}}}
