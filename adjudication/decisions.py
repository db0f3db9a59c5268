"""A senior inspector's decision on an adjudication case: the final label, with a rationale."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from adjudication import labels
from adjudication.models import AdjudicationCase, Consensus, FinalLabel, RationaleCode
from labeling.annotation_models import Grade
from labeling.models import Railcar, Rating
from scrapannot import audit
from scrapannot.models import AuditEvent


class CaseClosed(Exception):
    """The case was decided or withdrawn meanwhile (another inspector, a re-applied policy)."""


class OwnRating(Exception):
    """An inspector may not adjudicate a railcar they rated themselves."""


class NotFinal(Exception):
    """Only a railcar with a final label can be reopened."""


REOPENED = "reopened"
MAX_REASON = 500


def open_cases():
    """The queue: most disagreement first, then oldest."""
    return (
        AdjudicationCase.objects.filter(status=AdjudicationCase.Status.OPEN)
        .select_related("railcar", "railcar__consensus")
        .order_by("-disagreement", "opened_at", "id")
    )


def rated_by(user: AbstractBaseUser, railcar_ids: list[int]) -> set[int]:
    return set(
        Rating.objects.filter(annotator=user, railcar_id__in=railcar_ids).values_list(
            "railcar_id", flat=True
        )
    )


def next_case(
    user: AbstractBaseUser, *, after: AdjudicationCase | None = None
) -> AdjudicationCase | None:
    """The open case this user should look at next, in queue order: the first one, or the one
    after `after` (wrapping round). Cases of railcars the user rated are skipped."""
    cases = open_cases().exclude(railcar__ratings__annotator=user)
    if after is None:
        return cases.first()
    d, opened = after.disagreement, after.opened_at
    later = cases.filter(
        Q(disagreement__lt=d)
        | Q(disagreement=d, opened_at__gt=opened)
        | Q(disagreement=d, opened_at=opened, id__gt=after.pk)
    ).first()
    return later or cases.exclude(pk=after.pk).first()


def decide(
    *,
    case_id: int,
    actor: AbstractBaseUser,
    contamination_pct: Decimal,
    grade: str,
    rationale_code: str,
    note: str = "",
) -> FinalLabel:
    if grade not in Grade.values:
        raise ValueError(f"unknown grade {grade!r}")
    if rationale_code not in RationaleCode.values:
        raise ValueError(f"unknown rationale code {rationale_code!r}")
    if not Decimal("0") <= contamination_pct <= Decimal("100"):
        raise ValueError("contamination must be between 0 and 100")
    if rationale_code == RationaleCode.OTHER and not note.strip():
        raise ValueError("the rationale 'other' needs a note")
    now = timezone.now()
    with transaction.atomic():
        railcar_id = AdjudicationCase.objects.values_list("railcar_id", flat=True).get(pk=case_id)
        # Lock order as in aggregation: railcar, case, then the audit chain.
        railcar = Railcar.objects.select_for_update().get(pk=railcar_id)
        case = AdjudicationCase.objects.select_for_update().get(pk=case_id)
        if case.status != AdjudicationCase.Status.OPEN:
            raise CaseClosed
        ratings = list(Rating.objects.filter(railcar=railcar).order_by("id"))
        if any(r.annotator_id == actor.pk for r in ratings):
            raise OwnRating
        consensus = Consensus.objects.filter(railcar=railcar).first()
        case.status, case.closed_at, case.decided_by = AdjudicationCase.Status.DECIDED, now, actor
        case.rationale_code, case.note = rationale_code, note
        case.save()
        # A reopened railcar: the new label supersedes the current one, which is kept.
        label = labels.set_final_label(
            railcar=railcar,
            contamination_pct=contamination_pct.quantize(Decimal("0.1")),
            grade=grade,
            source=FinalLabel.Source.ADJUDICATION,
            method="adjudication",
            rating_ids=[r.pk for r in ratings],
            consensus=consensus,
            actor=actor,
            at=now,
            case=case,
        )
    return label


def reopen(*, railcar_id: int, actor: AbstractBaseUser, reason: str) -> AdjudicationCase:
    """Send a railcar that has a final label back to a senior inspector (a label found wrong,
    new evidence). The label stays current until the case is decided; the decision supersedes
    it. Reopening a railcar that already has an open case returns that case."""
    reason = reason.strip()
    if not reason:
        raise ValueError("say why the railcar is reopened")
    if len(reason) > MAX_REASON:
        raise ValueError(f"the reason is longer than {MAX_REASON} characters")
    now = timezone.now()
    with transaction.atomic():
        railcar = Railcar.objects.select_for_update().get(pk=railcar_id)
        open_case = AdjudicationCase.objects.filter(
            railcar=railcar, status=AdjudicationCase.Status.OPEN
        ).first()
        if open_case is not None:
            return open_case
        label = labels.current_label(railcar_id=railcar.pk)
        if label is None:
            raise NotFinal
        consensus = Consensus.objects.filter(railcar=railcar).first()
        case = labels.send_to_adjudication(
            railcar=railcar,
            reasons=[REOPENED],
            # Ahead of every disagreement: someone found the label wrong.
            disagreement=(consensus.disagreement if consensus else 0.0) + 10.0,
            at=now,
        )
        audit.record(
            action="adjudication.reopened",
            actor=actor,
            obj=case,
            payload={"railcar": railcar.pk, "final_label": label.pk, "reason": reason},
        )
    return case


@dataclass(frozen=True)
class ReopenNote:
    reason: str
    by: str
    at: datetime


def reopen_note(*, case: AdjudicationCase) -> ReopenNote | None:
    """Why a reopened case is open, for the senior inspector deciding it (who may not read the
    audit trail): the reason `reopen` recorded on the case's event."""
    if REOPENED not in case.reasons:
        return None
    event = (
        AuditEvent.objects.filter(
            action="adjudication.reopened",
            object_type=AdjudicationCase._meta.label_lower,
            object_id=str(case.pk),
        )
        .order_by("-id")
        .first()
    )
    if event is None:
        return None
    return ReopenNote(
        reason=str(event.payload.get("reason", "")), by=event.actor_label, at=event.created_at
    )
