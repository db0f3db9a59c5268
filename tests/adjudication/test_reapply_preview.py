"""Re-applying the aggregation policies asks first, with a dry run of what would change."""

import pytest
from django.urls import reverse

from adjudication import aggregation
from adjudication.models import AdjudicationCase, Consensus
from adjudication.policies import STD_THRESHOLD
from scrapannot.models import AuditEvent
from scrapannot.policy import set_policy
from tests.conftest import client_for


def test_the_dry_run_says_what_reapplying_would_change_and_changes_nothing(admin_user, case):
    set_policy(key=STD_THRESHOLD, value="50", actor=admin_user)
    events = AuditEvent.objects.count()

    page = client_for(admin_user).get(reverse("adjudication:reapply"))

    assert page.status_code == 200
    preview = page.context["preview"]
    assert preview["railcars"] == 1 and preview["changing"] == 1
    assert page.context["final"] == 1 and page.context["adjudication"] == 0
    assert AuditEvent.objects.count() == events
    assert Consensus.objects.get(railcar=case.railcar).outcome == Consensus.Outcome.ADJUDICATION


def test_confirming_does_what_the_dry_run_said(admin_user, case):
    set_policy(key=STD_THRESHOLD, value="50", actor=admin_user)
    preview = aggregation.reapply_preview()

    client_for(admin_user).post(reverse("adjudication:reapply"))

    assert Consensus.objects.get(railcar=case.railcar).outcome == Consensus.Outcome.FINAL
    assert preview[Consensus.Outcome.FINAL] == 1
    case.refresh_from_db()
    assert case.status == AdjudicationCase.Status.WITHDRAWN


@pytest.mark.parametrize("who", ["senior", "annotator", "outsider"])
def test_only_admins_see_the_dry_run(who, request, case):
    response = client_for(request.getfixturevalue(who)).get(reverse("adjudication:reapply"))
    assert response.status_code == 403
