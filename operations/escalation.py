"""Escalation: the policies (operations.policies) that send a railcar to manual review after an
estimate or an operator's decision.

Rules, each firing strictly past its threshold (equal does not escalate):
- the estimate's contamination above X pp;
- its confidence below Y;
- quality flags of the listed checks on the frames that went into it;
- an amendment that moves the contamination by more than Z pp from the estimate;
- an amended grade that differs from the model's.

The fired rules are grouped by their route. `pool`: the railcar goes to the front of the
annotation pool for blind triple rating (labeling.front_of_pool); one whose ratings are all in
cannot be rated blind again, so it goes to a senior inspector instead (the reasons say so).
`senior`: an adjudication case (adjudication.labels.send_to_adjudication; a current label stays
current until the senior inspector decides). A railcar escalates at most once per route
(a database constraint); re-evaluating it records nothing new.
"""

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from adjudication.labels import send_to_adjudication
from adjudication.models import AdjudicationCase
from labeling.front_of_pool import put_at_front
from labeling.models import Railcar
from operations.live import latest_estimate
from operations.models import Escalation, LiveEstimate, OperatorDecision, WebhookEvent
from operations.policies import POOL, SENIOR, EscalationPolicy, escalation_policy
from operations.webhooks import report_changed
from scrapannot import audit

# Ahead of every raters' disagreement in the senior inspectors' queue (as a reopened railcar).
SENIOR_DISAGREEMENT = 10.0
# Differences are compared at this precision: 4.1 - 3.1 is 0.9999999999999996 in floating point,
# and a 1.0 pp threshold must treat it as 1.0.
DIGITS = 6

Reason = dict[str, Any]


def reasons_for(
    *,
    estimate: LiveEstimate,
    decision: OperatorDecision | None,
    policy: EscalationPolicy,
) -> dict[str, list[Reason]]:
    """{route: reasons} of the rules that fire; no database access."""
    fired: list[tuple[str, Reason]] = []
    rule = policy.contamination_above
    if estimate.contamination_pct > rule.threshold:
        fired.append((rule.route, _reason("contamination_above", estimate.contamination_pct, rule)))
    rule = policy.confidence_below
    if estimate.confidence < rule.threshold:
        fired.append((rule.route, _reason("confidence_below", estimate.confidence, rule)))
    rule = policy.quality_flags
    flagged = sorted(
        f for f, n in (estimate.quality_flags or {}).items() if n and f in rule.threshold
    )
    if flagged:
        fired.append((rule.route, _reason("quality_flags", flagged, rule)))
    if decision is not None and decision.action == OperatorDecision.Action.AMEND:
        rule = policy.amendment_above
        if decision.contamination_pct is not None:
            moved = round(abs(decision.contamination_pct - estimate.contamination_pct), DIGITS)
            if moved > rule.threshold:
                fired.append((rule.route, _reason("amendment_above", moved, rule)))
        rule = policy.grade_disagreement
        if decision.grade and decision.grade != estimate.grade:
            value = {"model": estimate.grade, "operator": decision.grade}
            fired.append((rule.route, _reason("grade_disagreement", value, rule)))
    routes: dict[str, list[Reason]] = {}
    for route, reason in fired:
        if route in (POOL, SENIOR):
            routes.setdefault(route, []).append(reason)
    return routes


def _reason(name: str, value: object, rule: Any) -> Reason:
    threshold = list(rule.threshold) if isinstance(rule.threshold, tuple) else rule.threshold
    return {"rule": name, "value": value, "threshold": threshold}


def describe(reason: Reason) -> str:
    """One line for a senior inspector's case page and the audit trail."""
    rule, value, threshold = reason["rule"], reason["value"], reason["threshold"]
    if rule == "contamination_above":
        return f"estimate {value:.1f} % above {threshold} %"
    if rule == "confidence_below":
        return f"confidence {value:.2f} below {threshold}"
    if rule == "quality_flags":
        return f"quality flags {', '.join(value)}"
    if rule == "amendment_above":
        return f"operator amended by {value:.1f} pp (more than {threshold})"
    if rule == "grade_disagreement":
        return f"operator's grade {value['operator']} differs from the model's {value['model']}"
    return str(rule)


