"""A railcar's history, read back from the audit trail, each event checked against the chain.

Most events name the railcar only through the object they are recorded on (an assignment, a
rating, a mask, a case, a dataset or model version...). So the ids of everything that belongs to
the railcar are collected first, one query per kind, and its events are then read in one query on
(object_type, object_id) pairs (indexed), whatever their number. The learning loop's objects are
collected by `operations.learning_events`.

Global events that changed how the railcar was judged while it was in flight (a policy of the
checks, the pool or aggregation; a re-applied aggregation) are shown beside them as context.
"""

import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import F, Q, QuerySet

from adjudication.models import AdjudicationCase, Consensus, FinalLabel
from labeling.models import Assignment, Mask, Railcar, Rating
from operations.learning_events import LEARNING_SUMMARIES, learning_objects
from operations.models import Escalation, OperatorDecision
from scrapannot.audit import GENESIS_HASH, digest_of
from scrapannot.models import AuditEvent

INGEST = "ingest & checks"
# The operator application: decisions on live estimates, escalations.
OPERATION = "operation"
ANNOTATION = "annotation"
AGGREGATION = "aggregation & adjudication"
LEARNING = "learning loop"
PHASES = (INGEST, OPERATION, ANNOTATION, AGGREGATION, LEARNING)

# Policies whose change alters how an in-flight railcar is checked, routed or aggregated.
CONTEXT_POLICY_PREFIXES = ("quality.", "pool.", "aggregation.")
# The lease sweep records one event for all the leases it expires, ids in the payload and no
# object. It is recorded after the lease began, in the transaction that set finished_at, so well
# within this much of it.
EXPIRY_WINDOW = timedelta(minutes=10)

_PHASE_OF_PREFIX = {
    "unloading": INGEST,
    "quality": INGEST,
    "operator": OPERATION,
    "pool": ANNOTATION,
    "assignment": ANNOTATION,
    "frame": ANNOTATION,
    "mask": ANNOTATION,
    "rating": ANNOTATION,
    "railcar": ANNOTATION,
    "aggregation": AGGREGATION,
    "final_label": AGGREGATION,
    "adjudication": AGGREGATION,
}


def _annotation_objects(railcar: Railcar) -> dict[str, Iterable[Any]]:
    return {
        "labeling.rating": Rating.objects.filter(railcar=railcar).values_list("pk", flat=True),
        "labeling.mask": Mask.objects.filter(assignment__railcar=railcar).values_list(
            "pk", flat=True
        ),
    }


def _adjudication_objects(railcar: Railcar) -> dict[str, Iterable[Any]]:
    return {
        "adjudication.finallabel": FinalLabel.objects.filter(railcar=railcar).values_list(
            "pk", flat=True
        ),
        "adjudication.adjudicationcase": AdjudicationCase.objects.filter(
            railcar=railcar
        ).values_list("pk", flat=True),
        "adjudication.consensus": Consensus.objects.filter(railcar=railcar).values_list(
            "pk", flat=True
        ),
    }


def _operation_objects(railcar: Railcar) -> dict[str, Iterable[Any]]:
    return {
        "operations.operatordecision": OperatorDecision.objects.filter(railcar=railcar).values_list(
            "pk", flat=True
        ),
        "operations.escalation": Escalation.objects.filter(railcar=railcar).values_list(
            "pk", flat=True
        ),
    }


@dataclass(frozen=True)
class TimelineEntry:
    seq: int | None  # None: recorded, not sealed into the chain yet (seconds)
    time: datetime
    actor_label: str
    action: str
    summary: str
    payload: Any
    object_type: str
    object_id: str
    phase: str
    # A global event shown for what it changed while the railcar was in flight.
    context: bool
    verified: bool
    problem: str = ""

    @property
    def sealed(self) -> bool:
        return self.seq is not None

    @property
    def payload_text(self) -> str:
        return json.dumps(self.payload, indent=2, sort_keys=True, ensure_ascii=False)


