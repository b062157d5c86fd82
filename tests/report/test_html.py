"""The static HTML report: escaping, local links only, small thumbnails, content, and Chromium rendering."""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from PIL import Image

from browser import (
    INSTALL_HINT,
    ChromiumNotFoundError,
    console_errors,
    dump_dom,
    find_chromium,
    render_screenshot,
    require_chromium,
)
from srjudge.images.io import save_png
from srjudge.judges.base import Verdict, make_ranking
from srjudge.provenance import Provenance
from srjudge.report import (
    AuditRow,
    AuditSection,
    CandidateEntry,
    FusedEntry,
    ReportData,
    ReportItem,
    candidates_from_ranking,
    side_by_side,
    write_report,
)
from srjudge.report.html import LARGE_BOUND, PANELS_BOUND, THUMB_SIZE
from srjudge.select.files import RankResult
from tests.report.helpers import _photo

EVIL_ITEM = "face <script>alert('item')</script> & co"
EVIL_CANDIDATE = "cand <b>bold & <script>x.png"  # a file name: no "/"
EVIL_RATIONALE = "looks fine <img src=x onerror=alert(1)> & sharp"
N_ITEMS, N_CANDIDATES = 3, 6
N_COMPARE = 2 * (4 + 4) + (4 + 3)
"""Comparison images: LR nearest, LR bicubic, #1, #2 large; crops of LR, #1, #2 (and the HR in items 0-1)."""


def _need_chromium() -> Path:
    path = find_chromium()
    if path is None:
        pytest.fail(
            f"Chromium is required for the report browser tests and was not found. Install it: {INSTALL_HINT}"
        )
    return path


# ---------------------------------------------------------------------------------------------------
# The report
def _verdict(score: float | None, tags: tuple[str, ...] = (), rationale: str = "") -> Verdict:
    return Verdict(
        judge="fake",
        score=score,
        raw=None if score is None else score / 100,
        provenance=Provenance.of("fake", {}),
        tags=tags,
        rationale=rationale,
        abstain_reason="image too small" if score is None else None,
    )


def _item(index: int, root: Path) -> ReportItem:
    lr = _photo(16, 16, 10 * index)
    names = [f"cand-{j}.png" for j in range(N_CANDIDATES)]
    if index == 0:
        names[1] = EVIL_CANDIDATE
    images = [_photo(64, 64, 10 * index + j + 1) for j in range(N_CANDIDATES)]
    scores: list[float | None] = [80.0 - 9 * j for j in range(N_CANDIDATES)]
    if index == 1:
        scores[3] = None  # one abstention
    verdicts = [
        _verdict(
            s, ("blur",) if j % 2 else ("ringing", "halo"), EVIL_RATIONALE if j == 1 else f"rationale {j}"
        )
        for j, s in enumerate(scores)
    ]
    result = RankResult(make_ranking("fake", verdicts), tuple(names), lr=None, hr=None)
    tws = [90 - 5 * j for j in range(N_CANDIDATES)]
    sources: list[np.ndarray] | None = images
    if index == 2:
        # Candidates as files: some inside the report folder (linked), some outside (copied in).
        inside, outside = root / "out" / "run" / "candidates", root / "elsewhere"
        paths = [
            save_png((inside if j % 2 else outside) / n, im)
            for j, (n, im) in enumerate(zip(names, images, strict=True))
        ]
        result = RankResult(result.ranking, tuple(str(p) for p in paths), lr=None, hr=None)
        sources = None
    candidates = candidates_from_ranking(result, sources, tws=tws)
    if index == 2:
        return ReportItem(name="files only, no fusion or audit", lr=lr, candidates=candidates)
    fused = np.mean(images[:3], axis=0).astype(np.float32)
    panels = side_by_side(
        [lr, images[2], images[0]], ["LR", "pure\nscore 62.0", "+judge\nscore 80.0\naccept"], height=96
    )
    audit = AuditSection(
        decision="retry" if index else "accept",
        panels=panels,
        rows=(
            AuditRow("v0", "-", None, 48.0, ("blur",), "retry", "score < 60 <b>bold</b>"),
            AuditRow("v1", "sharpen", 0.6, 80.0, (), "accept", "above threshold & no artefact tags"),
        ),
        note="threshold 60",
    )
    return ReportItem(
        name=EVIL_ITEM if index == 0 else f"photo-{index}",
        lr=lr,
        hr=_photo(64, 64, 99),
        candidates=candidates,
        fused=FusedEntry(fused, 93.0, tuple(names[:3]), "mean of top 3"),
        audit=audit,
        why="detail +1.20 <script>x()</script> (over b.png)",
    )


