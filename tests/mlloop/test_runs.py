"""A registered training run end to end (mlloop/runs.py): its artifact, a second delivery, the
feature cache, missing frames, failures with their reasons, and the train command."""

import hashlib

import numpy as np
import pytest
import torch
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command

from labeling.models import Frame, Layer
from mlloop import registry, runs
from mlloop.config import model_config
from mlloop.features import extractor, railcar_features
from mlloop.models import DatasetItem, FrameFeature, ModelVersion
from mlloop.training import evaluate, point_predictions
from scrapannot.audit import verify_chain
from scrapannot.models import AuditEvent
from tests.mlloop.model_factories import GRADES, TINY, frozen_dataset, splits, train_run

torch.set_num_threads(2)
Status = ModelVersion.Status


def actions() -> list[str]:
    return list(AuditEvent.objects.order_by("id").values_list("action", flat=True))


# --- a registered run, end to end ---------------------------------------------------------------


@pytest.mark.django_db
def test_a_run_trains_registers_its_artifact_and_becomes_the_first_production_model():
    dataset = frozen_dataset(splits(8, 3, 3))

    run = train_run(dataset)

    assert run.status == Status.SUCCEEDED, run.log
    assert run.progress == 1.0 and run.stage == "done" and run.finished_at is not None
    assert "epoch 4/4" in run.log and "test: n 3" in run.log
    for split in ("train", "val", "test"):
        assert set(run.metrics[split]) >= {"mae", "r2", "accuracy", "f1_macro", "confusion"}
    assert run.metrics["test"]["n"] == 3
    data = default_storage.open(run.artifact.name).read()
    assert hashlib.sha256(data).hexdigest() == run.artifact_sha256
    assert run.artifact.name.startswith("models/")
    assert run.is_production and run.metrics["promotion"]["promoted"]
    assert actions()[-3:] == ["model.queued", "model.trained", "model.promoted"]
    assert verify_chain().ok


@pytest.mark.django_db
def test_the_artifact_loads_back_into_the_same_model():
    dataset = frozen_dataset(splits(8, 3, 3))
    run = train_run(dataset)
    config = model_config(**TINY)
    test_ids = DatasetItem.objects.filter(version=dataset, split="test").values_list(
        "railcar_id", flat=True
    )
    bags = railcar_features(test_ids, config)

    loaded = registry.load(run)

    assert loaded.feature_key == run.metrics["feature_key"]
    from mlloop.training import Bag

    items = DatasetItem.objects.filter(version=dataset, split="test")
    test_bags = [
        Bag(bags[i.railcar_id], float(i.contamination_pct), GRADES.index(i.grade)) for i in items
    ]
    assert evaluate(loaded, test_bags)["mae"] == pytest.approx(run.metrics["test"]["mae"])
    assert registry.load(run) is loaded  # cached per process
    contamination, _ = point_predictions(loaded, test_bags)
    assert np.all((contamination >= 0) & (contamination <= 100))


@pytest.mark.django_db
def test_a_second_delivery_of_a_finished_run_changes_nothing():
    run = train_run(frozen_dataset(splits(6, 2, 0)))

    again = runs.train_model_version(run.pk)

    assert (again.artifact_sha256, again.log, again.status) == (
        run.artifact_sha256,
        run.log,
        Status.SUCCEEDED,
    )
    assert actions().count("model.trained") == 1


@pytest.mark.django_db
def test_cached_features_spare_the_backbone_on_the_next_run():
    dataset = frozen_dataset(splits(6, 2, 2))
    keyframes = Layer.objects.filter(railcar__in=dataset.items.values("railcar")).count()
    backbone = extractor(model_config(**TINY))
    seen = backbone.images_seen

    train_run(dataset)
    computed = backbone.images_seen - seen
    second = train_run(dataset, epochs=2, lam=1.0)  # other head settings, same features

    assert computed == keyframes == 30
    assert FrameFeature.objects.count() == keyframes
    assert backbone.images_seen - seen == computed  # not one frame more
    assert second.status == Status.SUCCEEDED
    # A different image size is a different feature key: computed afresh.
    train_run(dataset, image_size=40)
    assert backbone is not extractor(model_config(**TINY))  # one backbone in memory at a time
    assert FrameFeature.objects.count() == 2 * keyframes


