"""A static HTML report of a run: one ``index.html`` with inline CSS, no JavaScript, no network.

Thumbnails (at most ``thumb_size`` px, PNG) are embedded as data URIs. Full-size images are either
written as files under ``out_dir/report-files/`` and linked (``full_images="files"``, the default,
for runs of any size), or embedded too and shown by a CSS-only lightbox (``full_images="embed"``:
one file to mail around, for small runs). Every text that reaches the page is HTML-escaped: file
names, tags and rationales come from users and models.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

import numpy as np
from PIL import Image

from srjudge import __version__
from srjudge.images.checks import check_image
from srjudge.images.io import load_image, save_png, to_uint8
from srjudge.judges.base import VETO_TAGS
from srjudge.report.compare import most_different_region, upsample_bicubic, upsample_nearest, zoom

if TYPE_CHECKING:
    from srjudge.select.files import RankResult

ImageLike = np.ndarray | Path
"""An image given as a canonical float array, or as the path of an image file."""

FullImages = Literal["files", "embed"]
FILES_DIR = "report-files"
THUMB_SIZE = 256
PANELS_BOUND = (1024, 400)
"""Panels keep their captions legible: their preview may be up to this size (width, height)."""
PIXELATED_BELOW = 128
"""Images no larger than this (both sides) are shown with nearest-neighbour scaling."""
_BROWSER_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
_BREAK_AFTER = re.compile(r"(?<=[._+/-])")


@dataclass(frozen=True, eq=False)
class CandidateEntry:
    """One SR candidate: its image, the judge's verdict on it, and its TWS (0-100) when known."""

    name: str
    image: ImageLike
    score: float | None = None
    rank: int | None = None
    tags: tuple[str, ...] = ()
    rationale: str = ""
    abstained: bool = False
    abstain_reason: str | None = None
    tws: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", tuple(self.tags))
        object.__setattr__(self, "image", _as_image(self.image))


@dataclass(frozen=True, eq=False)
class FusedEntry:
    """The fusion of the top candidates, with its TWS (0-100) to set against the candidates' TWS."""

    image: ImageLike
    tws: float | None = None
    members: tuple[str, ...] = ()
    method: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "members", tuple(self.members))
        object.__setattr__(self, "image", _as_image(self.image))


@dataclass(frozen=True)
class AuditRow:
    """One line of an audit's decision log."""

    variant: str
    knob: str
    value: str | float | int | None
    score: float | None
    tags: tuple[str, ...] = ()
    decision: str = ""
    reason: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", tuple(self.tags))


@dataclass(frozen=True, eq=False)
class AuditSection:
    """An SR-pipeline audit: the final decision (accept / retry / reject), its panels and its log."""

    decision: str
    rows: tuple[AuditRow, ...] = ()
    panels: ImageLike | None = None
    note: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "rows", tuple(self.rows))
        if self.panels is not None:
            object.__setattr__(self, "panels", _as_image(self.panels))


