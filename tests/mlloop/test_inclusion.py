"""The annotators' masks as supervision (mlloop/inclusion.py, mlloop/feature_maps.py): the
dense head learns the coverage the masks mark, a run with masked keyframes stores it in its
artifact, and scoring builds the same bags."""

from itertools import count

import numpy as np
import pytest
import torch
from django.utils import timezone

from labeling import rle
from labeling.annotation_models import Assignment, Mask
from labeling.models import Frame, Layer
from mlloop import registry, scoring
from mlloop.config import model_config
from mlloop.feature_maps import mask_coverage, model_bags
from mlloop.features import extractor
from mlloop.inclusion import SUMMARY_DIM, cell_targets, fit_inclusion_head
from mlloop.models import DatasetItem, FrameFeatureMap, ModelVersion, RailcarScore, Split
from tests.labeling.factories import annotators
from tests.mlloop.model_factories import TINY, frozen_dataset, scrap_railcar, splits, train_run

torch.set_num_threads(2)
_pseudonyms = count()


def dirt(frame: Frame, pct: float) -> np.ndarray:
    """The brown pixels signal_jpeg drew on `frame` (same draw, same seed): what a careful
    annotator marks."""
    rng = np.random.default_rng(frame.pk)
    rng.integers(90, 150, (frame.height or 48, frame.width or 64, 1))
    return rng.random((frame.height or 48, frame.width or 64)) < pct / 10


def submitted(railcar_id: int, annotator) -> Assignment:
    now = timezone.now()
    return Assignment.objects.create(
        pseudonym=f"inc-{next(_pseudonyms)}", railcar_id=railcar_id, annotator=annotator,
        slot=Assignment.objects.filter(railcar_id=railcar_id).count() + 1,
        status=Assignment.Status.SUBMITTED, leased_at=now, lease_expires_at=now, finished_at=now,
    )  # fmt: skip


def draw(assignment: Assignment, frame: Frame, pixels: np.ndarray) -> None:
    encoded = rle.encode(pixels)
    Mask.objects.create(
        assignment=assignment, frame=frame, rle=encoded, prompts={}, engine="test",
        area=rle.area(encoded),
    )  # fmt: skip


def keyframes(railcar_id: int) -> list[Frame]:
    return [layer.keyframe for layer in Layer.objects.filter(railcar_id=railcar_id)]


def mask_train_split(dataset, raters) -> int:
    drawn = 0
    for item in DatasetItem.objects.filter(version=dataset, split=Split.TRAIN):
        for annotator in raters:
            assignment = submitted(item.railcar_id, annotator)
            for frame in keyframes(item.railcar_id):
                draw(assignment, frame, dirt(frame, float(item.contamination_pct)))
                drawn += annotator == raters[0]
    return drawn


def test_the_inclusion_head_learns_the_coverage_one_channel_carries():
    rng = np.random.default_rng(0)
    maps, targets = [], []
    for _ in range(40):
        cover = rng.random((6, 9)).astype(np.float32) * rng.random()
        fmap = rng.normal(size=(6, 9, 12)).astype(np.float32)
        fmap[..., 3] = 4 * cover + rng.normal(scale=0.1, size=(6, 9))
        maps.append(fmap)
        targets.append(cover)

    head = fit_inclusion_head(maps, targets, seed=1)

    predicted = np.concatenate([head.coverage(m).ravel() for m in maps[:10]])
    truth = np.concatenate([t.ravel() for t in targets[:10]])
    assert np.corrcoef(predicted, truth)[0, 1] > 0.9


def test_cell_targets_average_the_marked_pixels_of_each_cell():
    cover = np.zeros((4, 6), np.float32)
    cover[:2, :3] = 1.0

    assert cell_targets(cover, (2, 2)).tolist() == [[1.0, 0.0], [0.0, 0.0]]


