"""Draws the integration's brand images, custom_components/chekt/brand/icon.png and logo.png, with Pillow.

A plain design of our own (a shield with a check mark, and the name beside it for the logo), not CHeKT's logo.
Run `scripts/run python -m scripts.dev.brand` after changing it; tests/test_packaging.py checks the sizes.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

BRAND_DIR = Path(__file__).resolve().parents[2] / "custom_components" / "chekt" / "brand"
BLUE = (21, 101, 192, 255)
WHITE = (255, 255, 255, 255)
INK = (28, 37, 48, 255)
ICON_SIZE = 256
LOGO_HEIGHT = 256
SCALE = 4  # drawn larger, then scaled down: smooth edges


def _shield(draw: ImageDraw.ImageDraw, box: tuple[float, float, float, float], fill: tuple[int, ...]) -> None:
    """A shield: a flat top with raised corners, straight sides, curving into a point at the bottom."""
    left, top, right, bottom = box
    width, height = right - left, bottom - top
    middle = left + width / 2
    shoulder = top + height * 0.08
    points = [(left, shoulder), (middle, top + height * 0.02), (right, shoulder)]
    steps = 32
    right_side = []
    for i in range(steps + 1):
        t = i / steps
        y = shoulder + (bottom - shoulder) * t
        x = right - (right - middle) * t**2.2
        right_side.append((x, y))
    points += right_side
    points += [(2 * middle - x, y) for x, y in reversed(right_side)]
    draw.polygon(points, fill=fill)


def _check(draw: ImageDraw.ImageDraw, box: tuple[float, float, float, float], width: int) -> None:
    left, top, right, bottom = box
    w, h = right - left, bottom - top
    points = [(left + w * 0.22, top + h * 0.52), (left + w * 0.43, top + h * 0.72), (left + w * 0.78, top + h * 0.33)]
    draw.line(points, fill=BLUE, width=width, joint="curve")
    for x, y in (points[0], points[-1]):
        draw.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=BLUE)


def icon(size: int = ICON_SIZE) -> Image.Image:
    """A blue rounded square with a white shield and a blue check mark, on transparent."""
    big = size * SCALE
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    margin = big * 0.04
    draw.rounded_rectangle((margin, margin, big - margin, big - margin), radius=big * 0.22, fill=BLUE)
    shield = (big * 0.25, big * 0.18, big * 0.75, big * 0.84)
    _shield(draw, shield, WHITE)
    _check(draw, (big * 0.27, big * 0.22, big * 0.73, big * 0.78), width=int(big * 0.075))
    return image.resize((size, size), Image.Resampling.LANCZOS)


def logo(height: int = LOGO_HEIGHT) -> Image.Image:
    """The icon with "CHeKT" beside it, on transparent; as wide as the name needs."""
    big = height * SCALE
    font = ImageFont.load_default(size=int(big * 0.5))
    stroke = int(big * 0.012)
    text_left = big * 1.12
    text_width = ImageDraw.Draw(Image.new("RGBA", (1, 1))).textlength("CHeKT", font=font) + 2 * stroke
    width = int(text_left + text_width + big * 0.08) // SCALE
    image = Image.new("RGBA", (width * SCALE, big), (0, 0, 0, 0))
    image.alpha_composite(icon(big), (0, 0))
    ImageDraw.Draw(image).text(
        (text_left, big / 2), "CHeKT", font=font, fill=INK, anchor="lm", stroke_width=stroke, stroke_fill=INK
    )
    return image.resize((width, height), Image.Resampling.LANCZOS)


def main() -> int:
    """Write both images."""
    BRAND_DIR.mkdir(parents=True, exist_ok=True)
    icon().save(BRAND_DIR / "icon.png", optimize=True)
    logo().save(BRAND_DIR / "logo.png", optimize=True)
    print(f"wrote {BRAND_DIR / 'icon.png'} and {BRAND_DIR / 'logo.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