@dataclass(frozen=True, eq=False)
class ReportItem:
    """One LR input: its candidates, the chosen one (by name; default: rank 1), fusion and audit."""

    name: str
    lr: ImageLike
    candidates: tuple[CandidateEntry, ...]
    hr: ImageLike | None = None
    chosen: str | None = None
    fused: FusedEntry | None = None
    audit: AuditSection | None = None
    why: str = ""
    """Why the chosen candidate beat the runner-up (the judge's deciding terms), when it can say."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "candidates", tuple(self.candidates))
        object.__setattr__(self, "lr", _as_image(self.lr))
        if self.hr is not None:
            object.__setattr__(self, "hr", _as_image(self.hr))
        names = [c.name for c in self.candidates]
        if self.chosen is not None and self.chosen not in names:
            raise ValueError(f"{self.name}: chosen candidate {self.chosen!r} is not one of {names}")

    def chosen_candidate(self) -> CandidateEntry | None:
        """The chosen candidate: the one named by ``chosen``, else rank 1, else the best score."""
        if self.chosen is not None:
            return next(c for c in self.candidates if c.name == self.chosen)
        ranked = [c for c in self.candidates if c.rank is not None and not c.abstained]
        if ranked:
            return min(ranked, key=lambda c: c.rank if c.rank is not None else math.inf)
        scored = [c for c in self.candidates if c.score is not None and not c.abstained]
        return max(scored, key=lambda c: c.score if c.score is not None else -math.inf, default=None)


@dataclass(frozen=True, eq=False)
class ReportData:
    """Everything the report shows: title, the judge that ranked, run settings and the items."""

    title: str
    judge: str
    items: tuple[ReportItem, ...]
    settings: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", tuple(self.items))


def _as_image(image: ImageLike | str) -> ImageLike:
    if isinstance(image, np.ndarray):
        check_image(image, "report image")
        return image
    return Path(image)


def candidates_from_ranking(
    result: RankResult,
    images: Sequence[np.ndarray] | None = None,
    *,
    tws: Sequence[float | None] | None = None,
) -> tuple[CandidateEntry, ...]:
    """Candidate entries from a :class:`~srjudge.select.files.RankResult`, best first.

    ``images`` (in the original candidate order) are used when given, else the ranked paths;
    ``tws`` (same order) fills each candidate's TWS.
    """
    entries = []
    for item in result.ranking.items:
        verdict = item.verdict
        path = Path(result.paths[item.index])
        entries.append(
            CandidateEntry(
                name=path.name,
                image=images[item.index] if images is not None else path,
                score=verdict.score,
                rank=item.rank,
                tags=tuple(verdict.tags),
                rationale=verdict.rationale,
                abstained=verdict.abstained,
                abstain_reason=verdict.abstain_reason,
                tws=tws[item.index] if tws is not None else None,
            )
        )
    return tuple(entries)


# ---------------------------------------------------------------------------------------------------
# Images: thumbnails as data URIs, full size as files (or data URIs)


@dataclass(frozen=True)
class _Shown:
    thumb: str
    width: int
    height: int
    href: str
    pixelated: bool
    size: str  # the full image's width x height


def _png_data_uri(pil: Image.Image) -> str:
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class _Images:
    """Turns report images into (thumbnail data URI, link to the full image)."""

    def __init__(self, out_dir: Path, mode: FullImages, thumb_size: int) -> None:
        self.out_dir = out_dir
        self.root = out_dir.resolve()
        self.mode = mode
        self.thumb_size = thumb_size
        self.lightboxes: list[tuple[str, str, str, str]] = []  # (id, data URI, caption, back-link id)

    def show(
        self, image: ImageLike, key: str, caption: str, back: str, *, bound: tuple[int, int] | None = None
    ) -> _Shown:
        """Thumbnail within ``bound`` (default: ``thumb_size`` square) and the link to the full image."""
        array = load_image(image) if isinstance(image, Path) else image
        pil = Image.fromarray(to_uint8(array))
        full_w, full_h = pil.size
        thumb = pil.copy()
        thumb.thumbnail(bound or (self.thumb_size, self.thumb_size), Image.Resampling.LANCZOS)
        pixelated = max(full_w, full_h) <= PIXELATED_BELOW
        if self.mode == "embed":
            box_id = f"full-{len(self.lightboxes)}"
            self.lightboxes.append((box_id, _png_data_uri(pil), caption, back))
            href = "#" + box_id
        else:
            href = self._file_href(image, array, key)
        size = f"{full_w}×{full_h}"
        return _Shown(_png_data_uri(thumb), thumb.width, thumb.height, href, pixelated, size)

    def _file_href(self, image: ImageLike, array: np.ndarray, key: str) -> str:
        if isinstance(image, Path):
            resolved = image.resolve()
            if resolved.is_relative_to(self.root) and resolved.suffix.lower() in _BROWSER_SUFFIXES:
                return _href(resolved.relative_to(self.root))
            if resolved.suffix.lower() in _BROWSER_SUFFIXES:
                target = self.out_dir / FILES_DIR / f"{key}{resolved.suffix.lower()}"
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(resolved, target)
                return _href(target.relative_to(self.out_dir))
        target = save_png(self.out_dir / FILES_DIR / f"{key}.png", array)
        return _href(target.relative_to(self.out_dir))


def _href(relative: Path) -> str:
    return quote(relative.as_posix(), safe="/")


# ---------------------------------------------------------------------------------------------------
# HTML


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _fmt_score(score: float | None) -> str:
    return "—" if score is None else f"{score:.1f}"


def _fmt_tws(tws: float | None) -> str:
    return "—" if tws is None else f"{tws:.1f}"


def _score_badge(score: float | None, abstained: bool = False) -> str:
    if abstained or score is None:
        return '<span class="badge b-none" title="the judge abstained">abstained</span>'
    level = "hi" if score >= 70 else "mid" if score >= 40 else "lo"
    return f'<span class="badge b-{level}" title="judge score, 0-100">{_e(_fmt_score(score))}</span>'


def _decision_pill(decision: str | None) -> str:
    if not decision:
        return '<span class="muted">—</span>'
    kind = {"accept": "ok", "accepted": "ok", "retry": "warn", "reject": "bad", "rejected": "bad"}.get(
        decision.strip().lower(), "neutral"
    )
    return f'<span class="pill d-{kind}">{_e(decision)}</span>'


def _tags(tags: Sequence[str]) -> str:
    if not tags:
        return ""
    return '<div class="pills">' + "".join(f'<span class="pill">{_e(t)}</span>' for t in tags) + "</div>"


def _rationale(text: str) -> str:
    if not text:
        return ""
    if len(text) <= 200:
        return f'<p class="rationale">{_e(text)}</p>'
    return (
        f'<details class="rationale"><summary>{_e(text[:140].rstrip())}…</summary><p>{_e(text)}</p></details>'
    )


def _thumb(shown: _Shown, alt: str) -> str:
    cls = ' class="pixelated"' if shown.pixelated else ""
    return (
        f'<a class="thumb" href="{_e(shown.href)}" title="open full size">'
        f'<img{cls} src="{shown.thumb}" width="{shown.width}" height="{shown.height}" alt="{_e(alt)}"></a>'
    )


def _breakable(name: str) -> str:
    """Escaped text with line-break opportunities after ``. _ - + /`` (file names have no spaces)."""
    return "<wbr>".join(_e(piece) for piece in _BREAK_AFTER.split(name) if piece)


def _ref_card(shown: _Shown, label: str, detail: str, card_id: str) -> str:
    return (
        f'<figure class="card ref" id="{card_id}">{_thumb(shown, label)}'
        f'<figcaption><div class="name">{_breakable(label)}</div>'
        f'<p class="meta">{_e(detail)}</p></figcaption></figure>'
    )


def _ordered(candidates: Sequence[CandidateEntry]) -> list[CandidateEntry]:
    """Rank order; unranked and abstained candidates last, in their given order."""
    indexed = list(enumerate(candidates))
    indexed.sort(key=lambda p: (p[1].abstained or p[1].rank is None, p[1].rank or 0, p[0]))
    return [c for _, c in indexed]


def _candidate_card(cand: CandidateEntry, shown: _Shown, card_id: str, chosen: bool, show_tws: bool) -> str:
    classes = "card" + (" chosen" if chosen else "") + (" abstained" if cand.abstained else "")
    rank = f'<span class="rank">#{cand.rank}</span>' if cand.rank is not None else ""
    chosen_pill = '<span class="pill p-chosen">chosen</span>' if chosen else ""
    tws = f'<p class="meta">TWS {_e(_fmt_tws(cand.tws))}</p>' if show_tws else ""
    reason = (
        f'<p class="rationale abstain">Abstained: {_e(cand.abstain_reason or "no reason given")}</p>'
        if cand.abstained
        else ""
    )
    return (
        f'<figure class="{classes}" id="{card_id}">{_thumb(shown, cand.name)}<figcaption>'
        f'<div class="card-head">{rank}{chosen_pill}<span class="spacer"></span>'
        f"{_score_badge(cand.score, cand.abstained)}</div>"
        f'<div class="name" title="{_e(cand.name)}">{_breakable(cand.name)}</div>'
        f"{tws}{_tags(cand.tags)}{reason}{_rationale(cand.rationale)}"
        "</figcaption></figure>"
    )


def _fusion_table(item: ReportItem, fused: FusedEntry, ordered: Sequence[CandidateEntry]) -> str:
    rows = []
    chosen = item.chosen_candidate()
    for cand in ordered:
        mark = ' class="row-chosen"' if cand is chosen else ""
        member = " ✓" if cand.name in fused.members else ""
        rows.append(
            f"<tr{mark}><td>{'' if cand.rank is None else cand.rank}</td><td>{_e(cand.name)}{member}</td>"
            f'<td class="num">{_e(_fmt_score(cand.score))}</td>'
            f'<td class="num">{_e(_fmt_tws(cand.tws))}</td></tr>'
        )
    label = "fused" + (f" ({fused.method})" if fused.method else "")
    rows.append(
        f'<tr class="row-fused"><td></td><td>{_e(label)}</td><td class="num">—</td>'
        f'<td class="num">{_e(_fmt_tws(fused.tws))}</td></tr>'
    )
    known = [c.tws for c in item.candidates if c.tws is not None]
    delta = ""
    if fused.tws is not None and known:
        diff = fused.tws - max(known)
        delta = f'<p class="meta">Fused TWS minus the best candidate TWS: <b>{diff:+.3f}</b>.</p>'
    members = ", ".join(fused.members)
    head = f'<p class="meta">Fused from: {_e(members)} (✓ in the table).</p>' if members else ""
    return (
        f'{head}<table class="data"><thead><tr><th>rank</th><th>candidate</th><th class="num">score</th>'
        f'<th class="num">TWS</th></tr></thead><tbody>{"".join(rows)}</tbody></table>{delta}'
    )


def _audit_html(audit: AuditSection, images: _Images, prefix: str) -> str:
    parts = [f"<h3>Audit {_decision_pill(audit.decision)}</h3>"]
    if audit.note:
        parts.append(f'<p class="meta">{_e(audit.note)}</p>')
    if audit.panels is not None:
        shown = images.show(
            audit.panels, f"{prefix}/panels", "audit panels", f"{prefix}-panels", bound=PANELS_BOUND
        )
        parts.append(f'<figure class="panels" id="{prefix}-panels">{_thumb(shown, "audit panels")}</figure>')
    if audit.rows:
        rows = "".join(
            f"<tr><td>{_e(r.variant)}</td><td>{_e(r.knob)}</td>"
            f"<td>{_e('' if r.value is None else r.value)}</td>"
            f'<td class="num">{_e(_fmt_score(r.score))}</td><td>{_tags(r.tags)}</td>'
            f"<td>{_decision_pill(r.decision)}</td><td>{_e(r.reason)}</td></tr>"
            for r in audit.rows
        )
        parts.append(
            '<div class="scroll"><table class="data"><thead><tr><th>variant</th><th>knob</th><th>value</th>'
            '<th class="num">score</th><th>tags</th><th>decision</th><th>reason</th></tr></thead>'
            f"<tbody>{rows}</tbody></table></div>"
        )
    return "".join(parts)


LARGE_BOUND = (1024, 1024)
"""Large views: shown at their own size up to this, and never narrower than 512 px on screen."""
ZOOM_WIDTH = 384


def _array(image: ImageLike) -> np.ndarray:
    return load_image(image) if isinstance(image, Path) else image


def _view(images: _Images, array: np.ndarray, key: str, caption: str, back: str, note: str = "") -> str:
    shown = images.show(array, key, caption, back, bound=LARGE_BOUND)
    cls = ' class="pixelated"' if shown.pixelated or shown.width < 512 else ""
    # Large views load their PNG file beside the page (embedding them would make the page megabytes);
    # a one-file report ("embed") keeps them inline.
    src = shown.href if images.mode == "files" else shown.thumb
    extra = f" · {_e(note)}" if note else ""
    return (
        f'<figure class="view" id="{back}"><a class="thumb" href="{_e(shown.href)}" title="open full size">'
        f'<img{cls} src="{_e(src)}" width="{shown.width}" height="{shown.height}" '
        f'alt="{_e(caption)}"></a><figcaption><b>{_breakable(caption)}</b>{extra}</figcaption></figure>'
    )


def _crops(
    images: _Images,
    prefix: str,
    key: str,
    label: str,
    pair: tuple[np.ndarray, np.ndarray],
    rows: Sequence[tuple[str, np.ndarray]],
) -> str:
    """The same zoomed crop of every image in ``rows``, where the two images of ``pair`` differ most."""
    box = most_different_region(*pair)
    shown = [
        _view(images, zoom(box.cut(image), ZOOM_WIDTH), f"{prefix}/{key}-{n}", caption, f"{prefix}-{key}-{n}")
        for n, (caption, image) in enumerate(rows)
    ]
    return f'<h3>{_e(label)} ({_e(box.describe())})</h3><div class="views zoom">{"".join(shown)}</div>'


def _compare_html(item: ReportItem, ordered: Sequence[CandidateEntry], images: _Images, prefix: str) -> str:
    """The chosen output beside the runner-up and the LR (nearest, bicubic), large; the same zoomed crops
    where #1 and #2 differ most; and, for each vetoed candidate, the region it contradicts."""
    chosen = item.chosen_candidate()
    if chosen is None:
        return ""
    best = _array(chosen.image)
    size = best.shape[:2]
    lr = _array(item.lr)
    lr_near, lr_cubic = upsample_nearest(lr, size), upsample_bicubic(lr, size)
    hr = _array(item.hr) if item.hr is not None else None
    ranked = [c for c in ordered if c is not chosen and not c.abstained and c.rank is not None]
    views = [
        _view(images, lr_near, f"{prefix}/view-lr-n", "LR, nearest", f"{prefix}-view-lr-n", "its pixels"),
        _view(images, lr_cubic, f"{prefix}/view-lr-b", "LR, bicubic", f"{prefix}-view-lr-b"),
        _view(images, best, f"{prefix}/view-1", f"#1 chosen: {chosen.name}", f"{prefix}-view-1"),
    ]
    parts = []
    if ranked:
        runner = ranked[0]
        second = _array(runner.image)
        views.append(_view(images, second, f"{prefix}/view-2", f"#2: {runner.name}", f"{prefix}-view-2"))
        rows = [("LR, nearest", lr_near), (f"#1 {chosen.name}", best), (f"#2 {runner.name}", second)]
        if hr is not None and hr.shape[:2] == size:
            rows.append(("HR (not seen by the judge)", hr))
        parts.append(_crops(images, prefix, "zoom", "Where #1 and #2 differ most", (best, second), rows))
    for n, cand in enumerate(c for c in ordered if set(c.tags) & set(VETO_TAGS)):
        vetoed = _array(cand.image)
        why = ", ".join(t for t in cand.tags if t in VETO_TAGS)
        rows = [("LR, nearest", lr_near), (f"vetoed: {cand.name}", vetoed), (f"#1 {chosen.name}", best)]
        label = f"What {cand.name} contradicts ({why})"
        parts.append(_crops(images, prefix, f"veto{n}", label, (vetoed, best), rows))
    return f'<h3>Compare at full size</h3><div class="views">{"".join(views)}</div>' + "".join(parts)


