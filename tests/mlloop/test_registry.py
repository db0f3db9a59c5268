"""The model registry (mlloop/registry.py): the promotion rule, promotions and rollbacks by hand,
concurrent promotions and runs, artifacts that do not check out, the scheduled retrain."""

import hashlib

import pytest
import torch
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from mlloop import artifacts, registry
from mlloop.models import ModelVersion
from mlloop.policies import PROMOTION_MIN_GAIN
from scrapannot.audit import verify_chain
from scrapannot.models import AuditEvent
from scrapannot.policy import set_policy
from tests.concurrency import run_at_once
from tests.mlloop.model_factories import TINY, frozen_dataset, splits

torch.set_num_threads(2)
Status = ModelVersion.Status


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
    events = AuditEvent.objects.filter(action__startswith="model.").order_by("id")
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
