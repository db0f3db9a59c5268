"""Per-camera baselines from the stored checks (labeling/camera_baselines.py): refreshed from a
camera's history, used by the checks, re-judged with, and shown on the operations page."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from django.urls import reverse

from labeling import camera_baselines, pipeline
from labeling.camera_baselines import CameraThresholds
from labeling.models import CameraBaseline, Frame, FrameCheck, Railcar
from labeling.policies import quality_thresholds
from labeling.quality import CheckResult
from labeling.quality_baseline import haze_limit, occupancy_limit
from scrapannot.policy import set_policy
from tests.conftest import client_for
from tests.labeling.test_pipeline import synth_railcar

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)


def camera_history(hazes: list[float], *, line: str = "L1", camera: str = "cam-east") -> Railcar:
    """Frames of one camera, oldest first, whose stored checks read `hazes`: stored the way the
    pipeline stores them (save_frame_checks)."""
    railcar = Railcar.objects.create(
        real_id=f"R-{uuid4().hex[:8]}", line=line, camera=camera, fingerprint=uuid4().hex,
        unloading_started_at=START, unloading_ended_at=START + timedelta(hours=1),
        layer_source="boxes", status=Railcar.Status.IN_POOL,
    )  # fmt: skip
    for i, haze in enumerate(hazes):
        frame = Frame.objects.create(
            railcar=railcar, index=i, source_name=f"{i}.jpg", camera=camera,
            captured_at=START + timedelta(seconds=10 * i), declared_sha256="0" * 64,
        )  # fmt: skip
        pipeline.save_frame_checks(
            frame=frame,
            results=[
                CheckResult("decode", 1.0, None, True),
                CheckResult("haze", haze, 0.35, haze <= 0.35),
                CheckResult("occupancy", 0.4, 0.25, True),
            ],
        )
    return railcar


def test_the_baseline_from_history_leaves_out_a_hazy_stretch() -> None:
    clear = [0.08 + 0.04 * (i % 5) / 4 for i in range(70)]
    camera_history(clear + [0.6] * 30)  # the newest thirty frames are dusty

    assert camera_baselines.refresh_camera_baselines() == 1

    row = CameraBaseline.objects.get(line="L1", camera="cam-east")
    assert row.frames == row.occupancy_frames == 100
    assert row.haze <= 0.1 and row.occupancy == pytest.approx(0.4)
    held_to = CameraThresholds(quality_thresholds())(line="L1", camera="cam-east", boxed=False)
    assert held_to.max_haze == pytest.approx(haze_limit(row.haze, quality_thresholds()))
    assert held_to.max_haze < 0.6


def test_the_history_is_the_cameras_newest_frames_and_only_its_own() -> None:
    camera_history([0.05] * 30 + [0.3] * 20)
    camera_history([0.5] * 40, camera="cam-west")
    set_policy(key="quality.baseline_frames", value=20, actor=None)

    camera_baselines.refresh_camera_baselines()

    east = CameraBaseline.objects.get(camera="cam-east")
    assert east.frames == 20 and east.haze == pytest.approx(0.3)
    assert CameraBaseline.objects.get(camera="cam-west").haze == pytest.approx(0.5)


def test_a_new_camera_is_checked_against_the_absolute_threshold(tmp_path) -> None:
    railcar = pipeline.check_railcar(railcar_id=synth_railcar(tmp_path).pk)

    hazes = FrameCheck.objects.filter(frame__railcar=railcar, name="haze")
    assert hazes and {c.threshold for c in hazes} == {quality_thresholds().max_haze}


def test_a_camera_with_too_little_history_keeps_the_absolute_threshold() -> None:
    camera_history([0.5] * 19)
    camera_baselines.refresh_camera_baselines()

    held_to = CameraThresholds(quality_thresholds())(line="L1", camera="cam-east", boxed=False)
    assert held_to.max_haze == quality_thresholds().max_haze


def test_a_camera_that_always_sees_an_even_surface_is_held_to_its_own_limit(tmp_path) -> None:
    railcar = synth_railcar(tmp_path)
    camera = railcar.frames.first().camera
    CameraBaseline.objects.create(
        line=railcar.line, camera=camera, haze=0.5, occupancy=0.1, frames=200,
        occupancy_frames=200, computed_at=START,
    )  # fmt: skip

    pipeline.check_railcar(railcar_id=railcar.pk)

    limit = haze_limit(0.5, quality_thresholds())
    hazes = FrameCheck.objects.filter(frame__railcar=railcar, name="haze")
    assert hazes and all(c.threshold == pytest.approx(limit) for c in hazes)
    assert limit > quality_thresholds().max_haze
    # Its frames carry railcar boxes: occupancy keeps the absolute threshold.
    occupancies = FrameCheck.objects.filter(frame__railcar=railcar, name="occupancy")
    assert {c.threshold for c in occupancies} == {quality_thresholds().min_occupancy}


def test_a_rejudge_holds_stored_values_to_the_cameras_current_baseline() -> None:
    railcar = camera_history([0.45] * 10)  # hazy by the absolute threshold
    assert not railcar.frames.filter(quality=Frame.Quality.ELIGIBLE).exists()
    CameraBaseline.objects.create(
        line="L1", camera="cam-east", haze=0.45, occupancy=0.4, frames=200, computed_at=START
    )

    preview = pipeline.rejudge_preview()
    pipeline.rejudge(railcar_id=railcar.pk, thresholds=quality_thresholds())

    assert preview.frames_changing == 10
    assert railcar.frames.filter(quality=Frame.Quality.ELIGIBLE).count() == 10


def test_the_quality_page_shows_each_cameras_baseline_and_its_limit(admin_user) -> None:
    camera_history([0.42] * 25)
    camera_history([0.1] * 5, camera="cam-new")
    camera_baselines.refresh_camera_baselines()

    response = client_for(admin_user).get(reverse("labeling:quality-ops"))

    assert response.status_code == 200
    rows = {r.camera: r for r in response.context["baselines"]}
    assert rows["cam-east"].own and not rows["cam-new"].own
    assert rows["cam-new"].max_haze == quality_thresholds().max_haze
    body = response.content.decode()
    limit = haze_limit(0.42, quality_thresholds())
    assert "0.420" in body and f"{limit:.3f} (its own)" in body
    assert "absolute: too little history" in body
    occupancy = occupancy_limit(0.4, quality_thresholds())  # 0.25 x 0.4 / 0.42
    assert rows["cam-east"].min_occupancy == pytest.approx(occupancy)
    assert f"{occupancy:.3f} (its own)" in body


def test_an_hourly_beat_task_refreshes_the_baselines() -> None:
    from django_celery_beat.models import PeriodicTask

    from labeling import tasks

    schedule = PeriodicTask.objects.get(task="labeling.refresh_camera_baselines")
    assert schedule.enabled and (schedule.interval.every, schedule.interval.period) == (1, "hours")
    camera_history([0.2] * 25)

    assert tasks.refresh_camera_baselines.delay().get() == 1
    assert CameraBaseline.objects.get(camera="cam-east").haze == pytest.approx(0.2)
