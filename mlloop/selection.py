"""Which unlabeled railcars to label next: the ones the model expects to get most wrong, without
spending a round on near-identical railcars.

`uncertainty` ranks by expected error: the expected absolute error of the contamination (fitted
on validation railcars from the estimate's level and the ensemble's spread, model.MilModel), in
units of the adjudication threshold on raters' STD, plus the chance that the grade is wrong (1
minus the ensemble's top grade probability), so a grade head that is sure adds nothing, unlike an
entropy term that stays large between two grades the model never confuses.

`diverse_order` picks greedily, each next railcar the one with the highest uncertainty times
min(1, d / d0), where d is its distance (in the model's pooled embedding) to the nearest railcar
already picked and d0 the typical nearest-neighbour distance: an uncertainty-weighted form of the
greedy k-center core-set selection (Sener and Savarese, "Active Learning for Convolutional Neural
Networks: A Core-Set Approach", ICLR 2018), in the spirit of BADGE (Ash et al., ICLR 2020), which
also trades magnitude for diversity. The value at which a railcar was picked never increases
along the order (picking only shrinks distances), so it serves as the pool priority directly.
"""

import numpy as np

# Railcars ordered greedily; past this many the rest keep their (already discounted) values,
# which never exceed the last greedy pick's. Costs head * N * dim distance evaluations.
DIVERSE_HEAD = 1000
_REFERENCE_SAMPLE = 256


def uncertainty(
    *, expected_error_pct: float, top_grade_probability: float, std_threshold: float
) -> float:
    """Expected contamination error in adjudication thresholds plus the grade's error chance."""
    threshold = std_threshold if std_threshold > 0 else 1.0
    return float(expected_error_pct / threshold + (1.0 - top_grade_probability))


def typical_distance(embeddings: np.ndarray, rng: np.random.Generator) -> float:
    """Median distance from a sample of railcars to their nearest other railcar."""
    n = len(embeddings)
    if n < 2:
        return 1.0
    sample = embeddings[rng.choice(n, size=min(n, _REFERENCE_SAMPLE), replace=False)]
    d = np.sqrt(((sample[:, None, :] - embeddings[None, :, :]) ** 2).sum(axis=2))
    d[d == 0] = np.inf  # itself (and exact duplicates, which count as "no distance" below)
    nearest = d.min(axis=1)
    finite = nearest[np.isfinite(nearest)]
    return float(np.median(finite)) if len(finite) and np.median(finite) > 0 else 1.0


def diverse_order(
    scores: np.ndarray, embeddings: np.ndarray, *, seed: int = 0, head: int = DIVERSE_HEAD
) -> tuple[np.ndarray, np.ndarray]:
    """(order, value): indices into `scores` in labeling order, and for each railcar (by
    index) the discounted score at which it was picked, non-increasing along `order`."""
    scores = np.asarray(scores, dtype=float)
    n = len(scores)
    if n == 0:
        return np.zeros(0, dtype=int), np.zeros(0)
    x = np.asarray(embeddings, dtype=float)
    d0 = typical_distance(x, np.random.default_rng(seed))
    nearest = np.full(n, np.inf)
    value = scores.copy()
    remaining = np.ones(n, dtype=bool)
    order = []
    for _ in range(min(head, n)):
        discounted = np.where(remaining, scores * np.minimum(1.0, nearest / d0), -np.inf)
        pick = int(np.argmax(discounted))
        value[pick] = discounted[pick]
        order.append(pick)
        remaining[pick] = False
        nearest = np.minimum(nearest, np.sqrt(((x - x[pick]) ** 2).sum(axis=1)))
    rest = np.flatnonzero(remaining)
    if len(rest):
        value[rest] = scores[rest] * np.minimum(1.0, nearest[rest] / d0)
        order.extend(rest[np.argsort(-value[rest], kind="stable")].tolist())
    return np.asarray(order, dtype=int), value
