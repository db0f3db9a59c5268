"""The reports of a shift or a production day as CSV rows, streamed.

Shifts are a documented setting (settings.OPERATIONS_REPORTS["SHIFT_STARTS"], local times in
OPERATIONS_REPORTS["SHIFT_TIME_ZONE"]): with starts 06:00, 14:00, 22:00, shift 1 of day D runs from
D 06:00 to D 14:00, shift 3 from D 22:00 to D+1 06:00, and day D is the three of them
(D 06:00 to D+1 06:00), so a day's CSV is exactly its shifts' rows. An unloading belongs to the
shift in which it started.
"""

import csv
import datetime as dt
import json
from collections.abc import Iterable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import QuerySet

from labeling.models import Railcar
from operations.reports import unloading_report

COLUMNS = (
    "railcar_id", "real_id", "line", "camera", "status", "unloading_started_at",
    "unloading_ended_at", "estimated_at", "contamination_pct", "grade", "grade_probs",
    "confidence", "expected_error_pct", "model_version", "layers_total", "layers_eligible",
    "layers_scored", "quality_flags", "rejected_frames", "ineligible_frames", "attention_reason",
    "decision", "decision_contamination_pct", "decision_grade", "decision_rationale_code",
    "decision_note", "decision_by", "decision_at", "escalation_route", "escalation_reasons",
    "escalation_at",
)  # fmt: skip
# A spreadsheet runs a cell starting with one of these as a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def shift_starts() -> list[dt.time]:
    configured = settings.OPERATIONS_REPORTS["SHIFT_STARTS"]
    starts = sorted(dt.time.fromisoformat(s.strip()) for s in configured)
    if not starts:
        raise ValueError("OPERATIONS_REPORTS['SHIFT_STARTS'] names no shift")
    return starts


def window(*, day: dt.date, shift: int | None = None) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of shift `shift` (1-based) of `day`, or of the whole production day;
    ValueError for a shift that does not exist."""
    zone = ZoneInfo(settings.OPERATIONS_REPORTS["SHIFT_TIME_ZONE"])
    starts = shift_starts()
    moments = [dt.datetime.combine(day, t, tzinfo=zone) for t in starts]
    moments.append(dt.datetime.combine(day + dt.timedelta(days=1), starts[0], tzinfo=zone))
    if shift is None:
        return moments[0], moments[-1]
    if not 1 <= shift <= len(starts):
        raise ValueError(f"shift {shift}: there are {len(starts)} shifts")
    return moments[shift - 1], moments[shift]


def shift_of(moment: dt.datetime) -> tuple[dt.date, int]:
    """The production day and the shift (1-based) that `moment` falls in."""
    zone = ZoneInfo(settings.OPERATIONS_REPORTS["SHIFT_TIME_ZONE"])
    local = moment.astimezone(zone)
    day = local.date()
    if local.time() < shift_starts()[0]:
        day -= dt.timedelta(days=1)  # the small hours belong to the previous day's last shift
    for shift in range(len(shift_starts()), 0, -1):
        if window(day=day, shift=shift)[0] <= local:
            return day, shift
    raise AssertionError("unreachable: the day's first shift starts at or before `moment`")


def railcars_in(railcars: QuerySet[Railcar], *, day: dt.date, shift: int | None) -> QuerySet:
    start, end = window(day=day, shift=shift)
    return railcars.filter(unloading_started_at__gte=start, unloading_started_at__lt=end).order_by(
        "unloading_started_at", "id"
    )


def safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":")) if value else ""


def row(report: dict[str, Any]) -> list[Any]:
    car, unloading, layers = report["railcar"], report["unloading"], report["layers"]
    estimate = report["estimate"] or {}
    decision = report["decision"] or {}
    escalation = report["escalation"] or {}
    anomalies = report["anomalies"]
    reasons = ";".join(str(r.get("rule", r)) for r in escalation.get("reasons", []))
    values = [
        car["id"], car["real_id"], car["line"], car["camera"], car["status"],
        unloading["started_at"], unloading["ended_at"], estimate.get("estimated_at"),
        estimate.get("contamination_pct"), estimate.get("grade"),
        _json(estimate.get("grade_probs")), estimate.get("confidence"),
        estimate.get("expected_error_pct"), estimate.get("model_version"), layers["total"],
        layers["eligible"], layers["scored"], _json(report["quality_flags"]),
        _json(anomalies["rejected_frames"]), anomalies["ineligible_frames"],
        anomalies["attention_reason"], decision.get("action"), decision.get("contamination_pct"),
        decision.get("grade"), decision.get("rationale_code"), decision.get("note"),
        decision.get("by"), decision.get("at"), escalation.get("route"), reasons,
        escalation.get("at"),
    ]  # fmt: skip
    return [safe_cell("" if v is None else v) for v in values]


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_lines(railcars: Iterable[Railcar]) -> Iterator[str]:
    """The header, then one line per railcar, produced as they are read (the response streams)."""
    writer = csv.writer(_Echo())
    yield writer.writerow(COLUMNS)
    for railcar in railcars:
        yield writer.writerow(row(unloading_report(railcar)))