def _report(root: Path) -> ReportData:
    return ReportData(
        title="Report <test> & friends",
        judge="fake:<judge>",
        items=tuple(_item(i, root) for i in range(N_ITEMS)),
        settings={"scale": 4, "pipeline": "face", "weird": "</code><script>bad()</script>"},
        note="synthetic images",
    )


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    return write_report(root / "out", _report(root))


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.ids: set[str] = set()
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.tags.append((tag, values))
        if "id" in values:
            self.ids.add(values["id"])
        for attr in ("src", "href", "action", "poster", "srcset"):
            if attr in values:
                self.links.append((tag, attr, values[attr]))


def _parse(html_text: str) -> _Collect:
    parser = _Collect()
    parser.feed(html_text)
    return parser


def test_report_escapes_user_and_model_text(written: Path) -> None:
    text = written.read_text(encoding="utf-8")
    assert "<script" not in text.lower()  # no JavaScript at all, and nothing injected
    assert "<b>bold" not in text and "<img src=x" not in text
    assert "face &lt;script&gt;alert(&#x27;item&#x27;)&lt;/script&gt; &amp; co" in text
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; sharp" in text
    assert "&lt;/code&gt;&lt;script&gt;bad()&lt;/script&gt;" in text
    assert "Why it beat the runner-up: detail +1.20 &lt;script&gt;x()&lt;/script&gt; (over b.png)" in text
    assert "Report &lt;test&gt; &amp; friends" in text and "fake:&lt;judge&gt;" in text
    assert 'title="cand &lt;b&gt;bold &amp; &lt;script&gt;x.png"' in text  # the candidate card


def test_report_links_are_local_and_exist(written: Path) -> None:
    out_dir = written.parent.resolve()
    text = written.read_text(encoding="utf-8")
    parsed = _parse(text)
    assert parsed.links
    assert not re.search(r"(?i)\b(src|href)\s*=\s*[\"']?\s*(https?:)?//", text)
    assert "url(" not in text and "@import" not in text
    files = 0
    for tag, attr, value in parsed.links:
        assert not re.match(r"(?i)^\s*(https?:|//|ftp:|javascript:)", value), (tag, attr, value)
        if value.startswith("data:"):
            assert value.startswith("data:image/png;base64,"), value[:40]
        elif value.startswith("#"):
            assert value[1:] in parsed.ids, value
        else:
            target = (out_dir / unquote(value)).resolve()
            assert target.is_relative_to(out_dir) and target.is_file(), value
            files += 1
    # Full-size links: LR, HR, fused, panels and candidates of items 0-1, LR and candidates of item 2,
    # plus the comparison: 4 large views per item and the zoomed crops (with the HR in items 0-1), each
    # a file that the page both shows (img src) and links to.
    assert files == 2 * (4 + N_CANDIDATES) + 1 + N_CANDIDATES + 2 * N_COMPARE
    # Candidate files already inside the folder are linked where they are; the others are copied in.
    hrefs = [v for _, _, v in parsed.links]
    assert "run/candidates/cand-1.png" in hrefs and not any(v.startswith("elsewhere") for v in hrefs)


def test_report_thumbnails_are_small(written: Path) -> None:
    parsed = _parse(written.read_text(encoding="utf-8"))
    images = [(attrs.get("alt", ""), attrs["src"]) for tag, attrs in parsed.tags if tag == "img"]
    assert len(images) == 2 * (4 + N_CANDIDATES) + 1 + N_CANDIDATES + N_COMPARE
    inline = [(alt, src) for alt, src in images if src.startswith("data:")]
    assert len(inline) == len(images) - N_COMPARE  # the large views load their files instead
    for alt, src in inline:
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as thumb:
            thumb.load()
            bound = PANELS_BOUND if alt == "audit panels" else (THUMB_SIZE, THUMB_SIZE)
            assert thumb.width <= bound[0] and thumb.height <= bound[1], (alt, thumb.size)
    for alt, src in images:
        if not src.startswith("data:"):
            with Image.open(written.parent / unquote(src)) as view:
                assert max(view.size) <= max(LARGE_BOUND), (alt, view.size)


