"""An operator's decision: accepted or amended with a rationale code, audited, never overwriting
the estimate; invalid amendments are refused field by field."""

import pytest

from labeling.front_of_pool import FRONT_PRIORITY
from operations import review
from operations.models import LiveEstimate, OperatorDecision
from scrapannot import audit
from scrapannot.models import AuditEvent
from scrapannot.policy import set_policy
from tests.operations.operate_factories import estimate, operator_of, railcar_on

pytestmark = pytest.mark.django_db


@pytest.fixture
def quiet_policies():
    """No escalation rule fires, so a test sees the decision alone."""
    for key, value in {
        "operate.escalate.contamination_route": "off",
        "operate.escalate.confidence_route": "off",
        "operate.escalate.amendment_route": "off",
        "operate.escalate.grade_disagreement_route": "off",
        "operate.escalate.quality_flags_route": "off",
    }.items():
        set_policy(key=key, value=value, actor=None)


def test_accepting_an_estimate_records_one_decision_and_one_event(quiet_policies):
    railcar = railcar_on("L1")
    e = estimate(railcar)
    operator = operator_of("L1")

    outcome = review.decide(operator=operator, railcar=railcar, estimate=e, action="accept")

    assert outcome.decision.action == OperatorDecision.Action.ACCEPT
    assert outcome.decision.contamination_pct is None and outcome.decision.grade == ""
    events = AuditEvent.objects.filter(action="operator.accept")
    assert events.count() == 1
    assert events.get().payload["estimate"] == e.pk


def test_an_amendment_never_overwrites_the_estimate(quiet_policies):
    railcar = railcar_on("L1")
    e = estimate(railcar, contamination_pct=2.0, grade="3A")
    operator = operator_of("L1")

    review.decide(
        operator=operator, railcar=railcar, estimate=e, action="amend",
        contamination_pct=3.5, grade="3A1", rationale_code="visible_inclusions", note="seen",
    )  # fmt: skip

    kept = LiveEstimate.objects.get(pk=e.pk)
    assert (kept.contamination_pct, kept.grade) == (2.0, "3A")
    decision = OperatorDecision.objects.get()
    assert (decision.contamination_pct, decision.grade) == (3.5, "3A1")
    payload = AuditEvent.objects.get(action="operator.amend").payload
    assert payload["estimate_contamination_pct"] == 2.0
    assert payload["rationale_code"] == "visible_inclusions"


def test_an_amended_railcar_goes_to_the_front_of_the_pool(quiet_policies):
    railcar = railcar_on("L1", priority=3.0)
    e = estimate(railcar)

    review.decide(
        operator=operator_of("L1"), railcar=railcar, estimate=e, action="amend",
        grade="3AH", rationale_code="sample_analysis",
    )  # fmt: skip

    railcar.refresh_from_db()
    assert railcar.priority == FRONT_PRIORITY
    assert AuditEvent.objects.filter(action="pool.put_at_front").count() == 1


@pytest.mark.parametrize(
    "amendment, field",
    [
        ({"contamination_pct": 100.1, "rationale_code": "sample_analysis"}, "contamination_pct"),
        ({"contamination_pct": -0.1, "rationale_code": "sample_analysis"}, "contamination_pct"),
        ({"grade": "scrap", "rationale_code": "sample_analysis"}, "grade"),
        ({"grade": "3A1", "rationale_code": "because"}, "rationale_code"),
        ({"grade": "3A1", "rationale_code": ""}, "rationale_code"),
        ({"grade": "3A1", "rationale_code": "other"}, "note"),
        ({"rationale_code": "sample_analysis"}, "contamination_pct"),
    ],
)
def test_an_invalid_amendment_is_refused_on_its_field(amendment, field):
    railcar = railcar_on("L1")
    e = estimate(railcar)

    with pytest.raises(review.InvalidDecision) as refused:
        review.decide(
            operator=operator_of("L1"), railcar=railcar, estimate=e, action="amend", **amendment
        )

    assert field in refused.value.errors
    assert not OperatorDecision.objects.exists()


def test_rationale_codes_are_a_policy_admins_edit():
    set_policy(key="operate.rationale_codes", value="lab_sample, other", actor=None)
    railcar = railcar_on("L1")
    e = estimate(railcar)

    with pytest.raises(review.InvalidDecision):
        review.decide(
            operator=operator_of("L1"), railcar=railcar, estimate=e, action="amend",
            grade="3A1", rationale_code="sample_analysis",
        )  # fmt: skip
    review.decide(
        operator=operator_of("L1"), railcar=railcar, estimate=e, action="amend",
        grade="3A1", rationale_code="lab_sample",
    )  # fmt: skip


@pytest.mark.parametrize("value", ["", "Bad Code", "a,a", "x" * 40])
def test_a_malformed_rationale_code_list_is_refused(value):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        set_policy(key="operate.rationale_codes", value=value, actor=None)


def test_an_estimate_of_another_railcar_is_refused():
    railcar, other = railcar_on("L1"), railcar_on("L1")
    e = estimate(other)

    with pytest.raises(review.StaleEstimate):
        review.decide(operator=operator_of("L1"), railcar=railcar, estimate=e, action="accept")


def test_a_decision_and_its_escalation_are_on_the_railcars_timeline(admin_user):
    from operations import timeline

    set_policy(key="operate.escalate.confidence_route", value="pool", actor=None)
    railcar = railcar_on("L1")
    e = estimate(railcar, contamination_pct=2.0, confidence=0.1)
    review.decide(
        operator=operator_of("L1"), railcar=railcar, estimate=e, action="amend",
        contamination_pct=2.5, rationale_code="sample_analysis",
    )  # fmt: skip
    audit.seal_pending()  # what the sequencer does within seconds

    phase = dict(timeline.by_phase(timeline.railcar_events(railcar)))[timeline.OPERATION]

    summaries = [entry.summary for entry in phase]
    assert summaries[0] == "Operator amended the estimate (2.0 %, 3A) to 2.5 %  (sample_analysis)"
    assert summaries[1] == "Escalated to pool: confidence_below"
    assert all(entry.verified for entry in phase)