def railcar_events(railcar: Railcar) -> list[TimelineEntry]:
    """Every audit event about `railcar`, oldest first, each verified on its own: its stored
    content still gives its hash, and it links to the hash of the event before it."""
    frames = dict(railcar.frames.values_list("pk", "index"))
    assignments = list(
        Assignment.objects.filter(railcar=railcar).values_list(
            "pk", "status", "leased_at", "finished_at"
        )
    )
    objects: dict[str, set[str]] = {
        "labeling.railcar": {str(railcar.pk)},
        "labeling.frame": {str(pk) for pk in frames},
        "labeling.assignment": {str(a[0]) for a in assignments},
    }
    for collect in (_annotation_objects, _adjudication_objects, _operation_objects):
        for object_type, ids in collect(railcar).items():
            objects.setdefault(object_type, set()).update(str(pk) for pk in ids)
    learning = learning_objects(railcar)

    query = Q()
    for object_type, ids in objects.items():
        if ids:
            query |= Q(object_type=object_type, object_id__in=ids)
    query |= learning.query() | _context_query(railcar)
    expired = [(leased, done) for _, status, leased, done in assignments if status == "expired"]
    if expired:
        query |= Q(
            action="assignment.expired",
            created_at__gte=min(leased for leased, _ in expired),
            created_at__lte=max(done or leased for leased, done in expired) + EXPIRY_WINDOW,
        )
    # Chain order; the events not sealed yet (the last seconds' worth) after them, as recorded.
    fetched = list(AuditEvent.objects.filter(query).order_by(F("seq").asc(nulls_last=True), "id"))
    learned = {e.pk for e in learning.pick(fetched)}
    events = [e for e in fetched if e.pk in learned or _concerns(e, objects) or _is_context(e)]
    events = _with_deleted_masks(events, frames)
    return _verified_entries(events, frames)


def _context_query(railcar: Railcar) -> Q:
    """Global events between the railcar's ingest and its current final label (if any)."""
    keys = Q()
    for prefix in CONTEXT_POLICY_PREFIXES:
        keys |= Q(payload__key__startswith=prefix)
    window = Q(created_at__gte=railcar.created_at)
    label_at = (
        FinalLabel.objects.current()
        .filter(railcar=railcar)
        .values_list("decided_at", flat=True)
        .first()
    )
    if label_at is not None:
        window &= Q(created_at__lte=label_at)
    return window & (Q(action="aggregation.reapplied") | (Q(action="policy.changed") & keys))


def _is_context(event: AuditEvent) -> bool:
    return event.action in ("policy.changed", "aggregation.reapplied")


def _concerns(event: AuditEvent, objects: Mapping[str, set[str]]) -> bool:
    if event.object_id in objects.get(event.object_type, ()):
        return True
    if event.action == "assignment.expired":
        swept = _payload(event).get("assignments")
        return isinstance(swept, list) and bool(
            {str(a) for a in swept} & objects["labeling.assignment"]
        )
    return False


def _with_deleted_masks(events: list[AuditEvent], frames: Mapping[int, int]) -> list[AuditEvent]:
    """A deleted mask's row is gone, so its `mask.saved` event is found by the frame it was on
    (the frames are this railcar's). One more query, and only when a mask was deleted."""
    if not any(e.action == "mask.deleted" for e in events):
        return events
    seen = {e.pk for e in events}
    first = min(e.created_at for e in events)
    saved = AuditEvent.objects.filter(
        action="mask.saved",
        object_type="labeling.mask",
        created_at__gte=first,
        payload__frame__in=list(frames),
    )
    return sorted([*events, *(e for e in saved if e.pk not in seen)], key=_chain_order)


def _chain_order(event: AuditEvent) -> tuple[bool, int, int]:
    return (event.seq is None, event.seq or 0, event.pk)


def _verified_entries(events: list[AuditEvent], frames: Mapping[int, int]) -> list[TimelineEntry]:
    wanted = [e.seq - 1 for e in events if e.seq is not None and e.seq > 1]
    before = dict(AuditEvent.objects.filter(seq__in=wanted).values_list("seq", "hash"))
    before[0] = GENESIS_HASH
    return [
        _entry(e, frames, prev_hash=before.get(e.seq - 1) if e.seq is not None else None)
        for e in events
    ]


