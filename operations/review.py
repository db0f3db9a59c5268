"""An operator's decision on a live estimate: accept it, or amend contamination and/or grade with
a rationale code (policy `operate.rationale_codes`) and a note.

A decision is a new `OperatorDecision` row: the estimate it judged is never changed, and a later
decision on the same railcar does not replace an earlier one (the newest is the one in force).
One audit event per decision; the escalation rules are evaluated in the same transaction.
"""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from adjudication.models import AdjudicationCase
from labeling.annotation_models import Grade
from labeling.front_of_pool import put_at_front
from labeling.models import Railcar
from operations import escalation
from operations.models import Escalation, LiveEstimate, OperatorDecision, WebhookEvent
from operations.policies import OTHER, rationale_codes
from operations.webhooks import report_changed
from scrapannot import audit

Action = OperatorDecision.Action
MAX_NOTE = 1000


class InvalidDecision(ValueError):
    """What is wrong with a decision, per field ({"grade": "..."}), for the form or serializer."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


class StaleEstimate(Exception):
    """The estimate decided on is not the railcar's (another railcar's id was sent)."""


@dataclass(frozen=True)
class Outcome:
    decision: OperatorDecision
    # The escalations this decision made (none when no rule fired or the routes were taken).
    escalations: list[Escalation]


def validate(
    *,
    action: str,
    contamination_pct: float | None,
    grade: str,
    rationale_code: str,
    note: str,
) -> None:
    """Domain rules of a decision; the form and the serializer check the same before calling."""
    errors: dict[str, str] = {}
    if action not in Action.values:
        errors["action"] = f"one of {', '.join(Action.values)}"
    elif action == Action.ACCEPT:
        if contamination_pct is not None or grade:
            errors["action"] = "an accepted estimate takes no amended value"
    else:
        if contamination_pct is None and not grade:
            errors["contamination_pct"] = (
                "an amendment changes the contamination, the grade or both"
            )
        if contamination_pct is not None and not 0 <= contamination_pct <= 100:
            errors["contamination_pct"] = "between 0 and 100"
        if grade and grade not in Grade.values:
            errors["grade"] = f"one of {', '.join(Grade.values)}"
        if rationale_code not in rationale_codes():
            errors["rationale_code"] = f"one of {', '.join(rationale_codes())}"
        elif rationale_code == OTHER and not note.strip():
            errors["note"] = "the rationale 'other' needs a note that says why"
    if len(note) > MAX_NOTE:
        errors["note"] = f"at most {MAX_NOTE} characters"
    if errors:
        raise InvalidDecision(errors)


def decide(
    *,
    operator: AbstractBaseUser,
    railcar: Railcar,
    estimate: LiveEstimate,
    action: str,
    contamination_pct: float | None = None,
    grade: str = "",
    rationale_code: str = "",
    note: str = "",
) -> Outcome:
    """Record the decision; the caller has checked that `operator` may act on the railcar's line
    (operations.access). An accepted estimate keeps no rationale: the estimate is the value."""
    note = note.strip()
    if action == Action.ACCEPT:
        rationale_code = rationale_code if rationale_code in rationale_codes() else ""
    validate(
        action=action,
        contamination_pct=contamination_pct,
        grade=grade,
        rationale_code=rationale_code,
        note=note,
    )
    if estimate.railcar_id != railcar.pk:
        raise StaleEstimate
    with transaction.atomic():
        # Row locks first, the audit chain's lock last (see audit.record): the railcar and its
        # open adjudication case, which escalation locks again (a no-op for the holder).
        railcar = Railcar.objects.select_for_update().get(pk=railcar.pk)
        list(
            AdjudicationCase.objects.select_for_update().filter(
                railcar=railcar, status=AdjudicationCase.Status.OPEN
            )
        )
        decision = OperatorDecision.objects.create(
            railcar=railcar,
            estimate=estimate,
            operator=operator,
            action=action,
            contamination_pct=contamination_pct,
            grade=grade,
            rationale_code=rationale_code,
            note=note,
        )
        audit.record(
            action=f"operator.{action}",
            actor=operator,
            obj=decision,
            payload={
                "railcar": railcar.pk,
                "estimate": estimate.pk,
                "model_version": estimate.model_version_id,
                "estimate_contamination_pct": estimate.contamination_pct,
                "estimate_grade": estimate.grade,
                "contamination_pct": contamination_pct,
                "grade": grade,
                "rationale_code": rationale_code,
                "note": note,
            },
        )
        if action == Action.AMEND:
            # An amended railcar is a label source (operations.amendment_labels) worth a blind
            # re-rating: first in the pool while its raters are still to come.
            put_at_front(
                railcar_id=railcar.pk, reason=f"operator amendment {decision.pk}", actor=operator
            )
        raised = escalation.escalate_if_needed(
            railcar=railcar, estimate=estimate, decision=decision
        )
        report_changed(railcar=railcar, event=WebhookEvent.DECISION)
    return Outcome(decision=decision, escalations=raised)
