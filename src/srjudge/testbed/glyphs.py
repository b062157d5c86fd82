"""Seeded glyph rendering: digits and capital letters from matplotlib's bundled DejaVu fonts.

Pure functions only (arrays in, arrays out; the font files are read by PIL). A glyph is drawn at 4x the
output size with PIL, placed by one affine map (rotation, shear, scale, translation) that is shrunk and
clamped so the ink never leaves the frame, box-averaged down to ``size`` (antialiasing), then composed on
a textured paper with an ink level::

    rng = np.random.default_rng(0)
    image = render_glyph("B", FONT_FACES[0], rng=rng)        # float32 (32, 32, 3), dark ink on paper

``render_glyph`` = ``draw_glyph(char, face, sample_glyph_params(rng, jitter))``; the parameters are a
frozen :class:`GlyphParams` that serialises to JSON, so a glyph can be redrawn from its record.
Images are quantised to 8-bit levels (k / 255) so that what is held in memory equals a saved PNG.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from srjudge.errors import MissingDependencyError, SpecError
from srjudge.readers.base import CLASSES as CLASSES  # the 36 classes (digits, capitals), defined once

SUPERSAMPLE = 4
"""Glyphs are drawn at this multiple of the output size, then box-averaged down."""

FONT_PX = 96
"""Font size (pixels) used to rasterise a glyph before the affine placement."""

MARGIN = 1.5
"""Minimum distance (output pixels) between the ink's bounding parallelogram and the frame edge."""


@dataclass(frozen=True)
class FontFace:
    """One font face: ``name`` (file stem, e.g. ``DejaVuSans-Bold``), family, style and file path."""

    name: str
    family: str
    style: str
    path: Path

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "family": self.family, "style": self.style, "file": self.path.name}


def _mpl_font_dir() -> Path:
    """matplotlib's bundled font folder (``mpl-data/fonts/ttf``), found without importing matplotlib."""
    import importlib.util

    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "the glyph testbed renders matplotlib's bundled DejaVu fonts; install matplotlib."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "fonts" / "ttf"


_FAMILIES = (
    ("DejaVuSans", "DejaVu Sans", "Oblique"),
    ("DejaVuSerif", "DejaVu Serif", "Italic"),
    ("DejaVuSansMono", "DejaVu Sans Mono", "Oblique"),
)
"""Each family's file stem, name and slanted style; a family has four faces: regular, bold, slanted and
bold slanted (files ``<stem>``, ``<stem>-Bold``, ``<stem>-<Slant>``, ``<stem>-Bold<Slant>``)."""


def _family_faces(stem: str, family: str, slant: str, font_dir: Path) -> tuple[FontFace, ...]:
    styles = (
        ("", "regular"),
        ("-Bold", "bold"),
        (f"-{slant}", slant.lower()),
        (f"-Bold{slant}", f"bold {slant.lower()}"),
    )
    return tuple(
        FontFace(stem + suffix, family, style, font_dir / f"{stem}{suffix}.ttf") for suffix, style in styles
    )


FONT_FACES: tuple[FontFace, ...] = tuple(
    face for stem, family, slant in _FAMILIES for face in _family_faces(stem, family, slant, _mpl_font_dir())
)
"""The 12 DejaVu faces bundled with matplotlib (Sans, Serif, Sans Mono; regular, bold, oblique/italic)."""

FACE_NAMES: tuple[str, ...] = tuple(f.name for f in FONT_FACES)


def get_face(name: str | FontFace) -> FontFace:
    """The face called ``name`` (case-insensitive); an unknown name gets a did-you-mean error."""
    if isinstance(name, FontFace):
        return name
    by_key = {f.name.lower(): f for f in FONT_FACES}
    key = str(name).strip().lower()
    if key in by_key:
        return by_key[key]
    close = difflib.get_close_matches(key, list(by_key), n=3, cutoff=0.6)
    hint = f" Did you mean: {', '.join(by_key[c].name for c in close)}?" if close else ""
    raise SpecError(f"unknown font face {name!r}.{hint} Available: {', '.join(FACE_NAMES)}.")


