"""Small inline SVG plots for the effectiveness report page (no script, no image file: the
console's Content-Security-Policy allows neither inline scripts nor other hosts)."""

from __future__ import annotations

from html import escape

from markupsafe import Markup

WIDTH = 560
COLOURS = {"verified true": "#2e7d32", "verified false": "#9e9e9e", "unsure": "#6a4fb3", "unreviewed": "#e0a100"}


def _svg(height: int, body: str, title: str) -> Markup:
    return Markup(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
                  f'height="{height}" role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
                  f'{body}</svg>')


def bars(counts: list[tuple[str, int]], title: str) -> Markup:
    """Horizontal bars, one per (label, count), scaled to the largest count."""
    top = max([n for _, n in counts] + [1])
    rows = []
    for i, (label, n) in enumerate(counts):
        y = 8 + i * 28
        w = round(300 * n / top)
        colour = COLOURS.get(label, "#0b3d5c")
        rows.append(f'<text x="0" y="{y + 15}" font-size="13">{escape(label)}</text>'
                    f'<rect x="200" y="{y}" width="{max(w, 1)}" height="20" fill="{colour}"/>'
                    f'<text x="{206 + w}" y="{y + 15}" font-size="13">{n}</text>')
    return _svg(16 + 28 * len(counts), "".join(rows), title)


def interval(value: float | None, low: float | None, high: float | None, *, target: float | None = None,
             upper: float | None = None, unit: str = "", scale_max: float | None = None, title: str = "") -> Markup:
    """A number line with the observed value, its 95% interval, and (when given) the target
    and the upper bound; empty when nothing was observed."""
    if value is None:
        return Markup("")
    points = [v for v in (value, low, high, target, upper) if v is not None]
    top = scale_max or (max(points) * 1.15 or 1.0)

    def x(v: float) -> float:
        return 20 + (WIDTH - 60) * min(max(v / top, 0.0), 1.0)

    parts = [f'<line x1="20" y1="60" x2="{WIDTH - 40}" y2="60" stroke="#888"/>',
             '<text x="20" y="80" font-size="12">0</text>',
             f'<text x="{WIDTH - 40}" y="80" font-size="12" text-anchor="end">{top:.3g}{escape(unit)}</text>']
    if low is not None and high is not None:
        parts.append(f'<line x1="{x(low):.1f}" y1="45" x2="{x(high):.1f}" y2="45" stroke="#0b3d5c" stroke-width="3"/>'
                     f'<text x="{x(high):.1f}" y="38" font-size="12" text-anchor="end">95% interval '
                     f'{low:.3g}–{high:.3g}</text>')
    parts.append(f'<circle cx="{x(value):.1f}" cy="45" r="6" fill="#0b3d5c"/>'
                 f'<text x="{x(value):.1f}" y="20" font-size="12" text-anchor="middle">observed {value:.3g}</text>')
    if target is not None:
        parts.append(f'<line x1="{x(target):.1f}" y1="30" x2="{x(target):.1f}" y2="66" stroke="#c62828" '
                     f'stroke-dasharray="4 3" stroke-width="2"/><text x="{x(target):.1f}" y="96" font-size="12" '
                     f'fill="#c62828" text-anchor="middle">target {target:.3g}</text>')
    if upper is not None:
        parts.append(f'<path d="M{x(upper):.1f} 52 l-5 10 h10 z" fill="#e0a100"/><text x="{x(upper):.1f}" y="112" '
                     f'font-size="12" fill="#7a4500" text-anchor="middle">upper bound {upper:.3g}</text>')
    return _svg(120, "".join(parts), title)
