"""A senior inspector's decisions and reopening a labeled railcar (adjudication/decisions.py). The
decisions made through the case pages are tested in test_case_views.py."""

from decimal import Decimal

import pytest

from adjudication import aggregation
from adjudication.models import FinalLabel
from adjudication.policies import STD_THRESHOLD
from labeling.models import Railcar
from scrapannot.models import AuditEvent
from scrapannot.policy import set_policy
from tests.adjudication.factories import rated_railcar
from tests.labeling.factories import pool_railcar


@pytest.mark.django_db(transaction=True)
def test_a_reopened_railcar_keeps_its_label_until_a_decision_supersedes_it(senior, admin_user):
    from adjudication import decisions

    railcar, _ = rated_railcar(["2.0", "2.1", "2.2"], ["3A", "3A", "3A"], prefix="o")
    first = FinalLabel.objects.get(railcar=railcar)
    for bad in ["", "   ", "x" * 501]:
        with pytest.raises(ValueError):
            decisions.reopen(railcar_id=railcar.pk, actor=admin_user, reason=bad)

    case = decisions.reopen(railcar_id=railcar.pk, actor=admin_user, reason="soil under snow")
    again = decisions.reopen(railcar_id=railcar.pk, actor=admin_user, reason="twice")

    assert again == case and case.reasons == [decisions.REOPENED]
    railcar.refresh_from_db()
    assert railcar.status == Railcar.Status.IN_ADJUDICATION
    # Still the label a dataset would take, and aggregation leaves it alone (even re-applied).
    assert FinalLabel.objects.get(railcar=railcar, superseded_at=None) == first
    set_policy(key=STD_THRESHOLD, value="5", actor=admin_user)
    assert aggregation.aggregate_railcar(railcar_id=railcar.pk) is None
    aggregation.reapply(actor=admin_user)
    assert FinalLabel.objects.filter(railcar=railcar).count() == 1

    label = decisions.decide(
        case_id=case.pk, actor=senior, contamination_pct=Decimal("6.5"), grade="3A1",
        rationale_code="frame_evidence",
    )  # fmt: skip

    first.refresh_from_db()
    assert first.superseded_at is not None
    assert FinalLabel.objects.get(railcar=railcar, superseded_at=None) == label
    assert label.provenance["supersedes"] == first.pk
    railcar.refresh_from_db()
    assert railcar.status == Railcar.Status.LABELED
    event = AuditEvent.objects.get(action="adjudication.reopened")
    assert event.payload["reason"] == "soil under snow"
    with pytest.raises(decisions.NotFinal):
        unrated = pool_railcar()
        decisions.reopen(railcar_id=unrated.pk, actor=admin_user, reason="no label yet")