def _item_html(index: int, item: ReportItem, images: _Images) -> str:
    prefix = f"item-{index}"
    ordered = _ordered(item.candidates)
    chosen = item.chosen_candidate()
    lr = images.show(item.lr, f"{prefix}/lr", f"{item.name}: LR input", f"{prefix}-lr")
    refs = [_ref_card(lr, "LR input", lr.size, f"{prefix}-lr")]
    if item.hr is not None:
        hr = images.show(item.hr, f"{prefix}/hr", f"{item.name}: HR reference", f"{prefix}-hr")
        refs.append(_ref_card(hr, "HR reference (not seen by the judge)", hr.size, f"{prefix}-hr"))
    if item.fused is not None:
        fused = item.fused
        shown = images.show(fused.image, f"{prefix}/fused", f"{item.name}: fused", f"{prefix}-fused")
        label = "Fused" + (f" ({fused.method})" if fused.method else "")
        detail = f"TWS {_fmt_tws(fused.tws)} · {shown.size}"
        refs.append(_ref_card(shown, label, detail, f"{prefix}-fused"))
    show_tws = any(c.tws is not None for c in item.candidates)
    cards = []
    for cand in ordered:
        position = item.candidates.index(cand)
        card_id = f"{prefix}-cand-{position}"
        shown = images.show(cand.image, f"{prefix}/cand-{position:02d}", f"{item.name}: {cand.name}", card_id)
        cards.append(_candidate_card(cand, shown, card_id, cand is chosen, show_tws))
    chosen_text = (
        f"Chosen: <b>{_e(chosen.name)}</b> {_score_badge(chosen.score, chosen.abstained)}"
        if chosen is not None
        else "No candidate chosen (every candidate abstained)."
    )
    parts = [
        f'<section class="item" id="{prefix}"><h2>{_e(item.name)}</h2>',
        f'<p class="chosen-line">{chosen_text}</p>',
        f'<p class="meta why">Why it beat the runner-up: {_e(item.why)}</p>' if item.why else "",
        f'<div class="grid refs">{"".join(refs)}</div>',
        _compare_html(item, ordered, images, prefix),
        f"<h3>Candidates ({len(ordered)}), best first</h3>",
        f'<div class="grid">{"".join(cards)}</div>',
    ]
    if item.fused is not None:
        parts.append("<h3>Fusion</h3>" + _fusion_table(item, item.fused, ordered))
    if item.audit is not None:
        parts.append(_audit_html(item.audit, images, prefix))
    parts.append("</section>")
    return "".join(parts)