def _problem(event: AuditEvent, *, prev_hash: str | None) -> str:
    if event.seq is None:
        if event.hash is not None or event.prev_hash is not None:
            return "half sealed (a hash without a place in the chain)"
        return ""  # not sealed yet: nothing to check, shown as pending
    if digest_of(event) != event.hash:
        return "content does not match its hash (edited)"
    if prev_hash is None:
        return f"the event before it (#{event.seq - 1}) is missing"
    if event.prev_hash != prev_hash:
        return f"not linked to event #{event.seq - 1} (its hash differs)"
    return ""


def _entry(event: AuditEvent, frames: Mapping[int, int], *, prev_hash: str | None) -> TimelineEntry:
    problem = _problem(event, prev_hash=prev_hash)
    return TimelineEntry(
        seq=event.seq,
        time=event.created_at,
        actor_label=event.actor_label,
        action=event.action,
        summary=summarize(event.action, _payload(event), frames),
        payload=event.payload,
        object_type=event.object_type,
        object_id=event.object_id,
        phase=_phase(event),
        context=_is_context(event),
        verified=not problem and event.seq is not None,
        problem=problem,
    )


def _payload(event: AuditEvent) -> dict[str, Any]:
    # A tampered or older event may hold anything: summaries read a dict or nothing.
    return event.payload if isinstance(event.payload, dict) else {}


def _phase(event: AuditEvent) -> str:
    prefix = event.action.split(".", 1)[0]
    if event.action == "policy.changed":
        prefix = str(_payload(event).get("key", "")).split(".", 1)[0]
    return _PHASE_OF_PREFIX.get(prefix, LEARNING)


def by_phase(entries: Iterable[TimelineEntry]) -> list[tuple[str, list[TimelineEntry]]]:
    """The entries under their phases, in the order of the railcar's flow; empty phases too."""
    grouped: dict[str, list[TimelineEntry]] = {phase: [] for phase in PHASES}
    for entry in entries:
        grouped[entry.phase].append(entry)
    return list(grouped.items())


def _frame(frames: Mapping[int, int], pk: Any) -> str:
    index = frames.get(pk) if isinstance(pk, int) else None
    return f"frame {index}" if index is not None else "a frame"


