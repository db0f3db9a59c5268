"""The model registry's admin pages: the list with its charts, one version's page and progress,
promotion and rollback by hand. (Starting a run: test_model_run_views.py; the schedules page:
tests/operations/test_schedules.py.)"""

import hashlib
import re

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse
from playwright.sync_api import expect

from mlloop.models import ModelVersion
from scrapannot.audit import verify_chain
from scrapannot.models import AuditEvent
from scrapannot.roles import Role
from tests.conftest import client_for, user_with_roles
from tests.labeling.probe import reply
from tests.mlloop.version_factories import dataset, model_version, run_metrics

pytest_plugins = ["tests.browser_fixtures"]
pytestmark = pytest.mark.django_db

INTRUDERS = ["annotator", "senior", "plant", "outsider"]


# --- who may ---------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["anonymous", *INTRUDERS])
def test_nobody_but_admins_reaches_the_model_pages(who, request):
    user = None if who == "anonymous" else request.getfixturevalue(who)
    version = model_version(1)
    client = client_for(user)
    number = version.number
    gets = [
        reverse("mlloop:models"),
        reverse("mlloop:model", args=[number]),
        reverse("mlloop:model", args=[number]) + "?download=artifact",
        reverse("mlloop:model-progress", args=[number]),
    ]
    posts = [
        (reverse("mlloop:models"), {"dataset_version": version.dataset_version.number}),
        (reverse("mlloop:model-promote", args=[number]), {"action": "promote", "reason": "x"}),
    ]

    responses = [client.get(url) for url in gets] + [client.post(u, d) for u, d in posts]

    for response in responses:
        if user is None:
            assert response.status_code == 302 and "/accounts/login/" in response["Location"]
        else:
            assert response.status_code == 403
        # The body without its random CSRF token, which may spell "mae" by chance.
        assert "mae" not in reply(response)[3].lower()
    assert ModelVersion.objects.count() == 1
    version.refresh_from_db()
    assert not version.is_production
    assert not AuditEvent.objects.exists()


def test_a_plant_token_does_not_open_the_model_pages(plant_client):
    model_version(1)

    for url in (reverse("mlloop:models"), reverse("mlloop:model-progress", args=[1])):
        response = plant_client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_an_unknown_version_is_not_found(admin_user):
    client = client_for(admin_user)

    assert client.get(reverse("mlloop:model", args=[99])).status_code == 404
    assert client.get(reverse("mlloop:model-progress", args=[99])).status_code == 404
    response = client.post(
        reverse("mlloop:model-promote", args=[99]), {"action": "promote", "reason": "x"}
    )
    assert response.status_code == 404


# --- the list and its charts -----------------------------------------------------------------


def test_the_list_with_no_versions_says_so_and_draws_no_chart(admin_user):
    dataset()
    response = client_for(admin_user).get(reverse("mlloop:models"))

    assert response.status_code == 200
    body = response.content.decode()
    assert "No model versions yet." in body
    assert "<svg" not in body and body.count("No finished versions yet.") == 3


def test_one_version_is_one_point_per_split_on_each_chart(admin_user):
    version = model_version(1)

    body = client_for(admin_user).get(reverse("mlloop:models")).content.decode()

    charts = re.findall(r"<svg.*?</svg>", body, re.S)
    assert len(charts) == 3
    for chart in charts:
        assert chart.count("<circle") == 2 and "<polyline" not in chart
    assert f"{version.metrics['test']['mae']:.3f}" in body
    assert f"{version.metrics['test']['f1_macro']:.3f}" in body


