"""Double-blind on the reports helper's routes: an annotator, even one granted the line and
holding an assignment on the railcar, never gets a report, a CSV row, an explanation or the
delivery log, and a victim's id answers exactly like an id that exists nowhere.

(The URL walk of tests/labeling/test_double_blind_walks.py probes these routes too, in a world
without estimates; here the railcar has an estimate, a decision, an escalation, a cached
explanation and a webhook delivery.)"""

import datetime as dt

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling import pool
from operations.models import Explanation, WebhookDelivery, WebhookEndpoint
from scrapannot.roles import Role
from tests.labeling.probe import raw, reply
from tests.operations.report_factories import amend, escalate, estimate, operator_of, unloading

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]

NOWHERE = 987654321
SECRET_PCT = 73.91
NOTE = "operator note 5b1e"


@pytest.fixture
def victim():
    started = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
    railcar = unloading(line="L1", started=started, real_id="RC-VICTIM-77")
    found = estimate(railcar, pct=SECRET_PCT)
    amend(railcar, operator_of("olga", "L1"), note=NOTE)
    escalate(railcar)
    name = default_storage.save("explanations/ab/ab.png", ContentFile(b"\x89PNG fake"))
    Explanation.objects.create(railcar=railcar, model_version=found.model_version, layer_index=1,
                               file=name, sha256="ab", width=96, height=54)  # fmt: skip
    endpoint = WebhookEndpoint.objects.create(name="MES", url="http://10.0.0.9/", secret="s")
    WebhookDelivery.objects.create(endpoint=endpoint, railcar=railcar, event="estimate",
                                   body=f'{{"contamination_pct": {SECRET_PCT}}}')  # fmt: skip
    return railcar


@pytest.fixture
def attacker(victim):
    user = operator_of("mallory", "L1", role=Role.ANNOTATOR)  # granted the line, all the same
    assignment = pool.next_assignment(annotator=user)
    assert assignment is not None and assignment.railcar_id == victim.pk
    return user


def paths(railcar_id: int) -> list[str]:
    return [
        f"/operate/unloadings/{railcar_id}/report/",
        f"/operate/unloadings/{railcar_id}/report/?print=1",
        f"/api/v1/unloadings/{railcar_id}/report/",
        f"/operate/unloadings/{railcar_id}/layers/1/gradcam.png",
        "/operate/reports.csv?day=2026-12-01",
        "/operate/webhooks/",
    ]


def forbidden_in(body: bytes, victim) -> list[str]:
    text = body.decode("latin-1")
    needles = [str(SECRET_PCT), NOTE, victim.real_id, "olga", "RC-VICTIM"]
    return [n for n in needles if n in text]


@pytest.mark.parametrize("auth", ["session", "token"])
def test_an_annotator_gets_nothing_of_the_reports_and_cannot_tell_a_victim_from_nowhere(
    victim, attacker, auth
):
    client = APIClient()
    if auth == "session":
        client.force_login(attacker)
    else:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=attacker).key}")

    for victim_path, nowhere_path in zip(paths(victim.pk), paths(NOWHERE), strict=True):
        for method in ("get", "post", "head"):
            answer = getattr(client, method)(victim_path)
            assert answer.status_code in (302, 401, 403, 404, 405), (method, victim_path)
            assert not forbidden_in(raw(answer), victim), (method, victim_path)
            other = getattr(client, method)(nowhere_path)
            assert answer.status_code == other.status_code, (method, victim_path)
            # The requested path masked whole (a login redirect's `next=` repeats it), and the
            # per-response CSRF token of a page with the navigation (the 403 page) starred.
            mine = reply(answer)[3].replace(victim_path, "{}")
            assert mine == reply(other)[3].replace(nowhere_path, "{}"), (method, victim_path)
