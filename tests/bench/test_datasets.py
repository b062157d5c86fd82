"""Bench datasets: the three formats, direction handling, up-front validation, synthetic data."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from srjudge.bench.dataset_files import DatasetError
from srjudge.bench.datasets import BestOfNDataset, MOSDataset, PairItem, PairwiseDataset, load_dataset
from srjudge.bench.synthetic import make_synthetic
from srjudge.errors import SrjudgeError


def _touch(root: Path, *names: str) -> None:
    for name in names:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")  # the loader checks existence only; it never opens an image


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _meta(root: Path, **meta: object) -> None:
    _write(root / "dataset.json", json.dumps(meta))


def _jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    return _write(path, "\n".join(json.dumps(r) for r in rows) + "\n")


def _problems(exc: pytest.ExceptionInfo[DatasetError]) -> list[tuple[str, int]]:
    return [(p.kind, p.row) for p in exc.value.problems]


# ---------------------------------------------------------------------------------------------
# MOS


def test_mos_csv_with_dataset_json_dmos(tmp_path: Path) -> None:
    _touch(tmp_path, "img/a.png", "img/b.png", "hr/a.png", "lr/a.png")
    _meta(tmp_path, format="mos", score="dmos", higher_is_better=False, name="toy", description="d")
    csv_path = _write(
        tmp_path / "scores.csv", "image,score,ref,lr\nimg/a.png,1.5,hr/a.png,lr/a.png\nimg/b.png,3,,\n"
    )
    ds = load_dataset(csv_path)
    assert isinstance(ds, MOSDataset)
    assert (ds.name, ds.score_kind, ds.higher_is_better, ds.synthetic, ds.description) == (
        "toy",
        "dmos",
        False,
        False,
        "d",
    )
    assert ds.path == csv_path
    assert [i.score for i in ds.items] == [1.5, 3.0]
    assert [i.row for i in ds.items] == [1, 2]
    first, second = ds.items
    assert first.image == (tmp_path / "img/a.png").absolute()
    assert first.ref == (tmp_path / "hr/a.png").absolute() and first.lr == (tmp_path / "lr/a.png").absolute()
    assert second.ref is None and second.lr is None


def test_mos_jsonl_with_mos_column_no_dataset_json(tmp_path: Path) -> None:
    _touch(tmp_path, "a.png", "b.png")
    path = _jsonl(tmp_path / "d.jsonl", [{"image": "a.png", "mos": 4.2}, {"image": "b.png", "mos": "2"}])
    ds = load_dataset(path)
    assert isinstance(ds, MOSDataset)
    assert ds.higher_is_better is True and ds.score_kind == "mos"
    assert ds.name == "d"
    assert [i.score for i in ds.items] == [4.2, 2.0]


def test_dmos_column_sets_lower_is_better(tmp_path: Path) -> None:
    _touch(tmp_path, "a.png")
    ds = load_dataset(_write(tmp_path / "d.csv", "image,dmos\na.png,30\n"))
    assert isinstance(ds, MOSDataset)
    assert ds.higher_is_better is False and ds.score_kind == "dmos"


def test_higher_is_better_alone_declares_direction(tmp_path: Path) -> None:
    _touch(tmp_path, "a.png")
    _meta(tmp_path, higher_is_better=False)
    ds = load_dataset(_write(tmp_path / "d.csv", "image,score\na.png,30\n"))
    assert isinstance(ds, MOSDataset)
    assert ds.higher_is_better is False and ds.score_kind == "dmos"


def test_score_column_without_declared_direction_is_an_error(tmp_path: Path) -> None:
    _touch(tmp_path, "a.png")
    with pytest.raises(DatasetError, match="not declared") as exc:
        load_dataset(_write(tmp_path / "d.csv", "image,score\na.png,3\n"))
    assert isinstance(exc.value, SrjudgeError)


@pytest.mark.parametrize(
    ("meta", "column"),
    [
        ({"score": "dmos"}, "mos"),
        ({"score": "mos"}, "dmos"),
        ({"higher_is_better": True}, "dmos"),
        ({"score": "dmos", "higher_is_better": True}, "score"),
    ],
)
def test_direction_conflicts(tmp_path: Path, meta: dict[str, object], column: str) -> None:
    _touch(tmp_path, "a.png")
    _meta(tmp_path, **meta)
    with pytest.raises(DatasetError, match="direction conflict") as exc:
        load_dataset(_write(tmp_path / "d.csv", f"image,{column}\na.png,3\n"))
    assert ("direction", 0) in _problems(exc)


def test_mos_every_problem_reported_at_once_with_rows(tmp_path: Path) -> None:
    _touch(tmp_path, "a.png", "b.png", "c.png", "d.png")
    _meta(tmp_path, format="mos", score="dmos", higher_is_better=False)
    text = (
        "image,dmos,refs\n"
        "a.png,1,\n"  # row 1: fine
        "missing.png,2,\n"  # row 2: missing file
        "a.png,3,\n"  # row 3: duplicate of row 1
        "b.png,high,\n"  # row 4: non-numeric
        "c.png,nan,\n"  # row 5: NaN
        "d.png,,\n"  # row 6: empty score
    )
    with pytest.raises(DatasetError) as exc:
        load_dataset(_write(tmp_path / "bad.csv", text))
    found = _problems(exc)
    for expected in [
        ("unknown-column", 0),
        ("missing-file", 2),
        ("duplicate", 3),
        ("bad-value", 4),
        ("bad-value", 5),
        ("bad-value", 6),
    ]:
        assert expected in found, (expected, found)
    message = str(exc.value)
    assert "6 problems" in message
    assert "row 2: image file 'missing.png' not found" in message
    assert "row 3: image 'a.png' already rated in row 1" in message
    assert "row 4: dmos 'high' is not a number" in message
    assert "row 5: dmos is nan" in message
    assert "unknown column 'refs'" in message and "did you mean 'ref'?" in message


def test_did_you_mean_on_unknown_column(tmp_path: Path) -> None:
    _touch(tmp_path, "a.png")
    with pytest.raises(DatasetError) as exc:
        load_dataset(_write(tmp_path / "d.csv", "imgae,mos\na.png,3\n"))
    message = str(exc.value)
    assert "unknown column 'imgae'" in message and "did you mean 'image'?" in message
    assert "needs a column 'image'" in message


def test_unknown_dataset_json_key_suggests(tmp_path: Path) -> None:
    _touch(tmp_path, "a.png")
    _meta(tmp_path, format="mos", higher_is_beter=True)
    with pytest.raises(DatasetError, match="did you mean 'higher_is_better'"):
        load_dataset(_write(tmp_path / "d.csv", "image,mos\na.png,3\n"))


# ---------------------------------------------------------------------------------------------
# Pairwise


def test_pairwise_winner_csv(tmp_path: Path) -> None:
    _touch(tmp_path, "a.png", "b.png", "c.png", "lr.png")
    text = "a,b,winner,lr\na.png,b.png,b,lr.png\na.png,c.png,A,lr.png\nb.png,c.png,tie,\n"
    ds = load_dataset(_write(tmp_path / "p.csv", text))
    assert isinstance(ds, PairwiseDataset)
    assert [i.human_winner for i in ds.items] == ["B", "A", "tie"]
    assert ds.items[0].lr == (tmp_path / "lr.png").absolute() and ds.items[2].lr is None


def test_pairwise_votes_jsonl(tmp_path: Path) -> None:
    _touch(tmp_path, "a.png", "b.png", "c.png")
    rows: list[dict[str, object]] = [
        {"a": "a.png", "b": "b.png", "votes_a": 7, "votes_b": 3},
        {"a": "a.png", "b": "c.png", "votes_a": 4, "votes_b": 4, "votes_tie": 2},
        {"a": "b.png", "b": "c.png", "votes_a": 3, "votes_b": 2, "votes_tie": 5},
    ]
    _meta(tmp_path, format="pairwise", name="pairs")
    ds = load_dataset(_jsonl(tmp_path / "p.jsonl", rows))
    assert isinstance(ds, PairwiseDataset) and ds.name == "pairs"
    assert [i.human_winner for i in ds.items] == ["A", "tie", "tie"]
    assert (ds.items[0].votes_a, ds.items[0].votes_b, ds.items[0].votes_tie) == (7.0, 3.0, 0.0)


def test_pair_item_majority() -> None:
    p = Path("x")
    assert PairItem(p, p, 2, 5, 1, None, 1).human_winner == "B"
    assert PairItem(p, p, 5, 5, 0, None, 1).human_winner == "tie"


def test_pairwise_every_problem_reported(tmp_path: Path) -> None:
    _touch(tmp_path, "a.png", "b.png", "c.png")
    text = (
        "a,b,votes_a,votes_b,votes_tie\n"
        "a.png,b.png,3,1,0\n"  # row 1 fine
        "b.png,a.png,2,2,0\n"  # row 2: same unordered pair as row 1
        "a.png,c.png,-1,2,0\n"  # row 3: negative votes
        "nope.png,c.png,1,0,0\n"  # row 4: missing file
        "b.png,c.png,x,1,0\n"  # row 5: non-numeric
    )
    with pytest.raises(DatasetError) as exc:
        load_dataset(_write(tmp_path / "p.csv", text))
    found = _problems(exc)
    for expected in [("duplicate", 2), ("negative-votes", 3), ("missing-file", 4), ("bad-value", 5)]:
        assert expected in found, (expected, found)
    assert "already appears in row 1" in str(exc.value)


# ---------------------------------------------------------------------------------------------
# Best-of-N


def _bon_files(root: Path) -> None:
    _touch(root, "lr/1.png", "lr/2.png", "c/1a.png", "c/1b.png", "c/1c.png", "c/2a.png", "c/2b.png")


def test_best_of_n_csv_and_jsonl(tmp_path: Path) -> None:
    _bon_files(tmp_path)
    rows: list[dict[str, object]] = [
        {"group": "g1", "lr": "lr/1.png", "candidate": "c/1a.png", "votes": 5},
        {"group": "g1", "lr": "lr/1.png", "candidate": "c/1b.png", "votes": 2},
        {"group": "g2", "lr": "lr/2.png", "candidate": "c/2a.png", "votes": 0},
        {"group": "g1", "lr": "lr/1.png", "candidate": "c/1c.png", "votes": 0},
        {"group": "g2", "lr": "lr/2.png", "candidate": "c/2b.png", "votes": 3},
    ]
    csv_text = "group,lr,candidate,votes\n" + "".join(
        f"{r['group']},{r['lr']},{r['candidate']},{r['votes']}\n" for r in rows
    )
    for path in (_write(tmp_path / "b.csv", csv_text), _jsonl(tmp_path / "j.jsonl", rows)):
        ds = load_dataset(path)
        assert isinstance(ds, BestOfNDataset)
        assert [g.group for g in ds.groups] == ["g1", "g2"]
        g1 = ds.groups[0]
        assert g1.lr == (tmp_path / "lr/1.png").absolute()
        assert [c.name for c in g1.candidates] == ["1a.png", "1b.png", "1c.png"]
        assert g1.votes == (5.0, 2.0, 0.0)
        assert ds.groups[1].votes == (0.0, 3.0)


def test_best_of_n_every_problem_reported(tmp_path: Path) -> None:
    _bon_files(tmp_path)
    text = (
        "group,lr,candidate,votes\n"
        "g1,lr/1.png,c/1a.png,5\n"  # row 1
        "g1,lr/2.png,c/1b.png,1\n"  # row 2: second LR in g1
        "g2,lr/2.png,c/2a.png,3\n"  # row 3: g2 has one candidate
        "g3,lr/1.png,c/1a.png,-2\n"  # row 4: negative votes
        "g3,lr/1.png,c/gone.png,1\n"  # row 5: missing file
    )
    with pytest.raises(DatasetError) as exc:
        load_dataset(_write(tmp_path / "b.csv", text))
    found = _problems(exc)
    for expected in [("group", 1), ("group", 3), ("negative-votes", 4), ("missing-file", 5)]:
        assert expected in found, (expected, found)
    message = str(exc.value)
    assert "2 different LR images" in message and "rows 1, 2" in message
    assert "needs at least 2" in message


# ---------------------------------------------------------------------------------------------
# Inputs and formats


def test_folder_input_and_format_from_dataset_json(tmp_path: Path) -> None:
    _touch(tmp_path, "a.png", "b.png")
    _write(tmp_path / "data.csv", "a,b,winner\na.png,b.png,a\n")
    _meta(tmp_path, format="pairwise")
    assert isinstance(load_dataset(tmp_path), PairwiseDataset)
    _write(tmp_path / "other.jsonl", "{}\n")
    with pytest.raises(DatasetError, match="exactly one"):
        load_dataset(tmp_path)


def test_declared_format_wins_over_columns(tmp_path: Path) -> None:
    _touch(tmp_path, "a.png")
    _meta(tmp_path, format="best-of-n")
    with pytest.raises(DatasetError) as exc:
        load_dataset(_write(tmp_path / "d.csv", "image,mos\na.png,3\n"))
    message = str(exc.value)
    assert "unknown column 'image' for a best-of-n dataset" in message
    assert "needs a column 'candidate'" in message


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SrjudgeError, match="no such file"):
        load_dataset(tmp_path / "nothing.csv")


def test_ten_thousand_rows_load(tmp_path: Path) -> None:
    n = 10_000
    img = tmp_path / "img"
    img.mkdir()
    for i in range(n):
        (img / f"{i:05d}.png").touch()
    _touch(tmp_path, "ref.png")
    lines = ["image,mos,ref"] + [f"img/{i:05d}.png,{1 + (i % 400) / 100},ref.png" for i in range(n)]
    ds = load_dataset(_write(tmp_path / "big.csv", "\n".join(lines) + "\n"))
    assert isinstance(ds, MOSDataset)
    assert len(ds.items) == n
    assert ds.items[-1].row == n and ds.items[-1].score == pytest.approx(1 + (9999 % 400) / 100)


def test_many_problems_are_summarised(tmp_path: Path) -> None:
    lines = ["image,mos"] + [f"gone{i}.png,3" for i in range(250)]
    with pytest.raises(DatasetError) as exc:
        load_dataset(_write(tmp_path / "d.csv", "\n".join(lines) + "\n"))
    assert len(exc.value.problems) == 250
    assert "250 problems" in str(exc.value) and "150 more" in str(exc.value)


# ---------------------------------------------------------------------------------------------
# Synthetic


def _digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("kind", ["mos", "pairwise", "best-of-n"])
def test_synthetic_loads_back_and_is_deterministic(tmp_path: Path, kind: str) -> None:
    first = make_synthetic(tmp_path / "one", kind, seed=3, n_photos=2, levels=3)  # type: ignore[arg-type]
    again = make_synthetic(tmp_path / "two", kind, seed=3, n_photos=2, levels=3)  # type: ignore[arg-type]
    other = make_synthetic(tmp_path / "three", kind, seed=4, n_photos=2, levels=3)  # type: ignore[arg-type]
    assert _digest(first.parent) == _digest(again.parent)
    assert _digest(first.parent) != _digest(other.parent)
    meta = json.loads((first.parent / "dataset.json").read_text())
    assert meta["synthetic"] is True
    assert meta["name"] == f"synthetic-{kind} (generated from scikit-image photos; not human opinion)"
    assert "SYNTHETIC" in meta["description"]
    ds = load_dataset(first.parent)
    assert ds.synthetic is True and ds.name == meta["name"]
    if isinstance(ds, MOSDataset):
        assert ds.higher_is_better and len(ds.items) == 2 * (3 + 2)
        for photo in ("astronaut", "coffee"):
            graded = [i.score for i in ds.items if i.image.stem.startswith(f"{photo}_L")]
            assert graded == sorted(graded, reverse=True)  # stronger degradation, lower MOS
            assert all(1.0 <= s <= 5.0 for s in graded)
    elif isinstance(ds, PairwiseDataset):
        winners = [i.human_winner for i in ds.items]
        assert {"A", "B", "tie"} <= set(winners)
        for item in ds.items:
            la, lb = (int(p.stem.split("_L")[1].rstrip("b")) for p in (item.a, item.b))
            expected = "tie" if la == lb else ("A" if la < lb else "B")
            assert item.human_winner == expected, item
    else:
        assert isinstance(ds, BestOfNDataset) and len(ds.groups) == 2
        for group in ds.groups:
            assert len(group.candidates) == 5
            best = group.candidates[group.votes.index(max(group.votes))]
            assert best.stem.endswith("truthlike")
            assert len(set(group.votes)) == 5


def test_synthetic_rejects_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(SrjudgeError):
        make_synthetic(tmp_path, "ranking")  # type: ignore[arg-type]