def test_many_versions_draw_a_line_over_the_finished_ones(admin_user):
    for number in range(1, 8):
        model_version(number)
    model_version(8, status=ModelVersion.Status.FAILED)
    model_version(9, status=ModelVersion.Status.RUNNING)

    response = client_for(admin_user).get(reverse("mlloop:models"))

    body = response.content.decode()
    mae_chart = re.findall(r"<svg.*?</svg>", body, re.S)[0]
    lines = re.findall(r'<polyline[^>]*points="([^"]+)"', mae_chart)
    assert [len(points.split()) for points in lines] == [7, 7]
    # Higher MAE is drawn lower on the y axis: the points follow the test MAE of each version.
    test_mae = [ModelVersion.objects.get(number=n).metrics["test"]["mae"] for n in range(1, 8)]
    ys = [float(p.split(",")[1]) for p in lines[1].split()]
    assert np.argsort(ys).tolist() == np.argsort(test_mae)[::-1].tolist()
    assert len(re.findall(r'<tr data-number="\d+">', body)) == 9


def test_a_metric_that_is_undefined_breaks_the_line_instead_of_drawing_zero(admin_user):
    for number in (1, 2, 3):
        model_version(number)
    middle = ModelVersion.objects.get(number=2)
    middle.metrics["test"]["r2"] = None  # no variance in the truth
    middle.save()

    body = client_for(admin_user).get(reverse("mlloop:models")).content.decode()

    r2_chart = re.findall(r"<svg.*?</svg>", body, re.S)[1]
    assert r2_chart.count("<circle") == 5  # 3 val + 2 test
    test_line_points = re.findall(r'<polyline[^>]*points="([^"]+)"', r2_chart)
    assert len(test_line_points) == 1  # val only: test has no two neighbouring values


# --- one version -----------------------------------------------------------------------------


def test_a_finished_version_shows_settings_metrics_confusion_log_and_artifact(admin_user):
    version = model_version(3)
    blob = b"weights-" * 100
    version.artifact.save("v3.pt", ContentFile(blob))
    version.artifact_sha256 = hashlib.sha256(blob).hexdigest()
    version.save()
    client = client_for(admin_user)

    response = client.get(reverse("mlloop:model", args=[3]))

    assert response.status_code == 200
    body = response.content.decode()
    assert "test_convnext" in body and "line 2" in body
    assert version.artifact_sha256 in body
    matrix = version.metrics["test"]["confusion"]["matrix"]
    confusion = re.search(r'id="confusion".*?</table>', body, re.S).group(0)
    cells = [int(c) for c in re.findall(r"<td[^>]*>(\d+)</td>", confusion)]
    assert cells == [v for row in matrix for v in row]
    assert 'src="/static/mlloop/model.js"' not in body  # nothing to poll
    download = client.get(reverse("mlloop:model", args=[3]), {"download": "artifact"})
    assert download.status_code == 200 and b"".join(download.streaming_content) == blob
    assert "attachment" in download["Content-Disposition"]


def test_a_version_without_an_artifact_has_nothing_to_download(admin_user):
    model_version(1, status=ModelVersion.Status.FAILED)

    response = client_for(admin_user).get(
        reverse("mlloop:model", args=[1]), {"download": "artifact"}
    )

    assert response.status_code == 404


def test_progress_reports_a_running_version_and_its_last_log_lines(admin_user):
    version = model_version(1, status=ModelVersion.Status.QUEUED)
    client = client_for(admin_user)
    assert client.get(reverse("mlloop:model", args=[1])).content.count(b"mlloop/model.js") == 1
    ModelVersion.objects.filter(pk=version.pk).update(
        status=ModelVersion.Status.RUNNING,
        progress=0.4,
        stage="epoch 4/10",
        log="".join(f"epoch {i}\n" for i in range(1, 31)),
    )

    state = client.get(reverse("mlloop:model-progress", args=[1])).json()

    assert state["status"] == "running" and state["progress"] == 0.4
    assert state["stage"] == "epoch 4/10" and not state["finished"]
    assert state["log_tail"] == [f"epoch {i}" for i in range(11, 31)]
    ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.FAILED)
    assert client.get(reverse("mlloop:model-progress", args=[1])).json()["finished"]


