"""The operator application end to end, in Debian's chromium: a plant system posts an unloading
layer by layer through the API and the production model's estimate updates on /operate/; the
operator amends it with a rationale code; a contamination threshold escalates a second
unloading; the report page and the day's CSV show both; a webhook receiver that fails first gets
every report signed, the failed one retried.

Nothing here is a stand-in: the tiny production model is trained by the product's own run, the
layers go through the real ingest API and quality checks, and the estimates, escalation and
webhook deliveries are the tasks the signals start (run in-process, as eager tasks)."""

import csv
import hashlib
import hmac
import io
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from labeling.models import Railcar
from operations import operate_views
from operations import policies as rules
from operations.models import Escalation, OperatorDecision, WebhookDelivery, WebhookEndpoint
from scrapannot.policy import set_policy
from scrapannot.roles import Role
from tests.conftest import grant_lines, user_with_roles
from tests.mlloop.model_factories import production_model, signal_jpeg
from tests.operations.live_unloadings import LiveUnloading, token_client
from tests.operations.operate_factories import operator_of
from tests.operations.webhook_receiver import receiver

pytest_plugins = ["tests.browser_fixtures"]
pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("fast_password_hashing")]

SECRET = "end-to-end-secret"


@pytest.fixture(autouse=True)
def _no_script_errors(page: Page) -> Iterator[None]:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield
    assert errors == []


@pytest.fixture(autouse=True)
def _fast(monkeypatch, settings) -> None:
    monkeypatch.setattr(operate_views, "POLL_MS", 200)
    settings.OPERATIONS_REPORTS = {
        **settings.OPERATIONS_REPORTS, "WEBHOOK_BACKOFF_S": 0.2, "WEBHOOK_MAX_ATTEMPTS": 4,
        "WEBHOOK_ALLOW_PRIVATE": True,
    }  # fmt: skip


@pytest.fixture
def plant(transactional_db) -> User:
    user = user_with_roles("plant-e2e", Role.PLANT_SYSTEM)
    grant_lines(user, "L4", "L5")
    return user


def policies(**values: object) -> None:
    for key, value in values.items():
        set_policy(key=key, value=value, actor=None)


def unloading(railcar: str, line: str) -> LiveUnloading:
    return LiveUnloading(
        railcar=railcar, line=line, per_layer=2, frame_bytes=lambda n: signal_jpeg(6.0, seed=n)
    )


def signed(headers: dict[str, str], body: bytes) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["X-Scrapannot-Signature"], expected)


def test_layers_posted_while_unloading_are_estimated_amended_escalated_reported_and_sent(
    page: Page, log_in, plant
):
    # Noise frames pass the checks; only the contamination rule escalates, and only once it is
    # lowered below (a tiny model is unconfident and its amendments are large).
    policies(**{
        "quality.min_sharpness": 0.0, rules.CONFIDENCE_ROUTE: rules.OFF,
        rules.QUALITY_FLAGS_ROUTE: rules.OFF, rules.AMENDMENT_ROUTE: rules.OFF,
        rules.GRADE_DISAGREEMENT_ROUTE: rules.OFF, rules.CONTAMINATION_ABOVE: 100.0,
    })  # fmt: skip
    production_model()
    operator_of("L4", "L5", username="op-ida")
    client = token_client(plant)
    first, second = unloading("RC-71000001", "L4"), unloading("RC-71000002", "L5")

    with receiver(500, 200) as hook:
        WebhookEndpoint.objects.create(name="MES", url=hook.url, secret=SECRET)
        log_in(username="op-ida", password="op-ida-pass-1")
        page.goto("/operate/")

        assert first.open(client).status_code == 201
        assert first.append(client, first.layer(1)).status_code == 201
        railcar = Railcar.objects.get(uid=first.uid)
        row = page.locator(f'tr[data-railcar="{railcar.pk}"]')
        expect(row.locator(".layers")).to_have_text("1")
        assert first.append(client, first.layer(2)).status_code == 201
        expect(row.locator(".layers")).to_have_text("2")
        assert first.close(client).status_code == 200

        row.get_by_role("link", name="RC-71000001").click()
        page.get_by_label("Action").select_option("amend")
        page.get_by_label("Contamination (%)").fill("9.5")
        page.get_by_label("Rationale").select_option("visible_inclusions")
        page.get_by_label("Note").fill("rubber on layer 2")
        page.get_by_role("button", name="Record decision").click()
        expect(page.locator(".messages")).to_contain_text("You amended the estimate.")

        policies(**{rules.CONTAMINATION_ABOVE: 0.0, rules.CONTAMINATION_ROUTE: rules.POOL})
        assert second.open(client).status_code == 201
        assert second.append(client, second.layer(1)).status_code == 201
        escalated = Railcar.objects.get(uid=second.uid)
        (escalation,) = Escalation.objects.filter(railcar=escalated)
        assert escalation.route == "pool" and not Escalation.objects.filter(railcar=railcar)

        page.goto(f"/operate/unloadings/{escalated.pk}/report/")
        expect(page.locator("#report-escalation")).to_contain_text("contamination_above")
        page.goto(f"/operate/unloadings/{railcar.pk}/report/")
        expect(page.locator("#report-decision")).to_contain_text("9.5 %")
        with page.expect_download() as download:
            page.get_by_role("link", name="CSV of the day").click()
        rows = {
            r["real_id"]: r
            for r in csv.DictReader(io.StringIO(download.value.path().read_text("utf-8")))
        }
        assert rows["RC-71000001"]["decision_contamination_pct"] == "9.5"
        assert rows["RC-71000002"]["escalation_route"] == "pool"

    decision = OperatorDecision.objects.get()
    assert (decision.railcar_id, decision.rationale_code) == (railcar.pk, "visible_inclusions")
    assert hook.received and all(signed(r.headers, r.body) for r in hook.received)
    deliveries = WebhookDelivery.objects.all()
    assert {d.event for d in deliveries} >= {"estimate", "decision", "escalation"}
    assert all(d.status == WebhookDelivery.Status.SUCCEEDED for d in deliveries)
    assert len(hook.received) == deliveries.count() + 1  # the first POST failed and was retried
    assert sorted(d.attempts for d in deliveries)[-1] == 2
