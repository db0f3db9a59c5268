"""Server-rendered inline SVG bar charts: no script, no chart library, nothing fetched.
(adjudication/charts.py draws lines, scatter plots and heat maps; bars are drawn here.)"""

from collections.abc import Mapping, Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

# One colour per series (the splits), in the order given.
COLOURS = ("#2a64a3", "#d08a1e", "#1e7b34", "#8e3b8e")


def grouped_bars(
    *,
    categories: Sequence[str],
    series: Mapping[str, Sequence[int]],
    label: str,
    width: int = 640,
    height: int = 220,
) -> SafeString:
    """Bars per category, one per series side by side, with counts above them and a legend.
    Every text is escaped here, so callers may pass any labels."""
    left, bottom, top = 30, 34, 22
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = max([v for values in series.values() for v in values] + [1])
    group_w = plot_w / max(len(categories), 1)
    bar_w = group_w * 0.8 / max(len(series), 1)
    base = top + plot_h
    parts = [f'<line class="axis" x1="{left}" y1="{base}" x2="{width - 8}" y2="{base}"/>']
    for ci, category in enumerate(categories):
        x0 = left + ci * group_w + group_w * 0.1
        parts.append(
            f'<text x="{left + (ci + 0.5) * group_w:.1f}" y="{height - bottom + 16}" '
            f'text-anchor="middle">{escape(category)}</text>'
        )
        for si, (name, values) in enumerate(series.items()):
            value = int(values[ci])
            bar_h = plot_h * value / peak
            x, y = x0 + si * bar_w, base - bar_h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(bar_w - 1, 1):.1f}" '
                f'height="{bar_h:.1f}" fill="{COLOURS[si % len(COLOURS)]}">'
                f"<title>{escape(name)}: {value} in {escape(category)}</title></rect>"
            )
            if value:
                parts.append(
                    f'<text x="{x + bar_w / 2:.1f}" y="{y - 3:.1f}" '
                    f'text-anchor="middle">{value}</text>'
                )
    for si, name in enumerate(series):
        x = left + si * 90
        parts.append(
            f'<rect x="{x}" y="4" width="10" height="10" fill="{COLOURS[si % len(COLOURS)]}"/>'
            f'<text x="{x + 14}" y="13">{escape(name)}</text>'
        )
    return mark_safe(  # noqa: S308 - every text inside went through escape()
        f'<svg class="chart bars" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        + "".join(parts)
        + "</svg>"
    )