@pytest.mark.django_db
def test_missing_or_corrupt_frame_files_are_skipped_with_a_log_line():
    dataset = frozen_dataset(splits(6, 2, 0))
    first, second = list(dataset.items.order_by("railcar_id")[:2])
    gone = Frame.objects.filter(railcar_id=first.railcar_id).order_by("index")
    default_storage.delete(gone[0].file.name)  # one layer of the first railcar lost
    for frame in Frame.objects.filter(railcar_id=second.railcar_id):  # all of the second's bad
        with default_storage.open(frame.file.name, "rb") as handle:
            head = handle.read()[:200]
        default_storage.delete(frame.file.name)
        default_storage.save(frame.file.name, ContentFile(head))  # truncated JPEG

    run = train_run(dataset)

    assert run.status == Status.SUCCEEDED, run.log
    assert f"frame {gone[0].pk} skipped: file missing from storage" in run.log
    for frame in Frame.objects.filter(railcar_id=second.railcar_id):
        assert f"frame {frame.pk} skipped: Truncated File Read" in run.log
    assert f"railcar {second.railcar_id} skipped: no readable keyframe" in run.log
    assert "train: 5 railcars" in run.log


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("layout", "missing"), [((0, 3, 1), "train"), ((5, 0, 2), "val")], ids=["train", "val"]
)
def test_an_empty_split_fails_the_run_with_a_clear_message(layout, missing):
    run = train_run(frozen_dataset(splits(*layout)))

    assert run.status == Status.FAILED and run.stage == "failed"
    assert f"has no usable railcars in its {missing} split" in run.log
    assert not run.artifact and not run.is_production
    assert actions()[-1] == "model.failed"


@pytest.mark.django_db
def test_weights_that_do_not_fit_fail_the_run_with_the_reason(tmp_path):
    import timm

    path = tmp_path / "vit.pth"
    torch.save(timm.create_model("test_vit", num_classes=0).state_dict(), path)

    run = train_run(frozen_dataset(splits(4, 2, 0)), pretrained_weights=str(path))

    assert run.status == Status.FAILED
    assert "does not fit test_resnet" in run.log


@pytest.mark.django_db
@pytest.mark.parametrize(
    "overrides",
    [{"backbone": "no_such_net"}, {"pretrained_weights": "/nonexistent/w.pth"}, {"epochs": -1}],
)
def test_unusable_settings_are_refused_before_anything_is_queued(overrides):
    dataset = frozen_dataset(splits(2, 1, 0))
    with pytest.raises(ValidationError):
        registry.create_run(dataset_version=dataset, actor=None, overrides=overrides)
    assert not ModelVersion.objects.exists()


@pytest.mark.django_db
def test_the_train_command_trains_prints_metrics_and_promotes(capsys):
    dataset = frozen_dataset(splits(6, 2, 2))

    call_command("train", f"--dataset={dataset.number}", "--backbone=test_resnet",
                 "--image-size=32", "--epochs=2", "--promote")  # fmt: skip

    out = capsys.readouterr().out
    assert '"mae":' in out and "test:" in out and "in production" in out
    assert ModelVersion.objects.get().is_production


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args", [["--dataset=99"], ["--backbone=no_such_net"], ["--epochs=0"], ["--image-size=-3"]]
)
def test_the_train_command_refuses_bad_input_clearly(args):
    frozen_dataset(splits(2, 1, 0))
    with pytest.raises(CommandError):
        call_command("train", *args)
    assert not ModelVersion.objects.exists()


# --- lost messages --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_queued_run_whose_message_was_lost_is_trained_after_the_reconcilers_period(
    django_capture_on_commit_callbacks,
):
    from datetime import timedelta

    from django.utils import timezone
    from django_celery_beat.models import PeriodicTask

    from mlloop.reconcile import requeue_lost_runs

    dataset = frozen_dataset(splits(6, 2, 0))
    run = registry.create_run(dataset_version=dataset, actor=None, overrides=TINY, enqueue=False)
    later = timezone.now() + timedelta(minutes=30)

    assert requeue_lost_runs() == 0  # within its period: perhaps only waiting behind another
    with django_capture_on_commit_callbacks(execute=True):
        assert requeue_lost_runs(now=later) == 1
    assert requeue_lost_runs(now=later + timedelta(minutes=1)) == 0  # once per period

    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, run.log
    assert requeue_lost_runs(now=later + timedelta(hours=1)) == 0  # done: owes nothing
    task = PeriodicTask.objects.get(task="mlloop.requeue_lost_runs")
    assert task.enabled and (task.interval.every, task.interval.period) == (5, "minutes")
