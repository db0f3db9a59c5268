"""The learning loop on a real Celery worker through the real Redis: train a timm test model on
a frozen dataset version, register and promote it, score the pool, and see the order change."""

import json

import pytest
from django.contrib.auth.models import User
from django.db.models import Q

from labeling import pool
from labeling.models import Railcar
from labeling.policies import RANDOM_PICK_SHARE
from mlloop import registry
from mlloop.datasets import TEST_SHARE, VAL_SHARE, freeze_version
from mlloop.models import ModelVersion, RailcarScore
from mlloop.tasks import score_railcars
from scrapannot.audit import verify_chain
from scrapannot.models import AuditEvent
from scrapannot.policy import set_policy
from tests.celery_worker import wait_for
from tests.labeling.factories import annotators
from tests.mlloop.dataset_factories import label
from tests.mlloop.model_factories import grade_for, scrap_railcar, spread

pytestmark = pytest.mark.django_db(transaction=True)
Status = ModelVersion.Status


@pytest.mark.parametrize(
    "tuning",
    [{}, {"finetune_stages": 1, "finetune_epochs": 2, "finetune_lr": 3e-3}],
    ids=["heads-only", "fine-tuned"],
)
def test_a_worker_trains_a_test_model_which_then_reorders_the_pool(
    on_postgresql, celery_worker, tuning
):
    boss = User.objects.create_user(username="boss", password="x-pass-1", is_superuser=True)
    set_policy(key=VAL_SHARE, value=0.3, actor=boss)
    set_policy(key=TEST_SHARE, value=0.3, actor=boss)
    set_policy(key=RANDOM_PICK_SHARE, value=0.0, actor=boss)
    for pct in spread(30, seed=7):
        railcar = scrap_railcar(pct, status=Railcar.Status.LABELED)
        label(railcar, f"{pct:.1f}", grade_for(pct))
    dataset = freeze_version(actor=boss, name="worker test")
    unlabeled = [scrap_railcar(p, raters=1) for p in (0.5, 9.5, 4.0, 2.0, 7.0, 6.0)]
    celery_worker.start(queues="training")

    run = registry.create_run(
        dataset_version=dataset,
        actor=boss,
        overrides={"backbone": "test_efficientnet", "image_size": 64, "epochs": 15,
                   "batch_size": 4, "bag_size": 2, "ensemble": 3, **tuning},
    )  # fmt: skip
    # Done when failed, or succeeded and past the promotion rule (a transaction of its own).
    run = wait_for(
        lambda: (
            ModelVersion.objects.filter(pk=run.pk)
            .filter(Q(status=Status.FAILED) | Q(metrics__has_key="promotion"))
            .first()
        ),
        timeout=240,
        what="the worker to train the model",
    )

    assert run.status == Status.SUCCEEDED, run.log
    assert run.task_id and run.progress == 1.0 and "epoch 15/15" in run.log
    if tuning:
        assert "fine-tuning epoch 2/2" in run.log
    assert run.is_production  # the first model to succeed: the promotion rule takes it
    print("\nworker-trained test_efficientnet@64:", json.dumps(
        {s: {k: run.metrics[s][k] for k in ("n", "mae", "r2", "accuracy", "f1_macro")}
         for s in ("train", "val", "test")}))  # fmt: skip
    assert run.metrics["train"]["n"] + run.metrics["val"]["n"] + run.metrics["test"]["n"] == 30

    score_railcars.delay()
    wait_for(
        lambda: RailcarScore.objects.filter(model_version=run).count() == len(unlabeled),
        timeout=120,
        what="the worker to score the pool",
    )

    uncertainty_of = dict(RailcarScore.objects.values_list("railcar_id", "uncertainty"))
    priority = dict(
        Railcar.objects.filter(pk__in=[r.pk for r in unlabeled]).values_list("pk", "priority")
    )
    # The pool order: uncertainty discounted for near-duplicates (mlloop.selection).
    expected = sorted(priority, key=priority.get, reverse=True)
    assert expected[0] == max(uncertainty_of, key=uncertainty_of.get)
    assert expected != [r.pk for r in unlabeled]  # not the age order the pool had before
    handed_out = [
        pool.next_assignment(annotator=user).railcar_id for user in annotators(len(unlabeled))
    ]
    assert handed_out == expected
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"model.queued", "model.trained", "model.promoted", "model.scored"} <= actions
    assert verify_chain().ok
