"""Style sampling and the renderer of SynthFaces: attributes in, uint8 face images out.

`sample_style` turns the binary attributes (see `fapkit.data.synth.attributes`)
into per-image continuous render parameters; `render_faces` draws them, vectorised
over chunks of `CHUNK` images.

Visual cues (canonical face frame: face height 2 units, eyes near v=-0.08, mouth v=0.55):

- **Male** (salient, large area): short hair cap instead of long hair falling behind the
  head to the shoulders (92 % of each sex follow this rule), beard/stubble shading over
  the lower face for 60 % of men, a wider jaw and thicker eyebrows.
- **Attractive** (subtle, low contrast): a latent score ``s ~ N(y, 0.40)`` drives slightly
  larger eyes, smoother skin (less blemish noise), a warm glow over the face (a hue shift
  that survives 32 px), a faint cheek blush and more symmetric
  eye heights. The overlap of ``s`` between classes caps accuracy near 85-90 %, like the
  subjective CelebA label.
- **Smiling**: upward mouth curvature, a wider mouth and visible teeth.
- **Young**: absence of forehead wrinkles, nasolabial folds and under-eye bags; 45 % of
  non-young faces also get grey hair.
- **Blond_Hair**: yellow-blond hair colour (others: black, browns, auburn, grey).
- **Wavy_Hair**: zig-zag, higher-contrast hair strands instead of straight strands.
- **Eyeglasses**: dark round frames and a bridge around the eyes.
- **Heavy_Makeup**: saturated lipstick, eye shadow and stronger blush.
- **Bangs**: a fringe of hair low across the forehead.
- **Age_Group** (multi-valued, codes 0..3; `sample_age_style`): crow's feet, as many short dark
  lines fanning out from the outer corner of each eye as the code (none for 0-19, three for 60+).
  A small, local cue: a face of code 0, and every pixel away from the eye corners, renders exactly
  as before the attribute existed (generator version 6).

Nuisance variation: face position, scale and roll, a small yaw (feature shift), skin tone,
background colour/gradient, clothing colour, lighting level/direction/colour cast and
sensor noise. Rendering is done at the requested ``size`` with anti-aliased soft edges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Union

import numpy as np
import torch

#: Images rendered per vectorised chunk; fixed because the noise stream is drawn per chunk.
CHUNK = 64

# Pose limits; the face crop in _face_crop relies on them.
_POS_MAX, _K_MAX, _ROLL_MAX = 0.10, 0.46, 0.25


# ============================================================================ style sampling
_HAIR_PALETTE = np.array(
    [[0.10, 0.08, 0.07], [0.24, 0.15, 0.09], [0.40, 0.26, 0.14], [0.50, 0.25, 0.12]], np.float32
)
_BLOND = np.array([0.86, 0.72, 0.42], np.float32)
_GREY = np.array([0.62, 0.60, 0.58], np.float32)
_SKIN_LIGHT = np.array([0.96, 0.80, 0.68], np.float32)
_SKIN_DARK = np.array([0.42, 0.28, 0.20], np.float32)


def sample_style(a: Mapping[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-image continuous render parameters; every draw is made for all n at once."""
    n = len(a["Male"])
    u = lambda lo, hi: rng.uniform(lo, hi, n)  # noqa: E731
    g = lambda mu, sd: rng.normal(mu, sd, n)  # noqa: E731
    male, attr = a["Male"].astype(np.float64), a["Attractive"].astype(np.float64)
    smile, young = a["Smiling"].astype(np.float64), a["Young"].astype(np.float64)
    s = {}
    # pose
    s["cx"] = np.clip(g(0, 0.04), -_POS_MAX, _POS_MAX)
    s["cy"] = np.clip(g(-0.02, 0.04), -_POS_MAX, _POS_MAX)
    s["k"] = u(0.38, _K_MAX)  # face half-height in image units ([-1, 1] frame)
    s["theta"] = np.clip(g(0, 0.08), -_ROLL_MAX, _ROLL_MAX)
    s["yaw"] = np.clip(g(0, 0.04), -0.1, 0.1)
    # male cues
    s["long"] = np.where(male == 1, rng.random(n) < 0.08, rng.random(n) < 0.92).astype(np.float64)
    s["hair_len"] = u(0.9, 1.6)
    s["beard"] = male * (rng.random(n) < 0.6) * u(0.3, 0.7)
    s["fw"] = 0.70 + 0.07 * male + g(0, 0.02)
    s["brow_t"] = 0.028 + 0.02 * male + g(0, 0.005)
    s["hairline"] = np.where(male == 1, g(-0.56, 0.06), g(-0.50, 0.04))
    # attractiveness latent: overlapping classes -> imperfect, subjective-like label
    lat = attr + g(0, 0.40) - 0.5
    s["eye_scale"] = 1.0 + 0.22 * lat + g(0, 0.04)
    s["skin_rough"] = np.clip(0.04 - 0.03 * lat + g(0, 0.006), 0.005, 0.09)
    makeup = a["Heavy_Makeup"].astype(np.float64)
    s["blush"] = np.clip(0.12 + 0.30 * lat + 0.12 * makeup + g(0, 0.02), 0.0, 0.55)
    s["asym"] = np.clip(0.035 - 0.035 * lat, 0.0, 0.08) * np.sign(g(0, 1))
    # smile
    s["curv"] = np.where(smile == 1, g(0.13, 0.03), g(-0.01, 0.02))
    s["open"] = np.where(smile == 1, u(0.05, 0.11), 0.0)
    s["mouth_w"] = 0.20 + 0.05 * smile + g(0, 0.015)
    # age
    s["age"] = (1 - young) * u(0.5, 1.0) + young * (rng.random(n) < 0.1) * u(0.0, 0.3)
    grey = (1 - young) * (rng.random(n) < 0.45) * (1 - a["Blond_Hair"])
    # other attributes
    s["glasses"] = a["Eyeglasses"].astype(np.float64)
    s["frame_t"] = u(0.022, 0.04)
    s["makeup"] = makeup
    s["bangs"] = a["Bangs"].astype(np.float64)
    wavy = a["Wavy_Hair"].astype(np.float64)
    s["wave_amp"] = wavy * u(0.7, 1.1)
    s["hair_contrast"] = 0.10 + 0.22 * wavy + g(0, 0.02)
    s["wave_phase"] = u(0, 1)
    # lighting and noise
    s["light"] = u(0.78, 1.12)
    s["grad_x"], s["grad_y"] = g(0, 0.12), g(0, 0.08)
    s["sensor"] = u(0.005, 0.03)
    # colours, [n, 3]
    tone = u(0, 1)[:, None] ** 0.8
    s["skin"] = _SKIN_LIGHT * (1 - tone) + _SKIN_DARK * tone + rng.normal(0, 0.02, (n, 3))
    # attractive: a warm glow over the whole face, a large-area but low-contrast hue shift that
    # survives downsampling to 32 px (the eye/blush cues alone vanish at that size)
    s["skin"] = s["skin"] * (1.0 + lat[:, None] * np.array([0.10, -0.02, -0.08]))
    pick = _HAIR_PALETTE[rng.choice(len(_HAIR_PALETTE), n, p=[0.35, 0.3, 0.2, 0.15])]
    hair = np.where(a["Blond_Hair"][:, None] == 1, _BLOND + rng.normal(0, 0.04, (n, 3)), pick)
    hair = np.where(grey[:, None] == 1, _GREY, hair) * u(0.85, 1.12)[:, None]
    s["hair"] = hair
    s["bg"] = np.clip(u(0.25, 0.85)[:, None] + rng.normal(0, 0.09, (n, 3)), 0.05, 0.95)
    s["cloth"] = rng.uniform(0.08, 0.75, (n, 3))
    s["lip"] = np.where(
        makeup[:, None] == 1,
        np.array([0.72, 0.12, 0.22]) + rng.normal(0, 0.05, (n, 3)),
        s["skin"] * np.array([0.85, 0.58, 0.58]),
    )
    s["frame"] = rng.uniform(0.02, 0.25, (n, 1)) * np.ones(3)
    s["iris"] = rng.uniform(0.05, 0.35, (n, 1)) * np.array([0.8, 0.7, 0.6])
    s["cast"] = 1.0 + rng.normal(0, 0.04, (n, 3))
    return {k: np.asarray(v, np.float32) for k, v in s.items()}


