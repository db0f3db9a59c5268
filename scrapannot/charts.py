"""Charts rendered on the server as inline SVG: a line chart, a scatter plot, grouped bars,
heat-map cells; and the one palette every chart of the product draws with (the quality page's
script-drawn chart takes its colours from here too).

No JavaScript and nothing fetched at run time. Every text that goes into the markup is escaped
here, so callers may pass user-controlled labels (usernames, line names).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 44, 14, 12, 34
MAX_X_LABELS = 8
# One colour per series, in order; eight, so that every frame-quality check has its own.
PALETTE = (
    "#2a64a3",
    "#c0592b",
    "#1e7b34",
    "#7b3fa0",
    "#8a6d00",
    "#0f766e",
    "#be123c",
    "#6b7280",
)


def colour(index: int) -> str:
    """The palette's colour for the `index`-th series (it wraps round past the last)."""
    return PALETTE[index % len(PALETTE)]


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]  # None: no value in that slot (drawn as a gap)
    color: str = PALETTE[0]


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str


@dataclass(frozen=True)
class Axis:
    low: float
    high: float
    ticks: Sequence[float]

    def position(self, value: float, start: float, end: float) -> float:
        """Pixel coordinate of `value` between `start` (at low) and `end` (at high); values
        outside the axis are pinned to its edge rather than drawn off the chart."""
        clipped = min(max(value, self.low), self.high)
        span = self.high - self.low or 1.0
        return start + (clipped - self.low) / span * (end - start)


def _svg(label: str, body: list[str]) -> SafeString:
    return mark_safe(  # noqa: S308 - every text inside went through escape()
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        + "".join(body)
        + "</svg>"
    )


def _y_grid(axis: Axis) -> list[str]:
    parts = []
    for tick in axis.ticks:
        y = axis.position(tick, HEIGHT - BOTTOM, TOP)
        parts.append(
            f'<line class="grid-line" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:g}</text>'
        )
    return parts


def line_chart(
    *, label: str, x_labels: Sequence[str], series: Sequence[Series], y_axis: Axis
) -> SafeString:
    """One polyline per series over evenly spaced slots; a None breaks the line. Each point has
    a tooltip with the series name, the slot's label and the value."""
    count = len(x_labels)
    plot_width = WIDTH - LEFT - RIGHT

    def x_of(i: int) -> float:
        return LEFT + (plot_width / 2 if count == 1 else i * plot_width / (count - 1))

    body = _y_grid(y_axis)
    body.append(
        f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" '
        f'y1="{HEIGHT - BOTTOM}" y2="{HEIGHT - BOTTOM}"/>'
    )
    step = max(1, -(-count // MAX_X_LABELS))
    for i in range(0, count, step):
        body.append(
            f'<text x="{x_of(i):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">'
            f"{escape(x_labels[i])}</text>"
        )
    for s in series:
        runs: list[list[str]] = [[]]
        for i, value in enumerate(s.values):
            if value is None:
                runs.append([])
                continue
            x, y = x_of(i), y_axis.position(value, HEIGHT - BOTTOM, TOP)
            runs[-1].append(f"{x:.1f},{y:.1f}")
            body.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{s.color}">'
                f"<title>{escape(s.name)}, {escape(x_labels[i])}: {value:.3f}</title></circle>"
            )
        for run in runs:
            if len(run) > 1:
                body.append(
                    f'<polyline fill="none" stroke="{s.color}" stroke-width="2" '
                    f'points="{" ".join(run)}"/>'
                )
    return _svg(label, body)


def scatter_chart(
    *,
    label: str,
    points: Sequence[Point],
    x_axis: Axis,
    y_axis: Axis,
    x_title: str,
    y_title: str,
    x_reference: float | None = None,
    y_reference: float | None = None,
) -> SafeString:
    """Labelled points, with optional dashed reference lines (e.g. no bias, unit scale)."""
    left, right, top, bottom = LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM
    body = _y_grid(y_axis)
    for tick in x_axis.ticks:
        x = x_axis.position(tick, left, right)
        body.append(f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{tick:g}</text>')
    body.append(f'<line class="axis" x1="{left}" x2="{right}" y1="{bottom}" y2="{bottom}"/>')
    if x_reference is not None:
        x = x_axis.position(x_reference, left, right)
        body.append(f'<line class="reference" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom}"/>')
    if y_reference is not None:
        y = y_axis.position(y_reference, bottom, top)
        body.append(f'<line class="reference" x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}"/>')
    body.append(
        f'<text x="{right}" y="{HEIGHT - 4}" text-anchor="end">{escape(x_title)}</text>'
        f'<text x="{left + 4}" y="{top + 10}">{escape(y_title)}</text>'
    )
    for p in points:
        x, y = x_axis.position(p.x, left, right), y_axis.position(p.y, bottom, top)
        body.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{PALETTE[0]}">'
            f"<title>{escape(p.label)}: {p.x:+.2f}, {p.y:.2f}</title></circle>"
            f'<text class="point-label" x="{x + 6:.1f}" y="{y - 6:.1f}">{escape(p.label)}</text>'
        )
    return _svg(label, body)


def grouped_bars(
    *,
    categories: Sequence[str],
    series: Mapping[str, Sequence[int]],
    label: str,
    width: int = 640,
    height: int = 220,
) -> SafeString:
    """Bars per category, one per series side by side, with counts above them and a legend."""
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
                f'height="{bar_h:.1f}" fill="{colour(si)}">'
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
            f'<rect x="{x}" y="4" width="10" height="10" fill="{colour(si)}"/>'
            f'<text x="{x + 14}" y="13">{escape(name)}</text>'
        )
    return mark_safe(  # noqa: S308 - every text inside went through escape()
        f'<svg class="chart bars" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        + "".join(parts)
        + "</svg>"
    )


def axis_around(values: Sequence[float], *, low: float, high: float, step: float) -> Axis:
    """An axis from `low` to `high`, widened in `step`s to take in every value."""
    lo = min([low, *values])
    hi = max([high, *values])
    lo, hi = step * (lo // step), step * -(-hi // step)
    count = round((hi - lo) / step)
    # At most about 8 ticks: a wide range gets every k-th step.
    every = max(1, -(-count // 8))
    ticks = [round(lo + i * step, 6) for i in range(0, count + 1, every)]
    return Axis(low=lo, high=hi, ticks=ticks)


@dataclass(frozen=True)
class HeatCell:
    count: int
    share: float | None  # of its row
    style: str  # an inline background, darker for a larger share of the matrix's peak


# The heat maps shade the palette's first colour.
_HEAT_RGB = ", ".join(str(int(PALETTE[0][i : i + 2], 16)) for i in (1, 3, 5))


def _heat_style(intensity: float) -> str:
    if not intensity:
        return ""
    ink = "; color: #fff" if intensity > 0.55 else ""
    return f"background: rgba({_HEAT_RGB}, {0.85 * intensity:.2f}){ink}"


def heat_rows(
    labels: Sequence[str], matrix: Sequence[Sequence[int]]
) -> list[tuple[str, list[HeatCell]]]:
    """Each row's label with its cells, shaded against the largest count in the matrix."""
    peak = max((v for row in matrix for v in row), default=0)
    rows = []
    for label, row in zip(labels, matrix, strict=True):
        total = sum(row)
        cells = [
            HeatCell(
                count=v,
                share=v / total if total else None,
                style=_heat_style(v / peak if peak else 0.0),
            )
            for v in row
        ]
        rows.append((label, cells))
    return rows
