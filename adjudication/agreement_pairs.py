"""Agreement of continuous ratings per rater pair and per rater against gold truth, for the
agreement page: ICC(2,1), ICC(3,1) and Lin's CCC (adjudication.agreement_icc) over the railcars
both sides read. Pure: takes (railcar, rater, value) triples."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from adjudication.agreement_icc import MIN_TARGETS, Coefficient, concordance, icc


@dataclass(frozen=True)
class Agreement:
    first: str
    second: str  # another rater, or "gold"
    n: int
    icc21: Coefficient | None
    icc31: Coefficient | None
    ccc: Coefficient | None


def _agreement(first: str, second: str, a: list[float], b: list[float]) -> Agreement:
    result = icc(np.column_stack([a, b]))
    return Agreement(
        first,
        second,
        len(a),
        result.icc21 if result else None,
        result.icc31 if result else None,
        concordance(np.array(a), np.array(b)),
    )


def pair_agreements(ratings: Iterable[tuple[int, str, float]]) -> list[Agreement]:
    """Every pair of raters who read at least MIN_TARGETS railcars in common, by name."""
    by_railcar: dict[int, dict[str, float]] = defaultdict(dict)
    for railcar, rater, value in ratings:
        by_railcar[railcar][rater] = value
    pairs: dict[tuple[str, str], tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for readings in by_railcar.values():
        for a, b in combinations(sorted(readings), 2):
            pairs[(a, b)][0].append(readings[a])
            pairs[(a, b)][1].append(readings[b])
    return [
        _agreement(a, b, va, vb)
        for (a, b), (va, vb) in sorted(pairs.items())
        if len(va) >= MIN_TARGETS
    ]


def gold_agreements(rows: Iterable[tuple[str, float, float]]) -> list[Agreement]:
    """Each rater's readings against gold truth, from (rater, reading, truth), by name."""
    per_rater: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for rater, value, truth in rows:
        per_rater[rater][0].append(value)
        per_rater[rater][1].append(truth)
    return [
        _agreement(rater, "gold", values, truths)
        for rater, (values, truths) in sorted(per_rater.items())
        if len(values) >= MIN_TARGETS
    ]