def check_char(char: str) -> str:
    """Validate a class symbol (one of :data:`CLASSES`)."""
    if not isinstance(char, str) or len(char) != 1 or char not in CLASSES:
        raise SpecError(f"glyph class must be one character of {CLASSES!r}, got {char!r}")
    return char


@lru_cache(maxsize=32)
def _font(path: Path) -> ImageFont.FreeTypeFont:
    if not path.is_file():
        raise MissingDependencyError(
            f"font file {path} is missing; the testbed uses the DejaVu fonts bundled with matplotlib "
            "(mpl-data/fonts/ttf). Reinstall matplotlib."
        )
    return ImageFont.truetype(str(path), FONT_PX)


@dataclass(frozen=True)
class Jitter:
    """Ranges the per-glyph parameters are drawn from (uniformly, from a seeded generator).

    ``rotation`` (degrees, +/-), ``shear`` (x += shear * y, +/-), ``height`` (glyph cap height as a
    fraction of the frame; the fit to the frame may shrink it), ``translate`` (fraction of the frame,
    +/-; clamped to keep the ink inside), ``stroke`` (integer pixels at the 96 px font size: negative
    thins by erosion, positive thickens with PIL's stroke), ``ink`` and ``paper`` (gray levels; paper is
    at least ``min_contrast`` above ink), ``gradient`` and ``texture`` (amplitude of a linear paper
    gradient and of smooth low-frequency paper noise).
    """

    rotation: float = 8.0
    shear: float = 0.2
    height: tuple[float, float] = (0.62, 0.82)
    translate: float = 0.06
    stroke: tuple[int, int] = (-1, 4)
    ink: tuple[float, float] = (0.0, 0.3)
    paper: tuple[float, float] = (0.75, 1.0)
    min_contrast: float = 0.5
    gradient: float = 0.05
    texture: float = 0.04

    def __post_init__(self) -> None:
        for name in ("rotation", "shear", "translate", "min_contrast", "gradient", "texture"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise SpecError(f"Jitter.{name} must be a non-negative number, got {value!r}")
        for name in ("height", "ink", "paper"):
            lo, hi = getattr(self, name)
            if not (0.0 <= lo <= hi <= 1.0):
                raise SpecError(
                    f"Jitter.{name} must be (low, high) with 0 <= low <= high <= 1, got {(lo, hi)}"
                )
        if self.height[0] <= 0.1:
            raise SpecError(f"Jitter.height must start above 0.1 of the frame, got {self.height}")
        lo, hi = self.stroke
        if int(lo) != lo or int(hi) != hi or lo > hi or lo < -2 or hi > 8:
            raise SpecError(f"Jitter.stroke must be integers (low, high) within -2..8, got {self.stroke}")
        if self.paper[1] - self.ink[0] < self.min_contrast:
            raise SpecError(
                f"Jitter: paper {self.paper} and ink {self.ink} cannot reach min_contrast {self.min_contrast}"
            )

    @classmethod
    def none(cls) -> Jitter:
        """No jitter: upright, centred, 0.72 high, black ink on white paper, no texture."""
        return cls(
            rotation=0.0,
            shear=0.0,
            height=(0.72, 0.72),
            translate=0.0,
            stroke=(0, 0),
            ink=(0.0, 0.0),
            paper=(1.0, 1.0),
            min_contrast=0.0,
            gradient=0.0,
            texture=0.0,
        )

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Jitter:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(
                f"Jitter: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**kwargs)


@dataclass(frozen=True)
class GlyphParams:
    """Every drawn parameter of one glyph; with the class and face it fixes the image exactly."""

    rotation: float
    shear: float
    height: float
    tx: float
    ty: float
    stroke: int
    ink: float
    paper: float
    gradient: float
    gradient_angle: float
    texture: float
    texture_seed: int

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GlyphParams:
        try:
            return cls(**{f.name: data[f.name] for f in fields(cls)})
        except KeyError as exc:
            raise SpecError(f"glyph parameters: missing field {exc.args[0]!r}") from None


def sample_glyph_params(rng: np.random.Generator, jitter: Jitter = Jitter()) -> GlyphParams:
    """Draw one glyph's parameters from ``jitter``'s ranges (a fixed number of draws, in a fixed order)."""
    u = rng.uniform(size=10)
    ink = jitter.ink[0] + u[6] * (jitter.ink[1] - jitter.ink[0])
    paper_lo = max(jitter.paper[0], min(ink + jitter.min_contrast, jitter.paper[1]))
    paper = paper_lo + u[7] * (jitter.paper[1] - paper_lo)
    stroke = int(rng.integers(int(jitter.stroke[0]), int(jitter.stroke[1]) + 1))
    return GlyphParams(
        rotation=float((2 * u[0] - 1) * jitter.rotation),
        shear=float((2 * u[1] - 1) * jitter.shear),
        height=float(jitter.height[0] + u[2] * (jitter.height[1] - jitter.height[0])),
        tx=float((2 * u[3] - 1) * jitter.translate),
        ty=float((2 * u[4] - 1) * jitter.translate),
        stroke=stroke,
        ink=float(ink),
        paper=float(paper),
        gradient=float(u[5] * jitter.gradient),
        gradient_angle=float(u[8] * 2 * math.pi),
        texture=float(u[9] * jitter.texture),
        texture_seed=int(rng.integers(0, 2**63 - 1)),
    )


@lru_cache(maxsize=4096)
def _raster(char: str, face: FontFace, stroke: int) -> Image.Image:
    """White-on-black 'L' raster of ``char``, cropped to its ink plus a 4 px border (cached; read-only)."""
    font = _font(face.path)
    pad = FONT_PX // 2 + 2 * max(stroke, 0)
    canvas = Image.new("L", (2 * FONT_PX + 2 * pad, 2 * FONT_PX + 2 * pad), 0)
    draw = ImageDraw.Draw(canvas)
    width = max(stroke, 0)
    draw.text((pad, pad), char, font=font, fill=255, stroke_width=width, stroke_fill=255)
    if stroke < 0:
        canvas = canvas.filter(ImageFilter.MinFilter(2 * (-stroke) + 1))
    box = canvas.getbbox()
    if box is None:  # pragma: no cover - every class has ink in DejaVu
        raise MissingDependencyError(f"font {face.path} renders no ink for {char!r}")
    return canvas.crop((box[0] - 4, box[1] - 4, box[2] + 4, box[3] + 4))


@lru_cache(maxsize=64)
def _cap_height(face: FontFace, stroke: int) -> float:
    """Ink height of 'H' in this face and stroke: the reference the glyph height is scaled to."""
    box = _raster("H", face, stroke).getbbox()
    if box is None:  # pragma: no cover - DejaVu always has 'H'
        raise MissingDependencyError(f"font {face.path} renders no ink for 'H'")
    return float(box[3] - box[1])


def draw_coverage(char: str, face: FontFace | str, params: GlyphParams, *, size: int = 32) -> np.ndarray:
    """Ink coverage in [0, 1] (float32, ``size`` x ``size``) of the placed glyph, before paper and ink.

    The ink's bounding box, mapped by the affine, is kept at least :data:`MARGIN` output pixels inside
    the frame (scale shrunk, then translation clamped), so the outermost pixel ring never holds ink.
    """
    check_char(char)
    face = get_face(face)
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise SpecError(f"glyph size must be an integer >= 8, got {size!r}")
    raster = _raster(char, face, params.stroke)
    box = raster.getbbox()
    if box is None:  # pragma: no cover - every class has ink in DejaVu
        raise MissingDependencyError(f"font {face.path} renders no ink for {char!r}")
    big = size * SUPERSAMPLE
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    theta = math.radians(params.rotation)
    c, s = math.cos(theta), math.sin(theta)
    # forward linear part without scale: rotation @ shear, shear first (x += shear * y)
    m00, m01 = c, c * params.shear - s
    m10, m11 = s, s * params.shear + c
    corners = [(x - cx, y - cy) for x in (x0, x1) for y in (y0, y1)]
    xs = [m00 * px + m01 * py for px, py in corners]
    ys = [m10 * px + m11 * py for px, py in corners]
    half = big / 2.0 - MARGIN * SUPERSAMPLE
    scale = params.height * big / _cap_height(face, params.stroke)
    ext_x, ext_y = max(abs(v) for v in xs), max(abs(v) for v in ys)
    scale = min(scale, half / max(ext_x, 1e-6), half / max(ext_y, 1e-6))
    # translation, clamped so the mapped box stays inside [-half, half]
    lo_x, hi_x = -half - scale * min(xs), half - scale * max(xs)
    lo_y, hi_y = -half - scale * min(ys), half - scale * max(ys)
    tx = min(max(params.tx * big, lo_x), hi_x)
    ty = min(max(params.ty * big, lo_y), hi_y)
    # inverse map (output -> source) for PIL: src = centre + M^-1 (out - big/2 - t)
    a, b, d, e = scale * m00, scale * m01, scale * m10, scale * m11
    det = a * e - b * d
    ia, ib, id_, ie = e / det, -b / det, -d / det, a / det
    ox, oy = big / 2.0 + tx, big / 2.0 + ty
    coeffs = (ia, ib, cx - ia * ox - ib * oy, id_, ie, cy - id_ * ox - ie * oy)
    placed = raster.transform((big, big), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR)
    small = placed.resize((size, size), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / np.float32(255.0)


def paper_field(params: GlyphParams, size: int) -> np.ndarray:
    """The paper's gray level per pixel: base level + linear gradient + smooth seeded noise."""
    ramp = np.linspace(-0.5, 0.5, size)
    u = ramp[None, :] * math.cos(params.gradient_angle) + ramp[:, None] * math.sin(params.gradient_angle)
    field = params.paper + params.gradient * u
    if params.texture > 0:
        rng = np.random.default_rng(params.texture_seed)
        coarse = rng.standard_normal((5, 5)).astype(np.float32)
        smooth = np.asarray(Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC))
        field = field + params.texture * smooth.astype(np.float64) / 2.0
    return field


def compose(coverage: np.ndarray, params: GlyphParams) -> np.ndarray:
    """Coverage onto paper: ``paper * (1 - cov) + ink * cov``; RGB float32 at 8-bit levels."""
    size = coverage.shape[0]
    gray = paper_field(params, size) * (1.0 - coverage) + params.ink * coverage
    levels = np.round(np.clip(gray, 0.0, 1.0) * 255.0).astype(np.float32) / np.float32(255.0)
    return np.ascontiguousarray(np.repeat(levels[:, :, None], 3, axis=2), dtype=np.float32)


def draw_glyph(char: str, face: FontFace | str, params: GlyphParams, *, size: int = 32) -> np.ndarray:
    """The glyph image for fixed parameters: float32 (size, size, 3), dark ink on light paper."""
    return compose(draw_coverage(char, face, params, size=size), params)


def render_glyph(
    char: str,
    face: FontFace | str,
    *,
    size: int = 32,
    rng: np.random.Generator,
    jitter: Jitter = Jitter(),
) -> np.ndarray:
    """Render ``char`` in ``face`` with parameters drawn from ``rng`` within ``jitter``'s ranges.

    Returns float32 RGB (size, size, 3) in [0, 1] at 8-bit levels, dark ink on light paper.
    """
    return draw_glyph(char, face, sample_glyph_params(rng, jitter), size=size)
