"""Live estimates: the production model scores an unloading's layers as they arrive."""

import pytest
import torch

from labeling.models import Railcar
from mlloop.models import ModelVersion
from operations import live
from operations.models import LiveEstimate
from operations.signals import estimate_recorded
from operations.tasks import record_live_estimate
from scrapannot.models import AuditEvent
from scrapannot.policy import set_policy
from tests.celery_worker import wait_for
from tests.mlloop.model_factories import production_model, signal_jpeg
from tests.operations.live_unloadings import LiveUnloading, token_client

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _noise_frames_pass_the_checks(db):
    set_policy(key="quality.min_sharpness", value=0.0, actor=None)


def dirty_unloading(pct: float = 6.0, **kwargs) -> LiveUnloading:
    return LiveUnloading(frame_bytes=lambda n: signal_jpeg(pct, seed=n), **kwargs)


def post_layers(client, unloading: LiveUnloading, layers, capture) -> None:
    with capture(execute=True):
        if not unloading.uid:
            assert unloading.open(client).status_code == 201
        for index in layers:
            assert unloading.append(client, unloading.layer(index)).status_code == 201


def test_the_estimate_is_updated_as_each_layer_arrives(plant, django_capture_on_commit_callbacks):
    model = production_model()
    client = token_client(plant)
    unloading = dirty_unloading()
    recorded = []
    estimate_recorded.connect(
        lambda sender, **kw: recorded.append(kw), dispatch_uid="t", weak=False
    )
    try:
        post_layers(client, unloading, [1], django_capture_on_commit_callbacks)
        railcar = Railcar.objects.get(uid=unloading.uid)
        first = live.latest_estimate(railcar)
        post_layers(client, unloading, [2, 3], django_capture_on_commit_callbacks)
    finally:
        estimate_recorded.disconnect(dispatch_uid="t")

    newest = live.latest_estimate(railcar)
    assert first is not None and first.layers_scored == 1
    assert newest.layers_scored == 3 and newest.model_version == model
    assert 0 <= newest.contamination_pct <= 100
    assert newest.grade == max(newest.grade_probs, key=newest.grade_probs.get)
    assert sum(newest.grade_probs.values()) == pytest.approx(1.0, abs=1e-4)
    assert 0 <= newest.confidence <= 1
    assert newest.confidence == pytest.approx(max(0.0, 1 - newest.expected_error_pct / 2.0))
    assert [entry["layer"] for entry in newest.per_layer] == [1, 2, 3]
    assert sum(entry["attention"] for entry in newest.per_layer) == pytest.approx(1.0, abs=1e-4)
    assert newest.quality_flags == {}
    # Layers 2 and 3 came in one append: one estimate over both, not one per layer signal.
    assert sorted(e.layers_scored for e in LiveEstimate.objects.all()) == [1, 3]
    assert AuditEvent.objects.filter(action="live_estimate.recorded").count() == 2
    assert [r["estimate_id"] for r in recorded] == [first.pk, newest.pk]
    assert live.latest_estimates([railcar.pk, 999_999]) == {railcar.pk: newest}


def test_a_redelivered_scoring_task_writes_one_estimate_and_one_audit_event(
    plant, django_capture_on_commit_callbacks
):
    production_model()
    client = token_client(plant)
    unloading = dirty_unloading()
    with django_capture_on_commit_callbacks(execute=False):  # no task yet: we deliver it
        unloading.open(client)
        unloading.append(client, unloading.layer(1))
    railcar = Railcar.objects.get(uid=unloading.uid)

    first = record_live_estimate.apply(args=[railcar.pk]).get()
    again = record_live_estimate.apply(args=[railcar.pk]).get()

    assert first["written"] and not again["written"]
    assert first["estimate"] == again["estimate"]
    assert LiveEstimate.objects.count() == 1
    assert AuditEvent.objects.filter(action="live_estimate.recorded").count() == 1


def test_without_a_production_model_there_is_no_estimate(plant, django_capture_on_commit_callbacks):
    client = token_client(plant)
    unloading = dirty_unloading()
    post_layers(client, unloading, [1], django_capture_on_commit_callbacks)
    railcar = Railcar.objects.get(uid=unloading.uid)

    outcome = record_live_estimate.apply(args=[railcar.pk]).get()

    assert outcome == {"estimate": None, "written": False, "note": "no production model"}
    assert live.latest_estimate(railcar) is None
    assert live.latest_estimates([railcar.pk]) == {}


