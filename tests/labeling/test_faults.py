"""Faults with a real worker, Redis and PostgreSQL: a Redis of its own restarted with tasks
queued and with requests in flight, a worker SIGKILLed mid-check. Nothing is stuck after the
reconciler's period, nothing runs twice, no committed ingest answers 500."""

import json
import time

import pytest
from django.conf import settings
from rest_framework.authtoken.models import Token

from labeling.models import FrameCheck, Railcar
from labeling.quality import CHECKS
from scrapannot.models import AuditEvent
from tests.benchmarks.common import BENCH_SECRET_KEY
from tests.celery_worker import wait_for
from tests.faults import Gunicorn, OwnRedis, http_call, post_unloading, send_task
from tests.labeling.test_pipeline_worker import post_synthetic
from tests.labeling.unloadings import named_layers_unloading

Status = Railcar.Status
CONCLUDED = (Status.IN_POOL, Status.NEEDS_ATTENTION)
RECONCILE_AFTER_S = 3


@pytest.fixture
def own_redis():
    server = OwnRedis()
    server.start()
    yield server
    server.kill()


def on_own_redis(celery_worker, own_redis) -> dict[str, str]:
    """The worker's environment, pointed at the Redis of the test and production-like, which a
    gunicorn of the test then shares."""
    celery_worker.env = {
        **celery_worker.env,
        "CELERY_BROKER_URL": own_redis.url,
        "SCRAPANNOT_RECONCILE_AFTER": str(RECONCILE_AFTER_S),
        "DEBUG": "0", "SECRET_KEY": BENCH_SECRET_KEY, "ALLOWED_HOSTS": "127.0.0.1",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }  # fmt: skip
    return celery_worker.env


def concluded(count: int) -> bool:
    return Railcar.objects.filter(status__in=CONCLUDED).count() == count


@pytest.mark.django_db(transaction=True)
def test_a_redis_restart_loses_no_railcar(on_postgresql, celery_worker, own_redis, plant, tmp_path):
    env = on_own_redis(celery_worker, own_redis)
    web = Gunicorn(env, tmp_path / "gunicorn.log")
    web.start()
    token = Token.objects.create(user=plant).key
    unloadings = [named_layers_unloading(railcar=f"RC-{n}", seed=n) for n in range(6)]
    try:
        # Queued while no worker runs, then lost with Redis.
        for unloading in unloadings[:4]:
            assert post_unloading(web.port, token, unloading.manifest, unloading.files)[0] == 201
        assert own_redis.queued("quality") == 4
        own_redis.kill()
        # Posted while Redis is down: committed, so 201, never a 500.
        for unloading in unloadings[4:]:
            assert post_unloading(web.port, token, unloading.manifest, unloading.files)[0] == 201
        # The web stays in rotation and says why (each process caches its broker answer 5 s).
        wait_for(
            lambda: (
                http_call(web.port, "GET", "/healthz")[0] == 200
                and json.loads(http_call(web.port, "GET", "/healthz")[1])["broker"].startswith(
                    "down"
                )
            ),
            timeout=15,
            what="/healthz: 200 with the broker down",
        )
        own_redis.start()
        assert own_redis.queued("quality") == 0
        assert Railcar.objects.filter(status=Status.INGESTED).count() == 6

        celery_worker.start(queues="celery,quality")
        time.sleep(RECONCILE_AFTER_S)
        send_task(own_redis.url, "labeling.reconcile_railcars")  # what beat does every minute

        wait_for(lambda: concluded(6), timeout=90, what="every railcar to be checked")
    finally:
        web.stop()
    assert AuditEvent.objects.filter(action="quality.checked").count() == 6
    assert Railcar.objects.count() == 6


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_check_is_concluded_within_the_reconcilers_bound_exactly_once(
    on_postgresql, celery_worker, plant, tmp_path
):
    celery_worker.env = {
        **celery_worker.env,
        "SCRAPANNOT_RECONCILE_AFTER": str(RECONCILE_AFTER_S),
        # Production's: the killed worker's message stays invisible for an hour; the railcar
        # must not wait for it.
        "CELERY_VISIBILITY_TIMEOUT": "3600",
        "SLOW_WORKER_PAUSE_S": "0.3",
    }
    celery_worker.start(queues="celery,quality", app="tests.slow_worker")
    railcar = post_synthetic(tmp_path, plant, seed=23, frames_per_layer=4)
    frames = railcar.frames.count()
    wait_for(
        lambda: (
            FrameCheck.objects.filter(frame__railcar=railcar).values("frame").distinct().count()
            >= 2
        ),
        what="the first frames to be checked",
    )
    celery_worker.kill()
    killed_at = time.monotonic()
    assert Railcar.objects.get(pk=railcar.pk).status == Status.CHECKING

    celery_worker.start(queues="celery,quality")
    broker = celery_worker.env["CELERY_BROKER_URL"]
    # Beat's minute, shortened: the reconciler runs every second until the railcar is done.
    deadline = time.monotonic() + 60
    while not concluded(1) and time.monotonic() < deadline:
        send_task(broker, "labeling.reconcile_railcars")
        time.sleep(1)
    recovery_s = time.monotonic() - killed_at

    assert concluded(1), "the killed worker's railcar was not concluded"
    print(f"recovered {recovery_s:.1f} s after the kill (reconciler bound {RECONCILE_AFTER_S} s)")
    assert recovery_s < RECONCILE_AFTER_S + 30
    assert FrameCheck.objects.filter(frame__railcar=railcar).count() == frames * len(CHECKS)
    assert AuditEvent.objects.filter(action="quality.checked").count() == 1


