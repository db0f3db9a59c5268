"""The frame-quality chart's default window is the range that holds checked frames, so frames
captured long ago (a replay, an import, the demo's dates) are not an empty chart."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from labeling import ops, pipeline
from labeling.models import Frame, Railcar
from tests.conftest import client_for
from tests.labeling.test_pipeline import synth_railcar

pytestmark = pytest.mark.django_db


def checked_days_ago(tmp_path, days: int, *, seed: int = 5) -> Railcar:
    railcar = synth_railcar(tmp_path, defect_share=0.5, seed=seed)
    Frame.objects.filter(railcar=railcar).update(captured_at=timezone.now() - timedelta(days=days))
    return pipeline.check_railcar(railcar_id=railcar.pk)


def test_frames_captured_months_ago_fill_the_default_chart(admin_user, tmp_path):
    railcar = checked_days_ago(tmp_path, 200)
    captured = timezone.localdate(railcar.frames.first().captured_at)

    response = client_for(admin_user).get(reverse("labeling:quality-ops"))

    assert response.status_code == 200
    chart = response.context["chart"]
    assert sum(chart["frames"]) == railcar.frames.count()
    assert chart["days"][-1] == captured.isoformat()
    assert response.context["days"] == ops.DEFAULT_DAYS
    assert f"to {captured.isoformat()}" in response.content.decode()


def test_the_default_window_reaches_back_to_the_earliest_data_within_a_year(tmp_path):
    checked_days_ago(tmp_path, 100, seed=5)
    checked_days_ago(tmp_path, 10, seed=6)

    window = ops.data_window()

    assert window.end == timezone.localdate(timezone.now() - timedelta(days=10))
    assert window.days == 91
    series = ops.rejection_series(days=window.days, end=window.end)
    assert sum(series.frames) == Frame.objects.exclude(quality=Frame.Quality.PENDING).count()


def test_with_nothing_checked_the_window_is_the_last_30_days():
    window = ops.data_window()
    assert window == ops.Window(end=timezone.now().date(), days=30)


def test_an_explicit_range_is_kept(admin_user, tmp_path):
    checked_days_ago(tmp_path, 200)
    end = (timezone.now() - timedelta(days=5)).date()

    response = client_for(admin_user).get(
        reverse("labeling:quality-ops"), {"days": 7, "end": end.isoformat()}
    )

    assert response.context["chart"]["days"][-1] == end.isoformat()
    assert len(response.context["chart"]["days"]) == 7
    assert sum(response.context["chart"]["frames"]) == 0