def test_a_railcar_posted_whole_is_estimated_when_it_enters_the_pool(
    plant, django_capture_on_commit_callbacks
):
    production_model()
    from tests.labeling.unloadings import named_layers_unloading

    whole = named_layers_unloading(layers=3)
    with django_capture_on_commit_callbacks(execute=True):
        assert whole.post(token_client(plant)).status_code == 201

    railcar = Railcar.objects.get(real_id=whole.manifest["railcar"])
    assert railcar.status == Railcar.Status.IN_POOL
    assert live.latest_estimate(railcar).layers_scored == 3


def test_annotators_never_reach_an_estimate(annotator, plant, django_capture_on_commit_callbacks):
    production_model()
    unloading = dirty_unloading()
    post_layers(token_client(plant), unloading, [1], django_capture_on_commit_callbacks)
    assert LiveEstimate.objects.count() == 1
    client = token_client(annotator)

    # The posting endpoints are the plant's; none answers an annotator with anything but 403.
    assert unloading.open(client).status_code == 403
    assert unloading.append(client, unloading.layer(2)).status_code == 403
    assert unloading.close(client).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_on_the_live_queue_estimates_each_layer_once(
    on_postgresql, celery_worker, plant
):
    set_policy(key="quality.min_sharpness", value=0.0, actor=None)
    production_model()
    assert ModelVersion.objects.filter(is_production=True).exists()
    celery_worker.start(queues="live")
    client = token_client(plant)
    unloading = dirty_unloading()
    unloading.open(client)

    unloading.append(client, unloading.layer(1))
    railcar = Railcar.objects.get(uid=unloading.uid)
    wait_for(lambda: live.latest_estimate(railcar), timeout=90, what="the first estimate")
    unloading.append(client, unloading.layer(2))
    wait_for(
        lambda: LiveEstimate.objects.filter(railcar=railcar, layers_scored=2).exists(),
        timeout=90,
        what="the estimate over two layers",
    )
    # Redelivered messages: the worker finds the estimate written.
    for _ in range(2):
        record_live_estimate.delay(railcar.pk)
    wait_for(
        lambda: celery_worker.log.read_text().count("estimated before") >= 2,
        timeout=60,
        what="the redelivered task to run",
    )

    assert LiveEstimate.objects.filter(railcar=railcar).count() == 2
    assert AuditEvent.objects.filter(action="live_estimate.recorded").count() == 2


def test_the_quality_flags_of_the_scored_layers_go_into_the_estimate(
    plant, django_capture_on_commit_callbacks
):
    production_model()
    client = token_client(plant)
    unloading = dirty_unloading()
    layer = unloading.layer(1)
    broken = layer.entries[0]["file"]
    files = {**layer.files, broken: b"not a jpeg at all"}
    with django_capture_on_commit_callbacks(execute=True):
        unloading.open(client)
        assert unloading.append(client, layer, files=files).status_code == 201

    estimate = live.latest_estimate(Railcar.objects.get(uid=unloading.uid))

    assert estimate.quality_flags == {"decode": 1}
    assert estimate.per_layer[0]["flags"] == ["decode"]


def test_the_newest_estimates_of_many_railcars_take_one_query(
    plant, django_assert_num_queries, django_capture_on_commit_callbacks
):
    production_model()
    client = token_client(plant)
    ids = []
    for n in range(3):
        unloading = dirty_unloading(railcar=f"RC-MANY-{n}")
        post_layers(client, unloading, [1, 2][: n + 1], django_capture_on_commit_callbacks)
        ids.append(Railcar.objects.get(uid=unloading.uid).pk)

    with django_assert_num_queries(1):
        newest = live.latest_estimates(ids)
        layers = {railcar_id: e.layers_scored for railcar_id, e in newest.items()}
        versions = {e.model_version.number for e in newest.values()}

    assert layers == dict(zip(ids, [1, 2, 2], strict=True))
    assert len(versions) == 1