_Summary = Callable[[dict[str, Any], Mapping[int, int]], str]
_SUMMARIES: dict[str, _Summary] = {
    "unloading.ingested": lambda p, f: (
        f"Ingested {p.get('frames')} frames in {p.get('layers')} layers "
        f"({len(p.get('rejected') or [])} rejected; layers from {p.get('layer_source')})"
    ),
    "unloading.opened": lambda p, f: f"Opened for posting layer by layer on {p.get('line')}",
    "unloading.frames_appended": lambda p, f: (
        f"Appended {p.get('frames')} frames to layers {p.get('layers')} "
        f"({len(p.get('rejected') or [])} rejected; eligible keyframes: {p.get('keyframes')})"
    ),
    "live_estimate.recorded": lambda p, f: (
        f"Live estimate {p.get('contamination_pct')} % {p.get('grade')} (confidence "
        f"{p.get('confidence')}) from {p.get('layers_scored')} layers, model "
        f"v{p.get('model_version')}"
    ),
    "quality.checked": lambda p, f: (
        f"Quality checks: {p.get('outcome')}; {p.get('eligible_layers')} of {p.get('layers')} "
        f"layers eligible ({p.get('eligible_frames')} of {p.get('frames')} frames)"
    ),
    "quality.rejudged": lambda p, f: (
        f"Re-judged under new thresholds: {p.get('outcome')}; {p.get('eligible_layers')} of "
        f"{p.get('layers')} layers eligible"
    ),
    "assignment.leased": lambda p, f: f"Leased slot {p.get('slot')}",
    "assignment.released": lambda p, f: f"Released the lease: {p.get('reason') or 'no reason'}",
    "assignment.expired": lambda p, f: "Lease expired, the slot went back to the pool",
    "frame.excluded": lambda p, f: (
        f"Excluded {_frame(f, p.get('frame'))} ({p.get('code')})"
        + (f": {p['note']}" if p.get("note") else "")
    ),
    "frame.included": lambda p, f: f"Put {_frame(f, p.get('frame'))} back",
    "mask.saved": lambda p, f: (
        f"Mask on {_frame(f, p.get('frame'))}: {p.get('area')} px ({p.get('engine')})"
        + (f", {p['kind']}" if p.get("kind") else "")
    ),
    "mask.changed": lambda p, f: (
        f"Corrected a mask on {_frame(f, p.get('frame'))}: "
        f"{(p.get('before') or {}).get('area')} px {(p.get('before') or {}).get('kind')} → "
        f"{(p.get('after') or {}).get('area')} px {(p.get('after') or {}).get('kind')}"
    ),
    "mask.deleted": lambda p, f: f"Deleted a mask on {_frame(f, p.get('frame'))}",
    "rating.submitted": lambda p, f: (
        f"Rated {p.get('contamination_pct')} %, grade {p.get('grade')} in "
        f"{p.get('seconds_spent')} s (excluded frames: {p.get('excluded_frames')}, "
        f"masks: {p.get('masks')})"
    ),
    "railcar.rated": lambda p, f: f"All {p.get('ratings')} ratings in",
    "aggregation.computed": lambda p, f: (
        f"Aggregated: {p.get('mean_pct')} % ± {p.get('std_pct')}, grade votes "
        f"{p.get('grade_votes')}: {p.get('outcome')}"
        + (
            f" ({', '.join(map(str, p['reasons']))})"
            if isinstance(p.get("reasons"), list) and p["reasons"]
            else ""
        )
    ),  # fmt: skip
    "final_label.set": lambda p, f: (
        f"Final label {p.get('contamination_pct')} % {p.get('grade')} "
        f"({p.get('source')}, {p.get('method')})"
    ),
    "adjudication.decided": lambda p, f: (
        f"Decided {p.get('contamination_pct')} % {p.get('grade')}: {p.get('rationale_code')}"
        + (f" ({p['note']})" if p.get("note") else "")
    ),
    "adjudication.reopened": lambda p, f: f"Reopened for adjudication: {p.get('reason')}",
    "policy.changed": lambda p, f: f"Policy {p.get('key')}: {p.get('old')} → {p.get('new')}",
    "aggregation.reapplied": lambda p, f: (
        f"Aggregation re-applied to {p.get('railcars')} railcars under {p.get('policy')}"
    ),
    "operator.accept": lambda p, f: (
        f"Operator accepted the estimate ({p.get('estimate_contamination_pct')} %, "
        f"{p.get('estimate_grade')})"
    ),
    "operator.amend": lambda p, f: (
        f"Operator amended the estimate ({p.get('estimate_contamination_pct')} %, "
        f"{p.get('estimate_grade')}) to {p.get('contamination_pct') or 'the same'} % "
        f"{p.get('grade') or ''} ({p.get('rationale_code')})"
    ),
    "operator.escalated": lambda p, f: (
        f"Escalated to {p.get('route')}: "
        + ", ".join(str(r.get("rule")) for r in p.get("reasons") or [] if isinstance(r, dict))
    ),
    "pool.put_at_front": lambda p, f: f"Put at the front of the pool: {p.get('reason')}",
    **LEARNING_SUMMARIES,
}


def summarize(action: str, payload: dict[str, Any], frames: Mapping[int, int]) -> str:
    """One short line per event; an unknown action (a newer app's) lists its first values."""
    summary = _SUMMARIES.get(action)
    if summary is not None:
        return summary(payload, frames)
    scalars = [f"{k}: {v}" for k, v in payload.items() if isinstance(v, str | int | float)]
    return ", ".join(scalars[:4])


def find_railcars(*, text: str = "", status: str = "", line: str = "") -> QuerySet[Railcar]:
    """Railcars for the admin's list: `text` is part of a real id, or a whole uid."""
    railcars = Railcar.objects.order_by("-unloading_started_at", "-id")
    if text:
        try:
            railcars = railcars.filter(uid=uuid.UUID(text))
        except ValueError:
            railcars = railcars.filter(real_id__icontains=text)
    if status:
        railcars = railcars.filter(status=status)
    if line:
        railcars = railcars.filter(line=line)
    return railcars