@pytest.mark.browser
def test_the_progress_bar_follows_a_running_version_and_the_page_shows_the_result(page, log_in):
    user_with_roles("boss", Role.ADMIN)
    version = model_version(1, status=ModelVersion.Status.RUNNING)
    ModelVersion.objects.filter(pk=version.pk).update(progress=0.1, stage="features")
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(username="boss", password="boss-pass-1")

    page.goto(reverse("mlloop:model", args=[1]))
    expect(page.locator("#run-stage")).to_have_text("features")
    ModelVersion.objects.filter(pk=version.pk).update(
        progress=0.6, stage="training", log="epoch 5/10: val MAE 1.2\nepoch 6/10: val MAE 1.1"
    )

    expect(page.locator("#run-stage")).to_have_text("training")
    expect(page.locator("#run-percent")).to_have_text("60 %")
    assert page.locator("#run-progress").evaluate("bar => bar.value") == pytest.approx(0.6)
    expect(page.locator("#run-log")).to_contain_text("epoch 6/10: val MAE 1.1")

    finished = {"val": run_metrics(1), "test": run_metrics(2)}
    ModelVersion.objects.filter(pk=version.pk).update(
        status=ModelVersion.Status.SUCCEEDED, progress=1.0, stage="done", metrics=finished
    )
    expect(page.locator("#metrics")).to_be_visible()
    expect(page.locator("#run-progress")).to_have_count(0)
    expect(page.locator("#confusion")).to_be_visible()
    assert errors == []


# --- promotion and rollback ------------------------------------------------------------------


def promote(client: Client, number: int, **data: str):
    return client.post(reverse("mlloop:model-promote", args=[number]), data)


def test_an_admin_promotes_a_version_and_rolls_it_back(admin_user):
    first, second = model_version(1), model_version(2)
    client = client_for(admin_user)

    assert promote(client, 1, action="promote", reason="first good one").status_code == 302
    assert promote(client, 2, action="promote", reason="better test MAE").status_code == 302
    second.refresh_from_db()
    assert second.is_production and second.promoted_at is not None

    response = promote(client, 2, action="rollback", reason="worse on line 4")

    assert response.status_code == 302
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.is_production and not second.is_production
    events = AuditEvent.objects.filter(actor=admin_user).order_by("id")
    reasons = [e.payload.get("reason") for e in events]
    assert "better test MAE" in reasons and "worse on line 4" in reasons
    assert verify_chain().ok
    page = client.get(reverse("mlloop:models")).content.decode()
    assert re.search(r'data-number="1">.*?production', page, re.S)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"action": "delete", "reason": "x"}, "action"),
        ({"action": "promote"}, "reason"),
        ({"action": "promote", "reason": "   "}, "reason"),
        ({"action": "promote", "reason": "x" * 501}, "reason"),
        ({}, "action"),
    ],
)
def test_bad_promotion_input_changes_nothing(admin_user, data, message):
    model_version(1)

    response = promote(client_for(admin_user), 1, **data)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not ModelVersion.objects.filter(is_production=True).exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("status", [ModelVersion.Status.FAILED, ModelVersion.Status.RUNNING])
def test_a_run_that_did_not_succeed_cannot_be_promoted(admin_user, status):
    model_version(1, status=status)

    response = promote(client_for(admin_user), 1, action="promote", reason="try it")

    assert response.status_code == 400
    assert not ModelVersion.objects.filter(is_production=True).exists()
    assert not AuditEvent.objects.exists()


def test_there_is_nothing_to_roll_back_to_without_an_earlier_production_model(admin_user):
    model_version(1)
    client = client_for(admin_user)
    assert promote(client, 1, action="rollback", reason="nothing yet").status_code == 400
    assert promote(client, 1, action="promote", reason="first").status_code == 302

    response = promote(client, 1, action="rollback", reason="no earlier one")

    assert response.status_code == 400
    assert ModelVersion.objects.get(number=1).is_production