@pytest.mark.django_db(transaction=True)
def test_closing_ratings_sent_while_redis_is_down_are_kept_and_aggregated_after(
    on_postgresql, celery_worker, own_redis, tmp_path
):
    """The rating that completes a railcar enqueues its aggregation after commit: with the broker
    down that enqueue fails, the rating still answers 201 (it committed), and the reconciler
    aggregates the railcar once the broker is back."""
    from labeling.annotation_models import Rating
    from tests.labeling.factories import annotators, pool_railcar

    env = on_own_redis(celery_worker, own_redis)
    railcars = [pool_railcar(raters=3) for _ in range(2)]
    tokens = [Token.objects.create(user=user).key for user in annotators(3)]
    web = Gunicorn(env, tmp_path / "gunicorn.log")
    web.start()

    def call(token: str, path: str, body: dict) -> tuple[int, dict]:
        status, raw = http_call(
            web.port, "POST", path, json.dumps(body).encode(),
            {"Authorization": f"Token {token}", "Content-Type": "application/json"},
        )  # fmt: skip
        return status, json.loads(raw or b"{}")

    try:
        own_redis.kill()
        answers = []
        for _ in railcars:
            for token in tokens:
                status, lease = call(token, "/api/v1/assignments/next/", {})
                assert status in (200, 201), lease
                rating = {"contamination_pct": "4.0", "grade": "3A", "seconds_spent": 30}
                answers.append(call(token, f"/api/v1/assignments/{lease['id']}/rating/", rating))
        assert [status for status, _ in answers] == [201] * 6, answers
        assert Rating.objects.count() == 6
        assert Railcar.objects.filter(status=Status.RATED).count() == 2  # owed an aggregation

        own_redis.start()
        celery_worker.start(queues="celery")
        time.sleep(RECONCILE_AFTER_S)
        send_task(own_redis.url, "labeling.reconcile_railcars")  # what beat does every minute

        wait_for(
            lambda: not Railcar.objects.filter(status=Status.RATED).exists(),
            timeout=90,
            what="both railcars to be aggregated",
        )
    finally:
        web.stop()
    assert AuditEvent.objects.filter(action="aggregation.computed").count() == 2
    assert Rating.objects.count() == 6