def sample_age_style(age_group: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Render parameters of the Age_Group cue: ``crow`` (lines per eye corner = the code) and their thickness.

    Drawn from a stream of its own (not `sample_style`'s), so every other parameter keeps its value.
    """
    n = len(age_group)
    return {"crow": np.asarray(age_group, np.float32), "crow_t": rng.uniform(0.018, 0.026, n).astype(np.float32)}


# ============================================================================ rendering
def _p(style: Mapping[str, np.ndarray], key: str) -> torch.Tensor:
    """Per-image scalar as an [n, 1, 1] tensor (broadcasts over H, W)."""
    return torch.from_numpy(style[key]).view(-1, 1, 1)


def _c(style: Mapping[str, np.ndarray], key: str) -> torch.Tensor:
    """Per-image colour as an [n, 3, 1, 1] tensor."""
    return torch.from_numpy(style[key]).view(-1, 3, 1, 1)


def _soft(sd: torch.Tensor, inv_px: torch.Tensor) -> torch.Tensor:
    """Signed distance (positive inside, canonical units) -> anti-aliased coverage, in place."""
    return sd.mul_(inv_px).add_(0.5).clamp_(0.0, 1.0)


Num = Union[float, torch.Tensor]


def _ellipse(u: torch.Tensor, v: torch.Tensor, cu: Num, cv: Num, rx: Num, ry: Num) -> torch.Tensor:
    """Approximate signed distance to an ellipse: (1 - q) * min_radius / 2."""
    q = (u - cu).div_(rx).square_()
    q.add_((v - cv).div_(ry).square_())
    r = torch.minimum(torch.as_tensor(rx), torch.as_tensor(ry))
    return q.sub_(1.0).mul_(-0.5 * r)


def _band(d: torch.Tensor, half: float | torch.Tensor) -> torch.Tensor:
    """Signed distance of a band |d| < half, in place on d."""
    return d.abs_().neg_().add_(half)


def _tri(x: torch.Tensor) -> torch.Tensor:
    """Triangle wave in [0, 0.5] with period 1, in place (cheaper than sin)."""
    return x.sub_(torch.floor(x)).sub_(0.5).abs_()


@dataclass
class _Canvas:
    """One chunk's drawing state: its styles, the canonical face frame of every pixel, its noise, the image."""

    st: Mapping[str, np.ndarray]
    grid: torch.Tensor                 # pixel centres in [-1, 1]
    u: torch.Tensor                    # canonical face frame: face centre at 0, half-height 1, rotated by the roll
    v: torch.Tensor
    inv_px: torch.Tensor               # 1 / (pixel size in canonical units)
    noise: torch.Tensor                # uniform [0, 1), [n, S, S]
    nz: torch.Tensor                   # noise − 0.5, [n, 1, S, S]
    img: torch.Tensor | None = None

    def p(self, key: str) -> torch.Tensor:
        return _p(self.st, key)

    def c(self, key: str) -> torch.Tensor:
        return _c(self.st, key)


@dataclass
class _Face:
    """The face crop's view of the canvas (everything between hairline and chin lives inside it)."""

    img: torch.Tensor                  # a view into the canvas' image
    u: torch.Tensor
    v: torch.Tensor
    q: torch.Tensor                    # the face ellipse's quadratic form
    alpha: torch.Tensor                # the face's coverage
    fu: torch.Tensor                   # the feature frame, shifted by yaw
    au: torch.Tensor                   # |fu|
    side: torch.Tensor                 # sign(fu): which half of the face
    crop: tuple[slice, slice]


def _render_chunk(st: Mapping[str, np.ndarray], size: int, noise: np.ndarray) -> torch.Tensor:
    """Render one chunk of faces; returns uint8 [n, 3, size, size]. Back to front: each step paints over the last."""
    cv = _canvas(st, size, noise)
    hair = _hair_texture(cv)
    _paint_back_hair(cv, hair)
    _paint_body(cv)
    face = _face_region(cv, size)
    _paint_skin(cv, face)
    _paint_beard_and_blush(cv, face)
    dark = torch.zeros_like(face.u)  # accumulated darkening of line-like features
    ey = _paint_eyes(cv, face, dark)
    _darken_brows_nose_and_age(cv, face, dark, ey)
    face.img.mul_((1.0 - dark.clamp_(max=0.8)).unsqueeze(1))
    _paint_mouth(cv, face)
    _paint_glasses(cv, face)
    _paint_front_hair(cv, hair)
    return _light_and_quantise(cv, size)


def _canvas(st: Mapping[str, np.ndarray], size: int, noise: np.ndarray) -> _Canvas:
    """The face frame of every pixel, the noise and the background (colour, vertical gradient, texture noise)."""
    grid = (torch.arange(size, dtype=torch.float32) + 0.5) * (2.0 / size) - 1.0
    k, th = _p(st, "k"), _p(st, "theta")
    cos, sin = torch.cos(th) / k, torch.sin(th) / k
    dx = grid.view(1, 1, size) - _p(st, "cx")
    dy = grid.view(1, size, 1) - _p(st, "cy")
    noise_t = torch.from_numpy(noise)
    cv = _Canvas(st, grid, u=dx * cos + dy * sin, v=dy * cos - dx * sin, inv_px=k * (size / 2.0), noise=noise_t,
                 nz=(noise_t - 0.5).unsqueeze(1))
    img = _c(st, "bg") * (1.0 + 0.25 * grid.view(1, 1, size, 1))
    cv.img = img + 0.04 * cv.nz
    return cv


def _hair_texture(cv: _Canvas) -> torch.Tensor:
    """The hair colour field shared by back and front hair: straight or zig-zag strands."""
    hx = cv.u * 3.2 + cv.p("wave_amp") * _tri(cv.v * 2.2 + cv.p("wave_phase"))
    tex = 1.0 + 4.0 * cv.p("hair_contrast") * (_tri(hx) - 0.25)  # brightness x (1 +- contrast)
    return cv.c("hair") * tex.unsqueeze(1)


def _paint_back_hair(cv: _Canvas, hair: torch.Tensor) -> None:
    """Long hair behind the head, falling towards the shoulders."""
    back = _soft(_ellipse(cv.u, cv.v, 0.0, 0.25, cv.p("fw") + 0.30, cv.p("hair_len")), cv.inv_px)
    back.mul_(cv.p("long"))
    cv.img.lerp_(hair, back.unsqueeze(1))


def _paint_body(cv: _Canvas) -> None:
    """Shoulders (clothing: a trapezoid below the chin), then the neck."""
    u, v, ip = cv.u, cv.v, cv.inv_px
    sh = _soft(v - 1.35, ip).mul_(_soft(1.05 + 0.55 * (v - 1.35) - u.abs(), ip))
    cv.img.lerp_(cv.c("cloth"), sh.unsqueeze(1))
    neck = _soft(_band(u.clone(), 0.33), ip).mul_(_soft(1.5 - v, ip)).mul_(_soft(v - 0.3, ip))
    cv.img.lerp_(cv.c("skin") * 0.78, neck.unsqueeze(1))


def _face_region(cv: _Canvas, size: int) -> _Face:
    """The fixed crop that holds every face feature for any pose (saves ~2/3 of the work)."""
    r0, r1, c0, c1 = _face_crop(size)
    rows, cols = slice(r0, r1), slice(c0, c1)
    uc, vc = cv.u[:, rows, cols], cv.v[:, rows, cols]
    fw = cv.p("fw")
    q = (uc / fw).square_().add_(vc.square())
    fu = uc - cv.p("yaw")
    return _Face(cv.img[:, :, rows, cols], uc, vc, q, _soft((1.0 - q) * (0.5 * fw), cv.inv_px), fu, fu.abs(),
                 torch.sign(fu), (rows, cols))


def _paint_skin(cv: _Canvas, face: _Face) -> None:
    """Skin: tone x radial shading (a 3-D look) x blemish texture (rough = less attractive)."""
    rows, cols = face.crop
    shade = (1.0 - 0.22 * face.q.clamp(max=1.0)).unsqueeze(1)
    rough = 1.0 + cv.p("skin_rough").unsqueeze(1) * 2.5 * cv.nz[:, :, rows, cols]
    face.img.lerp_(cv.c("skin") * shade * rough, face.alpha.unsqueeze(1))


def _paint_beard_and_blush(cv: _Canvas, face: _Face) -> None:
    """Beard / stubble on the lower face, textured; blush on the cheeks (attractive: stronger; make-up: much)."""
    rows, cols = face.crop
    # a ramp over ~0.2 units instead of a hard edge, so it reads as shading, not a mask
    beard = (face.v - 0.12).mul_(5.0).clamp_(0.0, 1.0).mul_(face.alpha).mul_(cv.p("beard"))
    beard.mul_(0.75 + 0.5 * cv.noise[:, rows, cols])
    face.img.lerp_(cv.c("hair") * 0.6, beard.unsqueeze(1))
    blush = _soft(_ellipse(face.au, face.v, 0.40, 0.24, 0.19, 0.13), cv.inv_px).mul_(cv.p("blush"))
    face.img.lerp_(torch.tensor([0.85, 0.35, 0.40]).view(1, 3, 1, 1), blush.unsqueeze(1))


def _paint_eyes(cv: _Canvas, face: _Face, dark: torch.Tensor) -> torch.Tensor:
    """Eye shadow, whites, iris and the upper lid line; asymmetric height for less attractive faces. Returns the
    eyes' height."""
    au, vc, ip = face.au, face.v, cv.inv_px
    es = cv.p("eye_scale")
    ey = -0.08 + face.side * cv.p("asym")
    eye_white = _soft(_ellipse(au, vc, 0.29, ey, 0.12 * es, 0.06 * es), ip)
    shadow = _soft(_ellipse(au, vc, 0.29, ey - 0.06, 0.15, 0.07), ip).mul_(0.35 * cv.p("makeup"))
    face.img.lerp_(torch.tensor([0.45, 0.25, 0.45]).view(1, 3, 1, 1), shadow.unsqueeze(1))
    face.img.lerp_(torch.tensor([0.93, 0.92, 0.90]).view(1, 3, 1, 1), eye_white.unsqueeze(1))
    iris = _soft(_ellipse(au, vc, 0.29, ey, 0.05 * es, 0.05 * es), ip).mul_(eye_white)
    face.img.lerp_(cv.c("iris"), iris.unsqueeze(1))
    dark.add_(_soft(_band(vc - ey + 0.058 * es, 0.012), ip).mul_(_soft(0.15 * es - (au - 0.29).abs(), ip)).mul_(0.6))
    return ey


def _darken_brows_nose_and_age(cv: _Canvas, face: _Face, dark: torch.Tensor, ey: torch.Tensor) -> None:
    """Line-like features, added to `dark` in this order: eyebrows (male thicker), nose (nostril shadow, a faint
    side line), age (forehead lines, nasolabial folds, under-eye bags) and the age group's crow's feet."""
    fu, au, vc, ip = face.fu, face.au, face.v, cv.inv_px
    brow = _soft(_band(vc + 0.25 + 0.1 * (au - 0.3).square(), cv.p("brow_t")), ip)
    brow.mul_(_soft(0.14 - (au - 0.30).abs(), ip))
    dark.add_(brow.mul_(0.55))
    dark.add_(_soft(_ellipse(fu, vc, 0.0, 0.32, 0.09, 0.03), ip).mul_(0.3))
    dark.add_(_soft(_band(fu - 0.05, 0.012), ip).mul_(_soft(0.27 - vc, ip)).mul_(_soft(vc + 0.02, ip)).mul_(0.12))
    wr = _soft(_band(vc + 0.38, 0.012), ip).add_(_soft(_band(vc + 0.45, 0.012), ip))
    wr.mul_(_soft(0.32 - au, ip))
    fold = _soft(_band(au - 0.17 - 0.28 * (vc - 0.25), 0.014), ip)
    fold.mul_(_soft(vc - 0.22, ip)).mul_(_soft(0.55 - vc, ip))
    bag = _soft(_band(vc - ey - 0.11 - 0.5 * (au - 0.29).square(), 0.01), ip).mul_(_soft(0.1 - (au - 0.29).abs(), ip))
    dark.add_(wr.add_(fold).add_(bag).mul_(0.32 * cv.p("age")))
    if "crow" in cv.st:  # absent from older styles
        _darken_crows_feet(cv, face, dark, ey)


def _darken_crows_feet(cv: _Canvas, face: _Face, dark: torch.Tensor, ey: torch.Tensor) -> None:
    """`crow` short lines fanning out from each outer eye corner."""
    crow, crow_t, ip = cv.p("crow"), cv.p("crow_t"), cv.inv_px
    du = face.au - (0.29 + 0.12 * cv.p("eye_scale") + 0.03)
    dv = face.v - ey
    for j, angle in enumerate((0.0, 0.5, -0.5)):  # v grows downwards: +0.5 fans down and out
        ca, sa = math.cos(angle), math.sin(angle)
        along = du * ca + dv * sa
        line = _soft(_band(dv * ca - du * sa, crow_t), ip).mul_(_soft(along.clone(), ip))
        line.mul_(_soft(0.13 - along, ip)).mul_(face.alpha).mul_((crow > j).float())
        dark.add_(line.mul_(0.5))


def _paint_mouth(cv: _Canvas, face: _Face) -> None:
    """Lips: a band bounded by two curves; a smile curves up and shows teeth."""
    ip = cv.inv_px
    mw, curv, opn = cv.p("mouth_w"), cv.p("curv"), cv.p("open")
    w = (face.fu / mw).square()
    inx = _soft((1.0 - w) * (0.5 * mw), ip)
    mid = 0.55 - curv * w + 0.5 * opn * (1.0 - w).clamp(min=0)
    half = 0.5 * opn * (1.0 - w).clamp(min=0)
    lips = _soft(_band(face.v - mid, half + 0.03), ip).mul_(inx)
    face.img.lerp_(cv.c("lip"), lips.unsqueeze(1))
    teeth = _soft(_band(face.v - mid, half - 0.012), ip).mul_(inx)
    face.img.lerp_(torch.tensor([0.95, 0.93, 0.88]).view(1, 3, 1, 1), teeth.unsqueeze(1))


def _paint_glasses(cv: _Canvas, face: _Face) -> None:
    """Eyeglasses: ring frames and a bridge."""
    ip = cv.inv_px
    ring = _ellipse(face.au, face.v, 0.29, -0.08, 0.19, 0.14)
    frames = _soft(_band(ring, cv.p("frame_t")), ip)
    frames.add_(_soft(_band(face.v + 0.1, 0.02), ip).mul_(_soft(0.11 - face.au, ip))).clamp_(max=1.0)
    face.img.lerp_(cv.c("frame"), frames.mul_(cv.p("glasses")).unsqueeze(1))


def _paint_front_hair(cv: _Canvas, hair: torch.Tensor) -> None:
    """Front hair over the full frame: the cap above the hairline, bangs, side locks."""
    u, v, ip, fw = cv.u, cv.v, cv.inv_px, cv.p("fw")
    head = _ellipse(u, v, 0.0, -0.05, fw + 0.08, 1.1)
    line = torch.lerp(cv.p("hairline") + 0.55 * u.square(), -0.2 + 0.15 * u.square(), cv.p("bangs"))
    cap = _soft(head, ip).mul_(_soft(line - v, ip))
    locks = _soft(_ellipse(u, v, 0.0, 0.1, fw + 0.08, cv.p("hair_len") - 0.1), ip)
    locks.mul_(_soft(u.abs() - fw + 0.1, ip)).mul_(cv.p("long"))
    cv.img.lerp_(hair, torch.maximum(cap, locks).unsqueeze(1))


def _light_and_quantise(cv: _Canvas, size: int) -> torch.Tensor:
    """Lighting (level x directional gradient x colour cast), sensor noise, then uint8."""
    grid, img = cv.grid, cv.img
    light = cv.p("light") + cv.p("grad_x") * grid.view(1, 1, size) + cv.p("grad_y") * grid.view(1, size, 1)
    img.mul_(light.unsqueeze(1)).mul_(cv.c("cast"))
    img.add_(cv.nz.flip(-1).mul_(cv.p("sensor").unsqueeze(1) * 3.4))
    return img.mul_(255.0).add_(0.5).clamp_(0.0, 255.0).to(torch.uint8)


def _face_crop(size: int) -> tuple[int, int, int, int]:
    """Pixel box that contains every face feature for any sampled pose.

    Bounds follow from the clipped pose ranges (_POS_MAX, _K_MAX, _ROLL_MAX) and the
    canonical extent of the face and its features (|u| <= 0.85, -1.0 <= v <= 1.05).
    """
    def to_px(lo: float, hi: float) -> tuple[int, int]:
        a = max(0, int(math.floor((lo + 1.0) / 2.0 * size)) - 1)
        b = min(size, int(math.ceil((hi + 1.0) / 2.0 * size)) + 1)
        return a, b

    sr = math.sin(_ROLL_MAX)
    ext_x = _POS_MAX + _K_MAX * (0.85 + 1.05 * sr)
    c0, c1 = to_px(-ext_x, ext_x)
    r0, r1 = to_px(-_POS_MAX - _K_MAX * (1.0 + 0.85 * sr), _POS_MAX + _K_MAX * (1.05 + 0.85 * sr))
    return r0, r1, c0, c1


def render_faces(style: Mapping[str, np.ndarray], size: int, rng: np.random.Generator) -> torch.Tensor:
    """Render all faces described by ``style`` in chunks; uint8 [n, 3, size, size]."""
    n = len(style["k"])
    out = torch.empty((n, 3, size, size), dtype=torch.uint8)
    # Chunks are too small for intra-op threads to pay off, and on a shared machine
    # OpenMP threads waiting for a busy core slow element-wise ops by 10-50x.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for start in range(0, n, CHUNK):
            stop = min(n, start + CHUNK)
            chunk = {k: v[start:stop] for k, v in style.items()}
            noise = rng.random((stop - start, size, size), dtype=np.float32)
            out[start:stop] = _render_chunk(chunk, size, noise)
    finally:
        torch.set_num_threads(threads)
    return out

