"""Unloadings on named lines with estimates, decisions and escalations, for the report tests.

The estimates are written as rows directly: they stand for what the live scoring writes
(operations.live, the `live` helper's), which the report only reads.
"""

import datetime as dt
from decimal import Decimal

from django.contrib.auth.models import User

from labeling import lines
from labeling.models import Frame, Line, Railcar
from mlloop.models import ModelVersion
from operations.models import Escalation, LiveEstimate, OperatorDecision
from scrapannot.roles import Role
from tests.conftest import user_with_roles
from tests.labeling.factories import pool_railcar
from tests.mlloop.version_factories import model_version

UTC = dt.UTC


def operator_of(username: str, *line_names: str, role: Role = Role.OPERATOR) -> User:
    user = user_with_roles(username, role)
    for name in line_names:
        line, _ = Line.objects.get_or_create(name=name)
        lines.grant(actor=None, user=user, line=line, permission=lines.OPERATE_LINE)
    return user


def unloading(
    *, line: str = "L1", started: dt.datetime | None = None, layers: int = 3, real_id: str = ""
) -> Railcar:
    railcar = pool_railcar(layers=layers, frames_per_layer=1)
    fields: dict[str, object] = {"line": line, "camera": f"{line}-TOP-1"}
    if started is not None:
        fields |= {"unloading_started_at": started,
                   "unloading_ended_at": started + dt.timedelta(minutes=7)}  # fmt: skip
    if real_id:
        fields["real_id"] = real_id
    Railcar.objects.filter(pk=railcar.pk).update(**fields)
    railcar.refresh_from_db()
    return railcar


def production_version() -> ModelVersion:
    found = ModelVersion.objects.filter(number=7).first()
    return found or model_version(7)


def estimate(
    railcar: Railcar, *, layers_scored: int = 2, pct: float = 4.25, grade: str = "3A1",
    confidence: float = 0.8, flags: dict | None = None,
) -> LiveEstimate:  # fmt: skip
    return LiveEstimate.objects.create(
        railcar=railcar,
        model_version=production_version(),
        layers_scored=layers_scored,
        contamination_pct=pct,
        grade=grade,
        grade_probs={"3A": 0.1, "3A1": 0.7, "3AH": 0.15, "cast iron": 0.05},
        confidence=confidence,
        expected_error_pct=0.61,
        per_layer=[{"layer": i + 1, "attention": 1 / layers_scored} for i in range(layers_scored)],
        quality_flags=flags if flags is not None else {"blur": 1},
    )


def amend(
    railcar: Railcar, by: User, *, pct: str = "6.5", grade: str = "3AH", note: str = "more soil"
) -> OperatorDecision:
    return OperatorDecision.objects.create(
        railcar=railcar,
        estimate=LiveEstimate.objects.filter(railcar=railcar).order_by("-id").first(),
        operator=by,
        action=OperatorDecision.Action.AMEND,
        contamination_pct=float(Decimal(pct)),
        grade=grade,
        rationale_code="visible_soil",
        note=note,
    )


def escalate(railcar: Railcar, *, route: str = Escalation.Route.SENIOR) -> Escalation:
    return Escalation.objects.create(
        railcar=railcar,
        route=route,
        reasons=[{"rule": "contamination_above", "value": 4.25, "threshold": 4.0}],
        estimate=LiveEstimate.objects.filter(railcar=railcar).order_by("-id").first(),
    )


def make_ineligible(railcar: Railcar, layer_index: int) -> None:
    Frame.objects.filter(railcar=railcar, layer__index=layer_index).update(
        quality=Frame.Quality.INELIGIBLE
    )
