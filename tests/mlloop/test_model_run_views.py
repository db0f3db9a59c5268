"""Starting a training run from the model registry's admin page: refused input, and a run that the
worker trains, registers and promotes."""

import hashlib

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from mlloop.datasets import freeze_version
from mlloop.models import DatasetVersion, ModelVersion, SplitAssignment
from scrapannot.models import AuditEvent
from tests.adjudication.factories import rated_railcar
from tests.conftest import client_for
from tests.mlloop.version_factories import GRADES, dataset

pytestmark = pytest.mark.django_db


# --- starting a run --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "posted", [{}, {"dataset_version": "7"}, {"dataset_version": "1; DROP TABLE"}, {"x": "1"}]
)
def test_a_run_on_no_or_an_unknown_dataset_version_is_refused(admin_user, posted):
    dataset(1)

    response = client_for(admin_user).post(reverse("mlloop:models"), posted)

    assert response.status_code == 400
    assert b"Choose a dataset version" in response.content
    assert not ModelVersion.objects.exists()


@pytest.fixture
def tiny_model(settings) -> None:
    """timm's smallest convnet at 32 px for two epochs: a whole run in seconds on a CPU."""
    settings.MLLOOP = settings.MLLOOP | {"BACKBONE": "test_convnext", "IMAGE_SIZE": 32, "EPOCHS": 2}


def frozen_dataset(admin: User, capture, railcars: int = 9) -> DatasetVersion:
    """Railcars rated in agreement through the real pool, their splits pinned (train, val, test
    in turn, so that no split is empty), frozen into a dataset version."""
    splits = ["train", "val", "test"]
    for i in range(railcars):
        value = 1.0 + i
        with capture(execute=True):  # aggregation runs once the last rating commits
            railcar, _ = rated_railcar(
                [value, value + 0.1, value + 0.2], [GRADES[i % 4]] * 3, prefix=f"r{i}-"
            )
        SplitAssignment.objects.create(
            railcar=railcar, split=splits[i % 3], assigned_at=timezone.now()
        )
    return freeze_version(actor=admin)


def test_an_admin_queues_a_run_that_the_worker_trains_registers_and_promotes(
    admin_user, tiny_model, django_capture_on_commit_callbacks
):
    data = frozen_dataset(admin_user, django_capture_on_commit_callbacks)
    client = client_for(admin_user)

    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client.post(reverse("mlloop:models"), {"dataset_version": data.number})

    version = ModelVersion.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/{version.number}/")
    assert version.status == ModelVersion.Status.QUEUED and len(queued) == 1
    assert version.settings["backbone"] == "test_convnext" and version.settings["epochs"] == 2
    assert AuditEvent.objects.filter(action="model.queued", actor=admin_user).count() == 1
    page = client.get(reverse("mlloop:model", args=[version.number])).content.decode()
    assert 'id="run-progress"' in page and "mlloop/model.js" in page

    # The task runs inline (CELERY_TASK_ALWAYS_EAGER), as a worker would run it.
    with django_capture_on_commit_callbacks(execute=True):
        queued[0]()

    version.refresh_from_db()
    assert version.status == ModelVersion.Status.SUCCEEDED, version.log
    assert version.is_production  # the first successful run, by the promotion rule
    page = client.get(reverse("mlloop:model", args=[version.number])).content.decode()
    assert 'id="run-progress"' not in page and 'id="confusion"' in page
    assert f"{version.metrics['test']['mae']:.4f}" in page
    download = client.get(reverse("mlloop:model", args=[version.number]), {"download": "artifact"})
    blob = b"".join(download.streaming_content)
    assert hashlib.sha256(blob).hexdigest() == version.artifact_sha256
    assert version.artifact_sha256 in page
    listing = client.get(reverse("mlloop:models")).content.decode()
    assert listing.count("<svg") == 3


def test_a_run_on_a_dataset_without_training_railcars_fails_with_its_reason_shown(
    admin_user, tiny_model, django_capture_on_commit_callbacks
):
    data = dataset(1)  # no items at all
    client = client_for(admin_user)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("mlloop:models"), {"dataset_version": data.number})

    version = ModelVersion.objects.get()
    assert version.status == ModelVersion.Status.FAILED
    page = client.get(reverse("mlloop:model", args=[version.number])).content.decode()
    assert "no usable railcars in its train split" in page
    assert not ModelVersion.objects.filter(is_production=True).exists()


def test_a_run_with_unusable_configured_settings_is_refused_before_queueing(admin_user, settings):
    settings.MLLOOP = settings.MLLOOP | {"BACKBONE": "no_such_net"}
    data = dataset(1)

    response = client_for(admin_user).post(
        reverse("mlloop:models"), {"dataset_version": data.number}
    )

    assert response.status_code == 400 and b"no_such_net" in response.content
    assert not ModelVersion.objects.exists()