def escalate_if_needed(
    *,
    railcar: Railcar,
    estimate: LiveEstimate,
    decision: OperatorDecision | None = None,
    policy: EscalationPolicy | None = None,
) -> list[Escalation]:
    """Evaluate the rules on an estimate (and the decision on it); record and carry out each
    route not taken before for this railcar. The escalations made now ([] on re-evaluation)."""
    routes = reasons_for(estimate=estimate, decision=decision, policy=policy or escalation_policy())
    if not routes:
        return []
    actor = decision.operator if decision is not None else None
    made: list[Escalation] = []
    with transaction.atomic():
        # The railcar's row lock serializes concurrent evaluations of it (estimate and decision
        # at once), so the "already escalated" check below cannot race; the constraint backs it.
        railcar = Railcar.objects.select_for_update().get(pk=railcar.pk)
        # Every row lock before the first audit event (see audit.record).
        open_case = (
            AdjudicationCase.objects.select_for_update()
            .filter(railcar=railcar, status=AdjudicationCase.Status.OPEN)
            .first()
        )
        done = set(Escalation.objects.filter(railcar=railcar).values_list("route", flat=True))
        pool_reasons = routes.get(POOL, [])
        if pool_reasons and POOL not in done:
            text = "; ".join(describe(r) for r in pool_reasons)
            if put_at_front(railcar_id=railcar.pk, reason=text, actor=actor):
                made.append(_record(railcar, POOL, pool_reasons, estimate, decision, actor))
            else:
                # Its blind ratings are in: a senior inspector reviews it instead.
                fallback = [{**r, "requested_route": POOL} for r in pool_reasons]
                routes[SENIOR] = routes.get(SENIOR, []) + fallback
        senior_reasons = routes.get(SENIOR, [])
        # A railcar still being unloaded keeps receiving layers: a senior inspector gets it when
        # it enters the pool (on_railcar_entered_pool evaluates its latest estimate again).
        receiving = railcar.status == Railcar.Status.RECEIVING
        if senior_reasons and SENIOR not in done and not receiving:
            _to_senior(railcar, senior_reasons, open_case)
            made.append(_record(railcar, SENIOR, senior_reasons, estimate, decision, actor))
    return made


def _to_senior(
    railcar: Railcar, reasons: Iterable[Reason], case: AdjudicationCase | None
) -> AdjudicationCase:
    lines = [f"operator escalation: {describe(r)}" for r in reasons]
    if case is not None:
        lines = [*case.reasons, *lines]
    disagreement = max(SENIOR_DISAGREEMENT, case.disagreement if case is not None else 0.0)
    # Re-read: put_at_front may have saved the row meanwhile (this one is locked by the caller).
    railcar.refresh_from_db(fields=["status", "priority"])
    return send_to_adjudication(
        railcar=railcar, reasons=lines, disagreement=disagreement, at=timezone.now(), case=case
    )


def _record(
    railcar: Railcar,
    route: str,
    reasons: list[Reason],
    estimate: LiveEstimate,
    decision: OperatorDecision | None,
    actor: AbstractBaseUser | None,
) -> Escalation:
    escalation = Escalation.objects.create(
        railcar=railcar, route=route, reasons=reasons, estimate=estimate, decision=decision
    )
    audit.record(
        action="operator.escalated",
        actor=actor,
        obj=escalation,
        payload={
            "railcar": railcar.pk,
            "route": route,
            "reasons": reasons,
            "estimate": estimate.pk,
            "decision": decision.pk if decision is not None else None,
        },
    )
    report_changed(railcar=railcar, event=WebhookEvent.ESCALATION)
    return escalation


def escalate_estimate(*, estimate_id: int) -> list[Escalation]:
    """Evaluate the rules on a recorded estimate (by id: a worker's entry point). A gone estimate
    is nothing to do; re-running it records nothing new."""
    estimate = LiveEstimate.objects.select_related("railcar").filter(pk=estimate_id).first()
    if estimate is None:
        return []
    return escalate_if_needed(railcar=estimate.railcar, estimate=estimate)


def on_railcar_entered_pool(sender: object, *, railcar_id: int, **kwargs: Any) -> None:
    """Receiver of `labeling.signals.railcar_entered_pool`: the rules held against the railcar's
    latest estimate once more (a senior route deferred while it was being unloaded)."""
    estimate = latest_estimate(railcar_id)
    if estimate is not None:
        escalate_estimate(estimate_id=estimate.pk)


def on_estimate_recorded(sender: object, **kwargs: Any) -> None:
    """Receiver for `operations.signals.estimate_recorded` (the live scoring task sends it); the
    lead connects it in OperationsConfig.ready once that signal exists. Takes the estimate or its
    id, whichever the signal carries."""
    estimate = kwargs.get("estimate")
    estimate_id = estimate.pk if estimate is not None else kwargs.get("estimate_id")
    if estimate_id is not None:
        escalate_estimate(estimate_id=int(estimate_id))
