"""Lines, operators and live estimates for the operator application's tests. Estimates are
written directly (as the live scoring task would), against a tiny model version."""

import itertools

from django.contrib.auth.models import User

from labeling import lines
from labeling.models import Line, Railcar
from mlloop.models import ModelVersion
from operations.models import LiveEstimate
from scrapannot.roles import Role
from tests.conftest import user_with_roles
from tests.labeling.factories import pool_railcar
from tests.mlloop.version_factories import model_version

_serial = itertools.count(1)


def line(name: str) -> Line:
    return Line.objects.get_or_create(name=name)[0]


def operator_of(*line_names: str, username: str = "", role: Role = Role.OPERATOR) -> User:
    user = user_with_roles(username or f"operator{next(_serial)}", role)
    for name in line_names:
        lines.grant(actor=None, user=user, line=line(name), permission=lines.OPERATE_LINE)
    return user


def railcar_on(line_name: str, **kwargs: object) -> Railcar:
    railcar = pool_railcar(**kwargs)
    Railcar.objects.filter(pk=railcar.pk).update(line=line_name, camera=f"{line_name}-TOP-1")
    railcar.refresh_from_db()
    line(line_name)
    return railcar


def production_model() -> ModelVersion:
    return ModelVersion.objects.filter(number=1).first() or model_version(1)


def estimate(
    railcar: Railcar,
    *,
    contamination_pct: float = 2.0,
    grade: str = "3A",
    confidence: float = 0.9,
    layers_scored: int = 1,
    quality_flags: dict | None = None,
    model: ModelVersion | None = None,
) -> LiveEstimate:
    return LiveEstimate.objects.create(
        railcar=railcar,
        model_version=model or production_model(),
        layers_scored=layers_scored,
        contamination_pct=contamination_pct,
        grade=grade,
        grade_probs={grade: 0.8, "3A1" if grade != "3A1" else "3A": 0.2},
        confidence=confidence,
        expected_error_pct=0.3,
        per_layer=[
            {
                "layer": i,
                "attention": 1.0 / layers_scored,
                "contamination_pct": contamination_pct,
                "flags": [],
            }
            for i in range(1, layers_scored + 1)
        ],  # fmt: skip
        quality_flags=quality_flags or {},
    )
