"""Training: the database-free core, a registered run end to end, the feature cache, the
artifact, and the registry's promotion rule, promotions and rollbacks."""

import hashlib

import numpy as np
import pytest
import torch
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.utils import timezone

from labeling.models import Frame, Layer
from mlloop import artifacts, registry, runs
from mlloop.config import model_config
from mlloop.features import extractor, railcar_features
from mlloop.models import DatasetItem, FrameFeature, ModelVersion
from mlloop.policies import PROMOTION_MIN_GAIN
from mlloop.training import TrainingError, evaluate, fit, metrics, point_predictions
from scrapannot.audit import verify_chain
from scrapannot.models import AuditEvent
from scrapannot.policy import set_policy
from tests.concurrency import run_at_once
from tests.mlloop.model_factories import (
    GRADES,
    TINY,
    feature_bags,
    frozen_dataset,
    splits,
    train_run,
)

torch.set_num_threads(2)
Status = ModelVersion.Status


def actions() -> list[str]:
    return list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))


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


# --- the registry ------------------------------------------------------------------------------


def version(number: int, val_mae: float | None, *, status=Status.SUCCEEDED, champion=None):
    dataset = frozen_dataset([]) if number == 1 else ModelVersion.objects.first().dataset_version
    metrics_ = {"val": {"mae": val_mae}} if val_mae is not None else {}
    if champion:
        metrics_["champion_val"] = champion
    run = ModelVersion.objects.create(
        number=number,
        dataset_version=dataset,
        status=status,
        metrics=metrics_,
        created_at=timezone.now(),
    )
    if status == Status.SUCCEEDED:
        blob = f"artifact {number}".encode()
        run.artifact.save(f"models/v{number}.pt", ContentFile(blob), save=False)
        run.artifact_sha256 = hashlib.sha256(blob).hexdigest()
        run.save()
    return run


def production_number() -> int | None:
    current = registry.production()
    return current.number if current else None


@pytest.mark.django_db
def test_the_promotion_rule_promotes_only_a_better_validation_mae():
    assert registry.auto_promote(version(1, 1.0))  # the first good model
    assert not registry.auto_promote(version(2, 1.2))  # worse
    assert not registry.auto_promote(version(3, 1.0))  # equal is not better
    assert registry.auto_promote(version(4, 0.8))

    assert production_number() == 4
    rejected = ModelVersion.objects.get(number=2).metrics["promotion"]
    assert not rejected["promoted"] and "1.200 vs 1.000 of model v1" in rejected["reason"]
    assert ModelVersion.objects.get(number=4).promoted_over.number == 1


@pytest.mark.django_db
def test_the_promotion_rule_honours_the_minimum_gain_policy(admin_user):
    set_policy(key=PROMOTION_MIN_GAIN, value=0.3, actor=admin_user)
    registry.auto_promote(version(1, 1.0))
    assert not registry.auto_promote(version(2, 0.8))  # 0.2 better: not enough
    assert registry.auto_promote(version(3, 0.6))
    assert production_number() == 3


@pytest.mark.django_db
def test_the_rule_prefers_the_champion_measured_on_the_same_validation_railcars():
    registry.auto_promote(version(1, 0.5))
    # Recorded on its own split v1 looked better (0.5), but on v2's railcars it scored 0.9.
    assert registry.auto_promote(version(2, 0.7, champion={"model": 1, "mae": 0.9}))
    assert "on the same validation railcars" in registry.production().metrics["promotion"]["reason"]


@pytest.mark.django_db
@pytest.mark.parametrize("status", [Status.FAILED, Status.RUNNING, Status.QUEUED])
def test_a_run_that_did_not_succeed_is_never_promoted(status):
    run = version(1, 0.1, status=status)
    assert not registry.auto_promote(run)
    with pytest.raises(registry.PromotionError, match="has not trained successfully"):
        registry.promote(model_version=run, actor=None, reason="try")
    assert production_number() is None


@pytest.mark.django_db
def test_promotions_and_rollbacks_by_hand_are_audited_and_go_back_step_by_step(admin_user):
    v1, v2, v3 = version(1, 1.0), version(2, 2.0), version(3, 3.0)
    for run in (v1, v2, v3):
        registry.promote(model_version=run, actor=admin_user, reason=f"try v{run.number}")
    with pytest.raises(registry.PromotionError, match="already in production"):
        registry.promote(model_version=v3, actor=admin_user, reason="again")

    assert registry.rollback(actor=admin_user, reason="v3 drifts").number == 2
    assert registry.rollback(actor=admin_user, reason="v2 too").number == 1
    with pytest.raises(registry.PromotionError, match="replaced no earlier model"):
        registry.rollback(actor=admin_user)

    assert production_number() == 1
    events = AuditEvent.objects.filter(action__startswith="model.").order_by("seq")
    assert [e.action for e in events] == ["model.promoted"] * 3 + ["model.rolled_back"] * 2
    assert events.last().payload == {"from": 2, "to": 1, "reason": "v2 too"}
    assert all(e.actor_id == admin_user.pk for e in events)
    assert verify_chain().ok


@pytest.mark.django_db
def test_a_rollback_without_a_production_model_is_refused():
    with pytest.raises(registry.PromotionError, match="no production model"):
        registry.rollback(actor=None)


@pytest.mark.django_db(transaction=True)
def test_concurrent_promotions_leave_exactly_one_production_model(on_postgresql):
    runs_ = [version(n, 1.0) for n in range(1, 5)]
    pending = list(runs_)

    def promote_one():
        try:
            return registry.promote(model_version=pending.pop(), actor=None, reason="race").number
        except registry.PromotionError:
            return None

    run_at_once(promote_one, threads=4)

    assert ModelVersion.objects.filter(is_production=True).count() == 1
    assert verify_chain().ok


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_get_distinct_numbers(on_postgresql):
    dataset = frozen_dataset(splits(2, 1, 0))
    numbers = run_at_once(
        lambda: (
            registry.create_run(
                dataset_version=dataset, actor=None, overrides=TINY, enqueue=False
            ).number
        ),
        threads=4,
    )
    assert sorted(numbers) == [1, 2, 3, 4]


@pytest.mark.django_db
def test_an_altered_missing_or_corrupt_artifact_is_a_clear_error():
    run = version(1, 1.0)
    with pytest.raises(artifacts.ArtifactError, match="unreadable"):
        registry.load(run)  # a checksum-true file that is no artifact

    run.artifact_sha256 = "0" * 64
    with pytest.raises(artifacts.ArtifactError, match="altered"):
        registry.load(run)

    default_storage.delete(run.artifact.name)
    with pytest.raises(artifacts.ArtifactError, match="missing"):
        registry.load(run)


@pytest.mark.django_db
def test_the_scheduled_retrain_queues_one_run_per_new_dataset_version(settings):
    from django_celery_beat.models import PeriodicTask

    from mlloop import tasks

    settings.MLLOOP = {**settings.MLLOOP, "BACKBONE": "test_resnet", "IMAGE_SIZE": 32}
    assert tasks.retrain()["queued"] is None  # no dataset version yet
    dataset = frozen_dataset(splits(4, 2, 0))

    assert tasks.retrain() == {"queued": 1}
    assert tasks.retrain()["queued"] is None  # that version has its run
    assert ModelVersion.objects.get().dataset_version == dataset
    schedules = dict(PeriodicTask.objects.values_list("task", "enabled"))
    assert schedules["mlloop.retrain"] and schedules["mlloop.score_railcars"]
