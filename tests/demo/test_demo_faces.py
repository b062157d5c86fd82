"""The face demo's parts: the bundled portraits and their licences, the face crop, the table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from srjudge.demo_faces import DEGRADATIONS, METRICS, SIDE, face_crop, paired_table, table_markdown
from srjudge.faces.detect import FaceFinder
from srjudge.faces.identity import DLIB_THRESHOLD
from srjudge.images.samples import FACES_FOLDER, face_photos


def test_every_bundled_portrait_has_a_licence_entry_and_one_face() -> None:
    index = json.loads((FACES_FOLDER / "faces.json").read_text())
    licences = (FACES_FOLDER / "LICENSES.md").read_text()
    photos = dict(face_photos())
    assert set(photos) == {"astronaut"} | {name.rsplit(".", 1)[0] for name in index["files"]}
    finder = FaceFinder("hog")
    for name, meta in index["files"].items():
        assert name in licences and meta["license"] and meta["person"]
        assert len(finder.find(photos[name.rsplit(".", 1)[0]])) == 1, name
    # Several photos of one person, for same-person pairs.
    people = [meta["person"] for meta in index["files"].values()]
    assert people.count("barack-obama") == 3 and len(set(people)) == 5


def test_face_crop_is_square_and_keeps_the_face() -> None:
    finder = FaceFinder()
    for name, image in face_photos():
        crop, face = face_crop(image, finder)
        assert crop.shape == (SIDE, SIDE, 3), name
        assert SIDE * 0.3 < face.width < SIDE * 0.9, name


def test_paired_table_means_and_markdown() -> None:
    def values(x: float) -> dict[str, float | None]:
        return {m: x for m in METRICS} | {"lpips": None}

    items = [
        {"degradation": "mild", "paired": {"bicubic": {"pure": values(1.0), "judge": values(3.0)}},
         "pick_metrics": values(2.0), "swap": {"metrics": values(0.0)}},
        {"degradation": "mild", "paired": {"bicubic": {"pure": values(3.0), "judge": values(3.0)}},
         "pick_metrics": values(4.0), "swap": {"metrics": values(1.0)}},
    ]
    rows = paired_table(items, ["bicubic"])
    assert rows[0] == {"backend": "bicubic", "variant": "pure", **values(2.0)}
    assert rows[1]["psnr"] == 3.0 and rows[2]["psnr"] == 3.0 and rows[3]["psnr"] == 0.5
    text = table_markdown({"table": {"mild": rows}})
    assert text.startswith(f"mild ({DEGRADATIONS['mild']} degradation, x4)")
    assert "| bicubic | pure | 2.00 | 2.000 | n/a | 2.000 | 2.000 |" in text
    assert np.isfinite(rows[0]["ssim"])  # type: ignore[arg-type]


def test_the_face_demo_end_to_end_on_two_portraits_and_a_resumed_rerun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import srjudge.demo_faces as demo

    photos = face_photos()
    monkeypatch.setattr(demo, "face_photos", lambda: [photos[0], photos[4]])  # astronaut, Joe Biden
    monkeypatch.setattr(demo, "DEGRADATIONS", {"mild": "bicubic"})
    report = demo.run_face_demo(tmp_path, log=lambda _: None)
    assert [i["item"] for i in report["items"]] == ["astronaut-mild", "joe-biden_1-mild"]
    for item in report["items"]:
        assert "identity-drift" in item["swap"]["tags"] and item["swap"]["audit"]["decision"] == "reject"
        assert item["pick"] != demo.SWAP and item["pick_metrics"]["identity"] > DLIB_THRESHOLD
        assert (tmp_path / "panels" / f"{item['item']}.png").is_file()
    assert "| select (trust:identity=true) | pick |" in (tmp_path / "face_table.md").read_text()
    lines: list[str] = []
    again = demo.run_face_demo(tmp_path, log=lines.append)
    assert again["table"] == report["table"]
    assert all("done by an earlier run" in line for line in lines if line.startswith("["))
