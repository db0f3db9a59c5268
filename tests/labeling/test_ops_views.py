import pytest
from django.urls import reverse
from PIL import Image

from labeling import pipeline
from labeling.models import Frame, Railcar
from scrapannot import charts
from scrapannot.models import AuditEvent
from tests.conftest import client_for
from tests.labeling.test_pipeline import synth_railcar

pytestmark = pytest.mark.django_db


@pytest.fixture
def checked(tmp_path) -> Railcar:
    railcar = synth_railcar(tmp_path, defect_share=0.5)
    return pipeline.check_railcar(railcar_id=railcar.pk)


def admin_urls(railcar: Railcar) -> list[str]:
    frame = railcar.frames.filter(rejection="").first()
    return [
        reverse("labeling:quality-ops"),
        reverse("labeling:frame-thumbnail", args=[frame.uid]),
        reverse("policies"),
        reverse("audit-trail"),
    ]


@pytest.mark.parametrize("who", ["anonymous", "annotator", "senior", "outsider", "plant"])
def test_nobody_but_admins_reaches_the_operations_pages(who, request, checked):
    user = None if who == "anonymous" else request.getfixturevalue(who)
    client = client_for(user)

    for url in admin_urls(checked):
        response = client.get(url)
        if user is None:
            assert response.status_code == 302 and "/accounts/login/" in response["Location"]
        else:
            assert response.status_code == 403, url
        assert checked.real_id.encode() not in response.content
    assert client.post(reverse("labeling:quality-rejudge")).status_code in (302, 403)
    assert not AuditEvent.objects.filter(action="quality.rejudge_requested").exists()


def test_the_quality_page_shows_rejection_shares_and_rejected_frames(admin_user, checked):
    response = client_for(admin_user).get(
        reverse("labeling:quality-ops"), {"line": checked.line, "days": 3650}
    )

    assert response.status_code == 200
    chart = response.context["chart"]
    assert sum(chart["frames"]) == checked.frames.count()
    failed_shares = [v for values in chart["share"].values() for v in values if v]
    assert failed_shares and all(0 < v <= 1 for v in failed_shares)
    # The script draws each check in its colour of the one palette all charts use.
    assert list(chart["colors"]) == list(chart["share"])
    assert list(chart["colors"].values()) == list(charts.PALETTE)
    rejected = list(response.context["rejected"])
    assert rejected and all(f.quality == Frame.Quality.INELIGIBLE for f in rejected)
    assert all(f.failed_checks for f in rejected)
    body = response.content.decode()
    assert checked.real_id in body and "rejection-data" in body


def test_the_quality_page_survives_nonsense_parameters(admin_user, checked):
    response = client_for(admin_user).get(
        reverse("labeling:quality-ops"),
        {"days": "-5; DROP TABLE", "line": "x" * 5000, "camera": "<script>"},
    )

    assert response.status_code == 200
    assert b"<script>alert" not in response.content


def test_a_thumbnail_is_a_small_jpeg_made_once(admin_user, checked, settings):
    frame = checked.frames.filter(rejection="").first()
    url = reverse("labeling:frame-thumbnail", args=[frame.uid])

    first = client_for(admin_user).get(url)
    second = client_for(admin_user).get(url)

    assert first.status_code == 200 and first["Content-Type"] == "image/jpeg"
    assert first.content == second.content
    from io import BytesIO

    assert max(Image.open(BytesIO(first.content)).size) <= 320


def test_a_frame_without_an_image_has_no_thumbnail(admin_user, checked):
    frame = checked.frames.first()
    Frame.objects.filter(pk=frame.pk).update(rejection="corrupt", file="")

    response = client_for(admin_user).get(reverse("labeling:frame-thumbnail", args=[frame.uid]))

    assert response.status_code == 404


def test_an_admin_can_ask_to_reapply_the_thresholds(
    admin_user, checked, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(admin_user).post(reverse("labeling:quality-rejudge"))

    assert response.status_code == 302
    assert AuditEvent.objects.get(action="quality.rejudge_requested").actor == admin_user
    assert AuditEvent.objects.filter(action="quality.rejudged").count() == 1


def test_re_judging_asks_first_with_a_dry_run_that_matches_what_it_does(
    admin_user, checked, django_capture_on_commit_callbacks
):
    from scrapannot.policy import set_policy

    eligible_before = set(checked.frames.filter(quality=Frame.Quality.ELIGIBLE).values_list("pk"))
    set_policy(key="quality.min_mean_luma", value=255, actor=admin_user)  # no frame passes
    client = client_for(admin_user)

    page = client.get(reverse("labeling:quality-rejudge"))

    preview = page.context["preview"]
    assert page.status_code == 200
    assert not AuditEvent.objects.filter(action__startswith="quality.rejudge").exists()
    assert preview.railcars == 1
    assert preview.frames_changing == len(eligible_before) > 0
    assert (preview.to_attention, preview.to_pool) == (
        (1, 0) if checked.status == Railcar.Status.IN_POOL else (0, 0)
    )
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("labeling:quality-rejudge"))
    assert not checked.frames.filter(quality=Frame.Quality.ELIGIBLE).exists()
    checked.refresh_from_db()
    assert checked.status == Railcar.Status.NEEDS_ATTENTION


@pytest.mark.parametrize("who", ["senior", "annotator"])
def test_only_admins_see_the_re_judge_dry_run(who, request, checked):
    response = client_for(request.getfixturevalue(who)).get(reverse("labeling:quality-rejudge"))
    assert response.status_code == 403
