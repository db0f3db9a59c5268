"""The audit page: paged, filtered by action, actor, railcar and time, payloads as JSON."""

import pytest
from django.urls import reverse
from django.utils import timezone

from scrapannot import audit
from tests.conftest import client_for


def seqs(response) -> list[int]:
    return [e.seq for e, _ in response.context["rows"]]


def test_it_pages_the_whole_trail_newest_first(admin_user):
    for n in range(120):
        audit.record(action="test.counted", payload={"n": n})
    audit.seal_pending()
    client = client_for(admin_user)

    first = client.get(reverse("audit-trail"))
    last = client.get(reverse("audit-trail"), {"page": 3})

    assert first.context["page"].paginator.count == 120
    assert seqs(first)[0] == 120 and len(seqs(first)) == 50
    assert seqs(last) == list(range(20, 0, -1))
    assert 'rel="next"' in first.content.decode()
    assert first.context["report"].ok


def test_it_filters_by_action_actor_railcar_and_time(admin_user, senior):
    audit.record(action="policy.changed", actor=admin_user, payload={"key": "x"})
    boundary = timezone.now().isoformat()
    audit.record(action="adjudication.decided", actor=senior, payload={"railcar": 7})
    audit.record(action="unloading.ingested", actor_label="plant-l2", payload={"frames": 4})
    client = client_for(admin_user)

    def found(**query: object) -> list[str]:
        rows = client.get(reverse("audit-trail"), query).context["rows"]
        return [e.action for e, _ in rows]

    assert found(action="policy.changed") == ["policy.changed"]
    assert found(actor="SENIOR") == ["adjudication.decided"]
    assert found(railcar=7) == ["adjudication.decided"]
    assert found(since=boundary) == ["unloading.ingested", "adjudication.decided"]
    assert found(until=boundary) == ["policy.changed"]


def test_a_backwards_time_range_is_a_field_error(admin_user):
    response = client_for(admin_user).get(
        reverse("audit-trail"), {"since": "2026-12-02T00:00", "until": "2026-12-01T00:00"}
    )
    assert response.status_code == 200
    assert "The end of the range is before its start." in response.content.decode()
    assert response.context["rows"] == []


def test_payloads_are_shown_as_formatted_json(admin_user):
    audit.record(action="policy.changed", payload={"key": "quality.max_haze", "new": 0.4})

    body = client_for(admin_user).get(reverse("audit-trail")).content.decode()

    assert "{\n  &quot;key&quot;: &quot;quality.max_haze&quot;,\n  &quot;new&quot;: 0.4\n}" in body


@pytest.mark.parametrize("who", ["senior", "annotator", "outsider"])
def test_only_admins_read_the_trail(who, request):
    response = client_for(request.getfixturevalue(who)).get(reverse("audit-trail"))
    assert response.status_code == 403