def test_report_content(written: Path) -> None:
    text = written.read_text(encoding="utf-8")
    parsed = _parse(text)
    summary = text.split('<section class="summary">', 1)[1].split("</section>", 1)[0]
    assert summary.count("<tr>") == 1 + N_ITEMS
    for value in ("cand-0.png", "80.0", "93.0", "accept", "retry"):
        assert value in summary
    cards = [a for t, a in parsed.tags if t == "figure" and "card" in a.get("class", "").split()]
    assert sum("ref" not in a["class"] for a in cards) == N_ITEMS * N_CANDIDATES
    assert sum("chosen" in a["class"].split() for a in cards) == N_ITEMS
    assert sum("abstained" in a["class"].split() for a in cards) == 1
    assert "Abstained: image too small" in text
    assert "judge <code>fake:&lt;judge&gt;</code>" in text
    assert text.count('class="row-fused"') == 2  # the fusion table of items 0 and 1
    # What a person decides from: large views and the same zoomed crops where #1 and #2 differ most.
    assert text.count("<h3>Compare at full size</h3>") == N_ITEMS
    assert text.count("Where #1 and #2 differ most (") == N_ITEMS
    assert text.count("<b>HR (not seen by the judge)</b>") == 2  # items 0 and 1 have an HR


def test_report_embed_mode_is_one_file(tmp_path: Path) -> None:
    index = write_report(tmp_path / "single", _report(tmp_path), full_images="embed")
    assert sorted(p.name for p in index.parent.iterdir()) == ["index.html"]
    parsed = _parse(index.read_text(encoding="utf-8"))
    hrefs = [v for t, a, v in parsed.links if a == "href"]
    assert hrefs and all(v.startswith("#") and v[1:] in parsed.ids for v in hrefs)


def test_report_data_checks_and_defaults() -> None:
    lr = _photo(8, 8, 0)
    a = CandidateEntry("a", _photo(32, 32, 1), score=40.0, rank=2)
    b = CandidateEntry("b", _photo(32, 32, 2), score=60.0, rank=1)
    assert ReportItem("x", lr, (a, b)).chosen_candidate() is b
    assert ReportItem("x", lr, (a, b), chosen="a").chosen_candidate() is a
    with pytest.raises(ValueError, match="chosen candidate"):
        ReportItem("x", lr, (a, b), chosen="c")
    gone = CandidateEntry("z", _photo(32, 32, 3), abstained=True, abstain_reason="no")
    assert ReportItem("x", lr, (gone,)).chosen_candidate() is None
    with pytest.raises(ValueError, match="full_images"):
        write_report(Path("unused"), ReportData("t", "j", ()), full_images="inline")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------
# In the browser


def test_report_renders_in_chromium_without_errors(written: Path, tmp_path: Path) -> None:
    _need_chromium()
    assert console_errors(written) == []
    dom = dump_dom(written)
    parsed = _parse(dom)
    cards = [a for t, a in parsed.tags if t == "figure" and "card" in a.get("class", "").split()]
    assert sum("ref" not in a["class"] for a in cards) == N_ITEMS * N_CANDIDATES
    assert {f"item-{i}" for i in range(N_ITEMS)} <= parsed.ids
    assert "<script" not in dom.lower()  # the escaped names stayed text
    shot = render_screenshot(written, tmp_path / "shot.png", 1280, 2000)
    with Image.open(shot) as image:
        assert image.format == "PNG" and image.size == (1280, 2000)
        pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    assert float(pixels.var()) > 0.0
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 256  # photos and text, not a blank page


def test_console_errors_catches_broken_pages(tmp_path: Path) -> None:
    _need_chromium()
    page = tmp_path / "bad.html"
    page.write_text(
        "<!doctype html><html><body><p>x</p>"
        '<img src="missing.png"><img src="https://example.invalid/a.png">'
        '<img src="data:image/png;base64,AAAA">'
        '<script>console.error("boom")</script><script>throw new Error("uncaught")</script>'
        "</body></html>"
    )
    errors = "\n".join(console_errors(page))
    assert "console.error: boom" in errors
    assert "uncaught" in errors
    assert "broken image: missing.png" in errors
    assert "broken image: data:image/png;base64,AAAA" in errors
    assert "blocked non-local request: https://example.invalid/a.png" in errors
    good = tmp_path / "good.html"
    good.write_text("<!doctype html><html><head><title>t</title></head><body><p>fine</p></body></html>")
    assert console_errors(good) == []


def test_browser_helpers_open_only_existing_local_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        render_screenshot(tmp_path / "nope.html", tmp_path / "x.png")
    with pytest.raises(FileNotFoundError):
        console_errors(tmp_path / "nope.html")


def test_missing_chromium_names_the_install_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SRJUDGE_CHROMIUM", str(tmp_path / "no-such-chromium"))
    assert find_chromium() is None
    with pytest.raises(ChromiumNotFoundError, match="apt-get install -y chromium"):
        require_chromium()
