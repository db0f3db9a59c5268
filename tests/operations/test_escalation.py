"""Escalation rules, each at its boundary (equal to the threshold does not escalate, just past it
does), their routes, and once per railcar and route."""

import pytest

from adjudication.models import AdjudicationCase, FinalLabel
from labeling.front_of_pool import FRONT_PRIORITY
from labeling.models import Railcar
from operations import review
from operations.escalation import escalate_if_needed
from operations.models import Escalation
from operations.policies import escalation_policy
from scrapannot.models import AuditEvent
from scrapannot.policy import set_policy
from tests.mlloop.dataset_factories import label
from tests.operations.operate_factories import estimate, operator_of, railcar_on

pytestmark = pytest.mark.django_db


def policies(**values: object) -> None:
    for key, value in values.items():
        set_policy(key=f"operate.escalate.{key}", value=value, actor=None)


def routes_for(**estimate_fields: object) -> list[str]:
    railcar = railcar_on("L1")
    made = escalate_if_needed(railcar=railcar, estimate=estimate(railcar, **estimate_fields))
    return [e.route for e in made]


def test_contamination_equal_to_the_threshold_does_not_escalate_just_above_does():
    policies(contamination_above_pct=5.0, contamination_route="senior")

    assert routes_for(contamination_pct=5.0) == []
    assert routes_for(contamination_pct=5.01) == ["senior"]


def test_confidence_equal_to_the_threshold_does_not_escalate_just_below_does():
    policies(confidence_below=0.5, confidence_route="pool")

    assert routes_for(confidence=0.5) == []
    assert routes_for(confidence=0.499) == ["pool"]


def test_only_the_listed_quality_flags_escalate():
    policies(quality_flags="haze", quality_flags_route="pool")

    assert routes_for(quality_flags={"blur": 3}) == []
    assert routes_for(quality_flags={"haze": 0}) == []
    assert routes_for(quality_flags={"haze": 1, "blur": 1}) == ["pool"]


def test_an_empty_flag_list_escalates_no_flag():
    policies(quality_flags="", quality_flags_route="pool")

    assert routes_for(quality_flags={"haze": 4}) == []


def decide_amendment(contamination_pct=None, grade="", *, estimated=3.0, model_grade="3A"):
    railcar = railcar_on("L1")
    e = estimate(railcar, contamination_pct=estimated, grade=model_grade)
    outcome = review.decide(
        operator=operator_of("L1"), railcar=railcar, estimate=e, action="amend",
        contamination_pct=contamination_pct, grade=grade, rationale_code="sample_analysis",
    )  # fmt: skip
    return [x.route for x in outcome.escalations]


def test_an_amendment_by_exactly_the_threshold_does_not_escalate_just_more_does():
    policies(amendment_above_pct=1.0, amendment_route="pool", grade_disagreement_route="off")

    assert decide_amendment(4.0) == []
    assert decide_amendment(2.0) == []
    # 4.1 - 3.1 is 0.9999999999999996 in floating point: still exactly the threshold.
    assert decide_amendment(4.1, estimated=3.1) == []
    assert decide_amendment(4.01) == ["pool"]
    assert decide_amendment(1.99) == ["pool"]


def test_a_grade_the_operator_changes_escalates_the_same_grade_does_not():
    policies(grade_disagreement_route="senior", amendment_route="off")

    assert decide_amendment(grade="3A") == []
    assert decide_amendment(grade="3A1") == ["senior"]


def test_accepting_never_escalates_on_the_amendment_rules():
    policies(amendment_above_pct=0.0, amendment_route="pool", grade_disagreement_route="senior")
    railcar = railcar_on("L1")
    e = estimate(railcar)

    outcome = review.decide(
        operator=operator_of("L1"), railcar=railcar, estimate=e, action="accept"
    )

    assert outcome.escalations == []


def test_the_pool_route_puts_a_waiting_railcar_at_the_front_of_the_pool():
    policies(confidence_below=0.5, confidence_route="pool")
    railcar = railcar_on("L1", priority=7.5)

    escalate_if_needed(railcar=railcar, estimate=estimate(railcar, confidence=0.1))

    railcar.refresh_from_db()
    assert railcar.status == Railcar.Status.IN_POOL and railcar.priority == FRONT_PRIORITY
    escalation = Escalation.objects.get(railcar=railcar)
    assert escalation.route == "pool"
    assert escalation.reasons == [{"rule": "confidence_below", "value": 0.1, "threshold": 0.5}]
    assert AuditEvent.objects.filter(action="operator.escalated").count() == 1


