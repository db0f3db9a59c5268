"""Choosing what to label next: expected error first, near-duplicates discounted."""

import numpy as np

from mlloop.selection import diverse_order


def test_without_near_duplicates_the_order_is_the_uncertainty_order():
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(50, 8)) * 10  # far apart
    scores = rng.random(50)

    order, value = diverse_order(scores, embeddings)

    assert order[0] == int(np.argmax(scores))
    assert sorted(order.tolist()) == list(range(50))
    assert np.all(np.diff(value[order]) <= 1e-12)  # the pool priority never rises along it


def test_twenty_near_identical_railcars_do_not_fill_the_front_of_the_queue():
    rng = np.random.default_rng(1)
    cluster = rng.normal(size=(1, 8)) + rng.normal(scale=1e-3, size=(20, 8))
    others = rng.normal(size=(30, 8)) * 3
    embeddings = np.concatenate([cluster, others])
    scores = np.concatenate([np.full(20, 1.0), np.linspace(0.5, 0.9, 30)])

    order, _ = diverse_order(scores, embeddings)

    first_ten = set(order[:10].tolist())
    assert len(first_ten & set(range(20))) == 1  # one of the cluster, then the others
    assert order[0] < 20


def test_an_empty_or_single_pool_is_fine():
    order, value = diverse_order(np.zeros(0), np.zeros((0, 4)))
    assert len(order) == 0 and len(value) == 0
    order, value = diverse_order(np.array([0.7]), np.ones((1, 4)))
    assert order.tolist() == [0] and value.tolist() == [0.7]
