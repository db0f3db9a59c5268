"""Concurrent posts of one unloading, barrier-started, against the real PostgreSQL: the unique
constraint on railcar/line/start time decides, so there is never a second railcar."""

import threading

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling.models import Railcar
from scrapannot.models import AuditEvent
from tests.concurrency import run_at_once
from tests.labeling.unloadings import Unloading, named_layers_unloading

PAIRS = 12


def _post_each_once(token: str, unloadings: list[Unloading]) -> list[int]:
    """Post each unloading from its own thread, all released at once."""
    lock = threading.Lock()
    queue = list(unloadings)

    def post() -> int:
        with lock:
            unloading = queue.pop()
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        return unloading.post(client).status_code

    return run_at_once(post, threads=len(unloadings))


@pytest.mark.django_db(transaction=True)
def test_two_manifests_of_one_unloading_posted_at_once_never_make_two_railcars(
    on_postgresql, plant
):
    token = Token.objects.create(user=plant).key
    for pair in range(PAIRS):
        first = named_layers_unloading(railcar=f"RC-{pair}", layers=1, per_layer=3, seed=pair)
        second = named_layers_unloading(railcar=f"RC-{pair}", layers=1, per_layer=3, seed=pair)
        second.manifest["camera"] = "L2-TOP-2"  # same railcar, line and start; another manifest

        statuses = _post_each_once(token, [first, second])

        assert sorted(statuses) == [201, 409], f"pair {pair}"
        assert Railcar.objects.filter(real_id=f"RC-{pair}").count() == 1


@pytest.mark.django_db(transaction=True)
def test_one_manifest_posted_twice_at_once_answers_201_and_200(on_postgresql, plant):
    token = Token.objects.create(user=plant).key
    for pair in range(PAIRS):
        unloading = named_layers_unloading(railcar=f"RC-{pair}", layers=1, per_layer=3, seed=pair)

        statuses = _post_each_once(token, [unloading, unloading])

        assert sorted(statuses) == [200, 201], f"pair {pair}"
    assert Railcar.objects.count() == PAIRS
    assert AuditEvent.objects.filter(action="unloading.ingested").count() == PAIRS
