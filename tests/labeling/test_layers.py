import pytest

from labeling.layers import (
    box_iou,
    keyframe_position,
    layers_with_frames,
    pick_keyframes,
    runs_above,
)
from labeling.models import Frame, Layer
from tests.labeling.factories import pool_railcar
from tests.labeling.unloadings import boxed_unloading, run_checks

INELIGIBLE = Frame.Quality.INELIGIBLE


def test_iou_of_identical_boxes_is_one_and_of_disjoint_boxes_zero():
    assert box_iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert box_iou([0, 0, 10, 10], [20, 20, 30, 30]) == 0.0
    assert box_iou([0, 0, 10, 10], None) == 0.0


def test_iou_of_a_box_inside_another_is_the_area_ratio():
    assert box_iou([0, 0, 100, 100], [10, 10, 30, 60]) == pytest.approx(20 * 50 / 10_000)


def test_runs_split_where_the_value_falls_below_the_threshold():
    values = [0, 0.2, 0.3, 0, 0, 0.5, 0.1, 0.6, 0]
    assert runs_above(values, threshold=0.15, max_gap=0) == [range(1, 3), range(5, 6), range(7, 8)]


def test_a_short_dip_does_not_split_a_run():
    values = [0, 0.2, 0.3, 0, 0, 0.5, 0.1, 0.6, 0]
    assert runs_above(values, threshold=0.15, max_gap=1) == [range(1, 3), range(5, 8)]
    assert runs_above(values, threshold=0.15, max_gap=2) == [range(1, 8)]


def test_a_value_at_the_threshold_counts_as_above():
    assert runs_above([0.05, 0.049], threshold=0.05, max_gap=0) == [range(0, 1)]


def test_no_runs_when_nothing_reaches_the_threshold():
    assert runs_above([0.0, 0.01], threshold=0.05, max_gap=3) == []


def test_the_keyframe_is_the_peak_when_it_is_eligible():
    ious = [0.1, 0.3, 0.5, 0.2]
    assert keyframe_position([0, 1, 2, 3], ious=ious, eligible=[True] * 4) == 2


def test_an_ineligible_peak_hands_over_to_the_nearest_eligible_frame():
    ious = [0.1, 0.3, 0.5, 0.45, 0.2]
    eligible = [True, True, False, False, True]
    assert keyframe_position([0, 1, 2, 3, 4], ious=ious, eligible=eligible) == 1


def test_a_layer_without_eligible_frames_has_no_keyframe():
    assert keyframe_position([0, 1], ious=[0.2, 0.3], eligible=[False, False]) is None


def test_without_ious_the_middle_frame_stands_in_for_the_peak():
    ious = [None] * 5
    assert keyframe_position([0, 1, 2, 3, 4], ious=ious, eligible=[True] * 5) == 2


@pytest.mark.django_db
def test_the_keyframe_is_picked_once_the_checks_have_settled_which_frames_are_eligible(
    plant_client,
):
    assert boxed_unloading([0, 0.5, 0.8, 1.0, 0.7, 0]).post(plant_client).status_code == 201
    assert Layer.objects.get().keyframe is None  # at ingest, no frame is eligible yet

    run_checks()

    assert Layer.objects.get().keyframe.index == 3  # the IoU peak


@pytest.mark.django_db
def test_a_layer_gets_a_keyframe_only_when_it_has_an_eligible_frame():
    railcar = pool_railcar(layers=2, frames_per_layer=3)
    Frame.objects.filter(railcar=railcar, layer__index=2).update(quality=INELIGIBLE)

    assert pick_keyframes(railcar=railcar) == 1
    # Without IoU values the middle of the layer stands in for the peak.
    assert dict(railcar.layers.values_list("index", "keyframe__index")) == {1: 1, 2: None}


@pytest.mark.django_db
def test_the_viewers_get_each_layers_eligible_frames_with_the_keyframe_first():
    railcar = pool_railcar(layers=3, frames_per_layer=3)
    frame = {f.index: f for f in railcar.frames.all()}
    Layer.objects.filter(railcar=railcar, index=1).update(keyframe=frame[2])
    Frame.objects.filter(pk=frame[1].pk).update(layer=None)  # between grabs: never shown
    Frame.objects.filter(pk=frame[4].pk).update(quality=INELIGIBLE)
    Frame.objects.filter(railcar=railcar, layer__index=3).update(quality=INELIGIBLE)

    def shown(**kwargs: object) -> list[tuple[int, list[int]]]:
        layers = layers_with_frames(railcar_id=railcar.pk, **kwargs)
        return [(layer.index, [f.index for f in layer.frames]) for layer in layers]

    assert shown() == [(1, [2, 0]), (2, [3, 5])]
    # A frame a rater marked before it became ineligible stays in view (the case page).
    assert shown(also={frame[7].pk, frame[1].pk}) == [(1, [2, 0]), (2, [3, 5]), (3, [7])]
