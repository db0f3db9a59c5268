"""The charts every page draws with (scrapannot/charts.py): escaped labels, gaps, pinned points,
and one palette."""

import re

from scrapannot import charts


def test_a_line_chart_breaks_at_missing_values_and_escapes_labels():
    svg = charts.line_chart(
        label="<x>",
        x_labels=["a", "<b>", "c", "d"],
        series=[charts.Series("s&p", [0.5, None, 0.7, 0.8])],
        y_axis=charts.Axis(0.0, 1.0, [0.0, 1.0]),
    )

    assert svg.count("<polyline") == 1  # "a" stands alone; "c"-"d" is the one line
    assert svg.count("<circle") == 3
    assert "<b>" not in svg and "&lt;b&gt;" in svg and "s&amp;p" in svg


def test_scatter_points_outside_the_axis_are_pinned_to_its_edge():
    axis = charts.Axis(0.0, 1.0, [0.0, 1.0])
    svg = charts.scatter_chart(
        label="s", points=[charts.Point(5.0, -3.0, "far")], x_axis=axis, y_axis=axis,
        x_title="x", y_title="y",
    )  # fmt: skip

    cx, cy = (float(v) for v in re.search(r'cx="([\d.]+)" cy="([\d.]+)"', svg).groups())
    assert cx == charts.WIDTH - charts.RIGHT and cy == charts.HEIGHT - charts.BOTTOM


def test_bars_escape_their_labels_and_take_their_colours_from_the_palette():
    svg = charts.grouped_bars(
        categories=["<a>", "b"], series={"train": [1, 0], "v&l": [2, 3]}, label="<x>"
    )

    assert "<a>" not in svg and "&lt;a&gt;" in svg and "v&amp;l" in svg
    assert svg.count("<rect") == 4 + 2  # four bars, two legend swatches
    assert f'fill="{charts.PALETTE[0]}"' in svg and f'fill="{charts.PALETTE[1]}"' in svg


def test_colours_follow_the_palette_and_wrap_round():
    assert [charts.colour(i) for i in range(len(charts.PALETTE))] == list(charts.PALETTE)
    assert charts.colour(len(charts.PALETTE)) == charts.PALETTE[0]