@pytest.mark.django_db
def test_coverage_averages_the_raters_who_drew_and_counts_an_unmarked_keyframe_as_clean():
    railcar = scrap_railcar(4.0, layers=2)
    first, second = keyframes(railcar.pk)
    one, two, lazy = annotators(3, prefix="inc")
    mark = np.zeros((first.height, first.width), bool)
    mark[:4, :4] = True
    draw(submitted(railcar.pk, one), first, mark)
    draw(submitted(railcar.pk, two), first, mark)
    submitted(railcar.pk, lazy)  # rated, drew nothing: not a mask-drawing rater

    coverage = dict(mask_coverage([railcar.pk]))

    assert coverage[first.pk][0, 0] == 1.0 and coverage[first.pk][10, 10] == 0.0
    assert coverage[second.pk].shape == (second.height, second.width)
    assert not coverage[second.pk].any()


@pytest.mark.django_db
def test_a_run_with_masked_keyframes_learns_an_inclusion_head_and_scoring_reads_it():
    dataset = frozen_dataset(splits(8, 3, 3))
    masked = mask_train_split(dataset, annotators(2, prefix="masker"))

    run = train_run(dataset)

    assert run.status == ModelVersion.Status.SUCCEEDED, run.log
    assert f"fitting the inclusion head on the masks of {masked} train keyframes" in run.log
    loaded = registry.load(run)
    assert loaded.inclusion is not None
    pooled_dim = extractor(loaded.config).dim
    assert loaded.model.feature_dim == pooled_dim + SUMMARY_DIM
    assert loaded.model.direct_dims == SUMMARY_DIM  # the summary's straight line, saved
    unlabeled = scrap_railcar(6.0)
    # Each new keyframe goes through the backbone once: its map and its pooled feature together.
    model = extractor(loaded.config)
    seen_before = model.images_seen
    bags = model_bags([unlabeled.pk], loaded.config, inclusion=loaded.inclusion)
    assert model.images_seen - seen_before == 3
    assert bags[unlabeled.pk].shape == (3, pooled_dim + SUMMARY_DIM)
    assert FrameFeatureMap.objects.filter(frame__railcar=unlabeled).count() == 3

    report = scoring.score_railcars(model_version=run, railcar_ids=[unlabeled.pk])

    assert report.scored == 1
    assert RailcarScore.objects.filter(railcar=unlabeled, model_version=run).exists()


@pytest.mark.django_db
def test_without_enough_masks_a_run_trains_on_pooled_features_and_says_so():
    dataset = frozen_dataset(splits(8, 3, 3))

    run = train_run(dataset)

    assert run.status == ModelVersion.Status.SUCCEEDED, run.log
    assert "0 train keyframes carry masks" in run.log
    assert registry.load(run).inclusion is None and registry.load(run).model.direct_dims == 0


@pytest.mark.django_db
def test_mask_supervision_can_be_switched_off_per_run():
    dataset = frozen_dataset(splits(8, 3, 3))
    mask_train_split(dataset, annotators(1, prefix="off"))

    run = train_run(dataset, mask_supervision=False)

    assert run.status == ModelVersion.Status.SUCCEEDED, run.log
    assert "inclusion head" not in run.log and registry.load(run).inclusion is None
    assert TINY["backbone"] == run.settings["backbone"]


@pytest.mark.django_db
def test_the_head_learns_from_a_bounded_sample_of_the_masked_keyframes(monkeypatch):
    from mlloop import feature_maps

    dataset = frozen_dataset(splits(4, 0, 0))
    masked = mask_train_split(dataset, annotators(1, prefix="cap"))
    monkeypatch.setattr(feature_maps, "MAX_HEAD_KEYFRAMES", 5)
    ids = DatasetItem.objects.filter(version=dataset).values_list("railcar_id", flat=True)

    maps, targets = feature_maps.head_training_data(ids, model_config(**TINY))

    assert masked == 12 and len(maps) == len(targets) == 5
    assert all(t.shape == m.shape[:2] for m, t in zip(maps, targets, strict=True))