def test_the_senior_route_opens_an_adjudication_case_ahead_of_the_queue():
    policies(contamination_above_pct=5.0, contamination_route="senior")
    railcar = railcar_on("L1")

    escalate_if_needed(railcar=railcar, estimate=estimate(railcar, contamination_pct=9.0))

    railcar.refresh_from_db()
    assert railcar.status == Railcar.Status.IN_ADJUDICATION
    case = AdjudicationCase.objects.get(railcar=railcar, status="open")
    assert case.reasons == ["operator escalation: estimate 9.0 % above 5.0 %"]


def test_a_labeled_railcar_cannot_be_rated_blind_again_so_a_senior_reviews_it():
    policies(confidence_below=0.5, confidence_route="pool")
    railcar = railcar_on("L1")
    label(railcar)
    Railcar.objects.filter(pk=railcar.pk).update(status=Railcar.Status.LABELED)

    made = escalate_if_needed(railcar=railcar, estimate=estimate(railcar, confidence=0.1))

    assert [e.route for e in made] == ["senior"]
    assert made[0].reasons[0]["requested_route"] == "pool"
    # The label stays current until the senior inspector decides.
    assert FinalLabel.objects.current().filter(railcar=railcar).exists()
    assert AdjudicationCase.objects.filter(railcar=railcar, status="open").exists()


def test_re_evaluating_a_railcar_escalates_each_route_once():
    policies(
        contamination_above_pct=5.0, contamination_route="senior",
        confidence_below=0.5, confidence_route="pool",
    )  # fmt: skip
    railcar = railcar_on("L1")

    first = escalate_if_needed(railcar=railcar, estimate=estimate(railcar, contamination_pct=9.0))
    again = escalate_if_needed(
        railcar=railcar, estimate=estimate(railcar, contamination_pct=9.5, layers_scored=2)
    )
    low = escalate_if_needed(
        railcar=railcar, estimate=estimate(railcar, confidence=0.2, layers_scored=3)
    )

    assert [e.route for e in first] == ["senior"] and again == []
    # In adjudication already, so its blind ratings cannot start over: the senior has it.
    assert low == []
    assert Escalation.objects.filter(railcar=railcar).count() == 1
    assert AuditEvent.objects.filter(action="operator.escalated").count() == 1


def test_a_rule_switched_off_never_fires():
    policies(contamination_above_pct=0.0, contamination_route="off")

    assert routes_for(contamination_pct=99.0) == []


def test_the_policy_reads_every_rule_in_one_query(django_assert_num_queries):
    with django_assert_num_queries(1):
        policy = escalation_policy()
    assert policy.contamination_above.route == "senior"
    assert policy.quality_flags.threshold == ("haze", "extraneous")


def test_an_estimate_recorded_elsewhere_is_evaluated_by_its_id_once():
    from operations.escalation import on_estimate_recorded

    policies(contamination_above_pct=5.0, contamination_route="senior")
    railcar = railcar_on("L1")
    e = estimate(railcar, contamination_pct=6.0)

    on_estimate_recorded(sender=None, estimate_id=e.pk)
    on_estimate_recorded(sender=None, estimate=e)

    assert Escalation.objects.filter(railcar=railcar).count() == 1


@pytest.mark.django_db(transaction=True)
def test_decisions_and_estimates_evaluated_at_once_escalate_each_route_once(on_postgresql):
    from scrapannot.audit import verify_chain
    from tests.concurrency import run_at_once

    policies(
        contamination_above_pct=5.0, contamination_route="senior",
        confidence_below=0.5, confidence_route="pool", amendment_route="off",
        grade_disagreement_route="off",
    )  # fmt: skip
    railcar = railcar_on("L1")
    e = estimate(railcar, contamination_pct=9.0, confidence=0.2)
    operator = operator_of("L1")

    def evaluate():
        return len(
            review.decide(
                operator=operator, railcar=railcar, estimate=e, action="accept"
            ).escalations
        )

    made = run_at_once(evaluate, threads=6)

    assert sum(made) == 2
    assert sorted(Escalation.objects.values_list("route", flat=True)) == ["pool", "senior"]
    assert AuditEvent.objects.filter(action="operator.escalated").count() == 2
    assert AuditEvent.objects.filter(action="operator.accept").count() == 6
    assert verify_chain().ok