def _summary_html(report: ReportData) -> str:
    rows = []
    for index, item in enumerate(report.items):
        chosen = item.chosen_candidate()
        rows.append(
            f'<tr><td><a href="#item-{index}">{_e(item.name)}</a></td>'
            f"<td>{_e(chosen.name) if chosen else '—'}</td>"
            f'<td class="num">{_score_badge(chosen.score, chosen.abstained) if chosen else "—"}</td>'
            f'<td class="num">{_e(_fmt_tws(item.fused.tws if item.fused else None))}</td>'
            f"<td>{_decision_pill(item.audit.decision if item.audit else None)}</td></tr>"
        )
    return (
        '<section class="summary"><h2>Summary</h2><div class="scroll"><table class="data">'
        '<thead><tr><th>item</th><th>chosen candidate</th><th class="num">score</th>'
        '<th class="num">fused TWS</th><th>audit</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def setting_text(value: Any) -> str:
    """A setting's value as text: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def settings_table(
    settings: Mapping[str, Any],
    *,
    summary: str = "Run settings",
    expanded: bool = True,
    text: Callable[[Any], str] = setting_text,
) -> str:
    """A collapsible key/value table (``<details class="settings">``) of a page's settings; empty when
    there are none, shown open when ``expanded``. ``text`` turns each value into the text shown (escaped)."""
    if not settings:
        return ""
    rows = "".join(
        f"<tr><th>{_e(key)}</th><td><code>{_e(text(value))}</code></td></tr>"
        for key, value in settings.items()
    )
    attribute = " open" if expanded else ""
    return (
        f'<details class="settings"{attribute}><summary>{_e(summary)}</summary>'
        f'<table class="kv">{rows}</table></details>'
    )


_CSS = """
:root{--fg:#1d2330;--muted:#5b6475;--line:#dde2ea;--bg:#f5f7fa;--card:#fff;--accent:#2f6fdf;
--hi:#1f8a4c;--mid:#b7791f;--lo:#c0392b;--none:#7b8494;color-scheme:light}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
color:var(--fg);background:var(--bg)}
main{max-width:1240px;margin:0 auto;padding:20px 20px 48px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:0 0 8px}h3{font-size:15px;margin:18px 0 8px}
.judge-note{color:var(--muted);margin:0 0 12px}
code{font:12px/1.4 ui-monospace,"DejaVu Sans Mono",monospace;background:#eef1f6;padding:1px 4px;
border-radius:4px;overflow-wrap:anywhere}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px;margin:16px 0}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(160px,1fr));gap:12px}
.views{display:flex;flex-wrap:wrap;gap:12px}.view{margin:0;max-width:100%}
.view img{display:block;width:512px;max-width:100%;height:auto}.views.zoom .view img{width:384px}
.view figcaption{font-size:12.5px;color:#3a4356;padding:4px 0;max-width:512px;overflow-wrap:anywhere}
.card{margin:0;background:var(--card);border:1px solid var(--line);border-radius:8px;overflow:hidden;
display:flex;flex-direction:column}
.card.chosen{border:2px solid var(--accent);box-shadow:0 0 0 3px #2f6fdf22}
.card.abstained{opacity:.75}
.card.ref{background:#fafbfd}
.thumb{background:#eceff4;aspect-ratio:1/1;display:flex;align-items:center;justify-content:center}
.thumb img{display:block;max-width:100%;max-height:100%;width:100%;height:100%;object-fit:contain}
img.pixelated{image-rendering:pixelated}
figcaption{padding:8px 10px 10px;display:flex;flex-direction:column;gap:4px}
.card-head{display:flex;align-items:center;gap:6px}.spacer{flex:1}
.card .name{font-weight:600;overflow-wrap:anywhere;line-height:1.3}
.rank{color:var(--muted);font-weight:600}
.badge{display:inline-block;min-width:40px;text-align:center;padding:1px 7px;border-radius:999px;color:#fff;
font-weight:700;font-size:12.5px}
.b-hi{background:var(--hi)}.b-mid{background:var(--mid)}.b-lo{background:var(--lo)}.b-none{background:var(--none)}
.pills{display:flex;flex-wrap:wrap;gap:4px}
.pill{display:inline-block;padding:0 8px;border-radius:999px;background:#e8edf6;color:#33415c;font-size:12px;
overflow-wrap:anywhere}
td>.pill,h3 .pill,.badge{white-space:nowrap}
.p-chosen{background:var(--accent);color:#fff}
.d-ok{background:#d8f3e3;color:#13653a}.d-warn{background:#fbeccc;color:#8a5a00}.d-bad{background:#f9d9d5;color:#9b2418}
.d-neutral{background:#e8edf6}
h3 .pill{font-size:13px;vertical-align:middle}
.meta{margin:0;color:var(--muted);font-size:12.5px}
.rationale{margin:0;font-size:12.5px;color:#3a4356;overflow-wrap:anywhere}
.rationale summary{cursor:pointer}
.abstain{color:var(--lo)}
.chosen-line{margin:0 0 10px}
table.data{border-collapse:collapse;width:100%;font-size:13px}
table.data th,table.data td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);
vertical-align:top;overflow-wrap:break-word}
table.data th{background:#f0f3f8;font-weight:600;white-space:nowrap}
.num{text-align:right!important;font-variant-numeric:tabular-nums;white-space:nowrap}
.row-chosen td{background:#eef4ff}.row-fused td{background:#f3fbf6;font-weight:600}
.scroll{overflow-x:auto}
table.kv{border-collapse:collapse;font-size:13px;margin-top:6px}
table.kv th{text-align:left;padding:2px 12px 2px 0;color:var(--muted);font-weight:500;vertical-align:top}
.settings summary{cursor:pointer;font-weight:600}
.panels{margin:0 0 10px}.panels .thumb{aspect-ratio:auto;background:none;justify-content:flex-start}
.panels img{width:auto;height:auto;max-width:100%}
@media (max-width:600px){main{padding:10px}section{padding:10px}.grid{gap:8px}}
footer{color:var(--muted);font-size:12px;text-align:center}
.lightbox{display:none}
.lightbox:target{display:flex;position:fixed;inset:0;background:#111f;z-index:10;flex-direction:column;
align-items:center;justify-content:center;padding:24px;gap:8px}
.lightbox img{min-width:min(512px,90vw);max-width:100%;max-height:90vh;object-fit:contain;
image-rendering:pixelated}
.lightbox a{color:#fff}
"""


def render_html(report: ReportData, images: _Images) -> str:
    """The whole page as a string (images written or embedded through ``images``)."""
    items = "".join(_item_html(i, item, images) for i, item in enumerate(report.items))
    lightboxes = "".join(
        f'<div class="lightbox" id="{box_id}"><img src="{uri}" alt="{_e(caption)}">'
        f'<a href="#{back}">{_e(caption)} · close ✕</a></div>'
        for box_id, uri, caption, back in images.lightboxes
    )
    note = f" {_e(report.note)}" if report.note else ""
    csp = "default-src 'none'; img-src data: 'self' file:; style-src 'unsafe-inline'"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(report.title)}</title><style>{_CSS}</style></head><body><main>"
        f"<header><h1>{_e(report.title)}</h1>"
        f'<p class="judge-note">Ranking produced by the judge <code>{_e(report.judge)}</code>; '
        f"scores and TWS are 0-100, higher is better. Click a thumbnail for the full image.{note}</p>"
        f"{settings_table(report.settings)}</header>"
        f"{_summary_html(report)}{items}"
        f"<footer>srjudge {_e(__version__)} · static report, no network access needed</footer>"
        f"</main>{lightboxes}</body></html>\n"
    )


def write_report(
    out_dir: Path,
    report: ReportData,
    *,
    full_images: FullImages = "files",
    thumb_size: int = THUMB_SIZE,
) -> Path:
    """Write ``out_dir/index.html`` (with ``full_images="files"`` also the full images); returns its path."""
    if full_images not in ("files", "embed"):
        raise ValueError(f"full_images must be 'files' or 'embed', got {full_images!r}")
    if not 16 <= thumb_size <= THUMB_SIZE:
        raise ValueError(f"thumb_size must be between 16 and {THUMB_SIZE}, got {thumb_size}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    page = render_html(report, _Images(out_dir, full_images, thumb_size))
    path = out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
