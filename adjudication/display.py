"""Figures rounded for display only, after the comparisons were made on the full values."""

from adjudication.aggregation import EPSILON


def std_against_threshold(std: float, threshold: float) -> tuple[str, str]:
    """A spread and its threshold at two decimals, unless rounding would hide which side of the
    threshold the spread is on (an STD of 0.404 against 0.40 reads "0.40 / 0.40"): then with as
    many more decimals as tell them apart, up to five."""
    shown = (f"{std:.2f}", f"{threshold:.2f}")
    if abs(std - threshold) <= EPSILON:  # equal for aggregation too: equal on screen
        return shown
    for places in (2, 3, 4, 5):
        shown = (f"{std:.{places}f}", f"{threshold:.{places}f}")
        if shown[0] != shown[1]:
            break
    return shown
