"""Training's database-free core (mlloop/training.py): fitting, the epoch kept, refused input,
metrics. A registered run end to end is tested in test_runs.py, the registry in
test_registry.py."""

import numpy as np
import pytest
import torch

from mlloop.config import model_config
from mlloop.training import TrainingError, evaluate, fit, metrics
from tests.mlloop.model_factories import GRADES, feature_bags

torch.set_num_threads(2)


# --- the database-free core ---------------------------------------------------------------------


def test_fit_learns_more_than_predicting_the_mean():
    train, val = feature_bags(80, seed=1), feature_bags(20, seed=2)
    config = model_config(epochs=40, bag_size=3, batch_size=8, lr=3e-3)

    trained = fit(train, val, config)
    result = evaluate(trained, train)

    truth = np.array([b.contamination for b in train])
    mean_mae = np.abs(truth - truth.mean()).mean()
    assert result["mae"] < 0.5 * mean_mae, (result["mae"], mean_mae)
    assert result["accuracy"] > 0.6  # four grades: chance is about 0.25
    assert evaluate(trained, val)["mae"] < 0.6 * mean_mae


def test_the_epoch_kept_is_the_one_with_the_lowest_validation_mae():
    train, val = feature_bags(40, seed=3), feature_bags(10, seed=4)
    progress: list[float] = []

    trained = fit(train, val, model_config(epochs=8), progress=lambda f, _line: progress.append(f))

    maes = [h["val_mae"] for h in trained.history]
    assert trained.best_epoch == int(np.argmin(maes)) + 1
    assert evaluate(trained, val)["mae"] == pytest.approx(min(maes), abs=1e-5)
    assert progress == pytest.approx([e / 8 for e in range(1, 9)])


@pytest.mark.parametrize("which", ["train", "val"])
def test_fit_refuses_an_empty_split(which):
    bags = feature_bags(5)
    train, val = ([], bags) if which == "train" else (bags, [])
    with pytest.raises(TrainingError, match=f"the {which} split has no railcars"):
        fit(train, val, model_config(epochs=1))


def test_fit_refuses_invalid_labels_and_mixed_dimensions():
    bags = feature_bags(5)
    bags[0].grade = 9
    with pytest.raises(TrainingError, match="invalid label"):
        fit(bags, feature_bags(3), model_config(epochs=1))
    other = feature_bags(3, dim=7)
    with pytest.raises(TrainingError, match="differ in dimension"):
        fit(feature_bags(5), other, model_config(epochs=1))


def test_metrics_on_known_inputs():
    result = metrics(
        np.array([1.0, 2.0, 3.0, 4.0]),
        np.array([1.0, 2.0, 3.0, 5.0]),
        np.array([0, 0, 1, 2]),
        np.array([0, 1, 1, 2]),
        GRADES,
    )
    assert result["mae"] == pytest.approx(0.25)
    assert result["r2"] == pytest.approx(1 - 1 / 5)
    assert result["accuracy"] == pytest.approx(0.75)
    # Per class: 3A p 1, r 1/2; 3A1 p 1/2, r 1; 3AH p 1, r 1; cast iron absent (not averaged).
    assert result["precision_macro"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert result["recall_macro"] == pytest.approx((0.5 + 1 + 1) / 3)
    assert result["f1_macro"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert set(result["per_class"]) == {"3A", "3A1", "3AH"}
    assert result["confusion"]["matrix"] == [[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0] * 4]


def test_r2_is_undefined_when_the_truth_does_not_vary():
    result = metrics(np.ones(3), np.array([1.0, 2.0, 0.0]), np.zeros(3), np.zeros(3), GRADES)
    assert result["r2"] is None and result["mae"] == pytest.approx(2 / 3)


def summary_bags(n: int, *, seed: int, noise_dims: int = 40) -> list:
    """Bags whose last three dimensions are an inclusion summary that tracks the contamination
    (as mlloop.inclusion appends it), the rest noise."""
    from mlloop.training import Bag

    rng = np.random.default_rng(seed)
    bags = []
    for pct in rng.uniform(0.0, 10.0, n):
        layers = int(rng.integers(2, 5))
        summary = 0.3 * pct + rng.normal(scale=0.1, size=(layers, 3))
        noise = rng.normal(size=(layers, noise_dims))
        features = np.concatenate([noise, summary], axis=1).astype(np.float32)
        bags.append(Bag(features, float(pct), GRADES.index("3A")))
    return bags


def test_each_member_starts_at_its_least_squares_line_on_the_inclusion_summary():
    from mlloop.inclusion import InclusionHead

    train, val, test = summary_bags(40, seed=5), summary_bags(20, seed=6), summary_bags(40, seed=7)
    config = model_config(epochs=1, ensemble=4, lr=1e-3)
    head = InclusionHead(channels=4)
    truth = np.array([b.contamination for b in test])
    mean_mae = np.abs(truth - truth.mean()).mean()

    started = fit(train, val, config, inclusion=head)
    random_start = fit(train, val, config, inclusion=head, least_squares_start=False)

    # The line is the model here; one epoch from a random start is far from it.
    assert evaluate(started, test)["mae"] < 0.1 * mean_mae
    assert evaluate(random_start, test)["mae"] > 0.3 * mean_mae
    # Each member fitted its own bootstrap resample: the lines differ, so the spread is not 0.
    slopes = [line.weight.detach().numpy().copy() for line in started.model.direct]
    assert not all(np.allclose(slopes[0], s) for s in slopes[1:])
    # Epoch 0, the lines alone, is no candidate: its grade heads would be untrained.
    assert started.best_epoch == 1


@pytest.mark.parametrize("n", [1, 2])
def test_the_lines_fit_a_handful_of_railcars_whose_resamples_may_be_empty(n):
    from mlloop.inclusion import InclusionHead

    # With one or two railcars most members' Poisson resamples hold none: their least-squares
    # system is singular, and the fit must still give a finite model.
    config = model_config(epochs=1, ensemble=8)
    trained = fit(
        summary_bags(n, seed=11), summary_bags(2, seed=12), config, inclusion=InclusionHead(4)
    )

    result = evaluate(trained, summary_bags(5, seed=13))
    assert np.isfinite(result["mae"])
