"""The policies the operator application reads; registered when the app loads
(OperationsConfig.ready): the operators' rationale codes and the escalation rules.

Each escalation rule has a threshold and a route: `pool` (blind triple rating, at the front of the
annotation pool), `senior` (straight to a senior inspector) or `off`. A rule fires strictly past
its threshold: a contamination equal to the threshold does not escalate, one just above does.
"""

import re
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError

from labeling.quality import CHECKS
from scrapannot.policy import Policy, policy_values, register

PREFIX = "operate."
RATIONALE_CODES = "operate.rationale_codes"
CONTAMINATION_ABOVE = "operate.escalate.contamination_above_pct"
CONTAMINATION_ROUTE = "operate.escalate.contamination_route"
CONFIDENCE_BELOW = "operate.escalate.confidence_below"
CONFIDENCE_ROUTE = "operate.escalate.confidence_route"
QUALITY_FLAGS = "operate.escalate.quality_flags"
QUALITY_FLAGS_ROUTE = "operate.escalate.quality_flags_route"
AMENDMENT_ABOVE = "operate.escalate.amendment_above_pct"
AMENDMENT_ROUTE = "operate.escalate.amendment_route"
GRADE_DISAGREEMENT_ROUTE = "operate.escalate.grade_disagreement_route"

POOL, SENIOR, OFF = "pool", "senior", "off"
ROUTES = (POOL, SENIOR, OFF)
# The code that needs a note saying why (as the senior inspectors' "other").
OTHER = "other"
DEFAULT_RATIONALE_CODES = (
    "visible_inclusions",  # the operator sees non-metallic material the camera missed
    "sample_analysis",  # a sample or a spectrometer reading says otherwise
    "camera_view_poor",  # dust, smoke or occlusion hid the load from the camera
    "supplier_documents",  # the delivery papers name another grade
    OTHER,
)
_CODE = re.compile(r"[a-z][a-z0-9_]{0,31}")


@dataclass(frozen=True)
class CodeListPolicy(Policy):
    """A comma-separated list of short codes (lowercase, digits, underscores), each at most 32
    characters; `allowed`, when given, bounds what may be listed."""

    allowed: tuple[str, ...] = ()
    allow_empty: bool = False

    def clean(self, value: Any) -> str:
        if not isinstance(value, str):
            raise ValidationError(f"{self.key}: a comma-separated list of codes")
        codes = [c.strip() for c in value.split(",") if c.strip()]
        if not codes and not self.allow_empty:
            raise ValidationError(f"{self.key}: list at least one code")
        for code in codes:
            if not _CODE.fullmatch(code):
                raise ValidationError(
                    f"{self.key}: {code!r} is not a code (lowercase letters, digits, _)"
                )
            if self.allowed and code not in self.allowed:
                raise ValidationError(
                    f"{self.key}: {code!r} is not one of {', '.join(self.allowed)}"
                )
        if len(set(codes)) != len(codes):
            raise ValidationError(f"{self.key}: a code is listed twice")
        return ",".join(codes)


def codes(value: object) -> tuple[str, ...]:
    return tuple(c for c in str(value).split(",") if c)


def _route(key: str, default: str, what: str) -> Policy:
    return Policy(
        key=key,
        default=default,
        description=f"Where {what} goes: 'pool' (blind triple rating, at the front of the "
        "annotation pool), 'senior' (a senior inspector decides) or 'off' (no escalation).",
        choices=ROUTES,
    )


def register_operations_policies() -> None:
    register(
        CodeListPolicy(
            key=RATIONALE_CODES,
            default=",".join(DEFAULT_RATIONALE_CODES),
            description="Rationale codes an operator picks from when amending an estimate, "
            "comma-separated; 'other' needs a note. Removing a code keeps past decisions as they "
            "were.",
        ),
        Policy(
            key=CONTAMINATION_ABOVE,
            default=5.0,
            description="An estimate of contamination above this (percentage points) is "
            "escalated (seed 000: a few percent is usual; a high reading costs the plant most).",
            minimum=0.0,
            maximum=100.0,
        ),
        _route(CONTAMINATION_ROUTE, SENIOR, "a high-contamination estimate"),
        Policy(
            key=CONFIDENCE_BELOW,
            default=0.2,
            description="An estimate with a confidence (0-1) below this is escalated: the model "
            "expects an error of more than 80 % of the tolerance. Set it from the production "
            "model's own figures: the synthetic benchmark's model expects 1.2-1.6 pp on most "
            "railcars (confidence 0.2-0.4 at the 2.0 pp tolerance), so 0.5 would send nearly "
            "every railcar to the front of the pool and override the learning loop's order.",
            minimum=0.0,
            maximum=1.0,
        ),
        _route(CONFIDENCE_ROUTE, POOL, "a low-confidence estimate"),
        CodeListPolicy(
            key=QUALITY_FLAGS,
            default="haze,extraneous",
            description="Quality checks whose flags, on a frame that went into an estimate, "
            f"escalate it (any of: {', '.join(CHECKS)}); empty for none.",
            allowed=CHECKS,
            allow_empty=True,
        ),
        _route(QUALITY_FLAGS_ROUTE, POOL, "an estimate with those quality flags"),
        Policy(
            key=AMENDMENT_ABOVE,
            default=1.0,
            description="An operator's amendment that moves the contamination by more than this "
            "(percentage points) from the estimate is escalated.",
            minimum=0.0,
            maximum=100.0,
        ),
        _route(AMENDMENT_ROUTE, POOL, "a large amendment"),
        _route(
            GRADE_DISAGREEMENT_ROUTE, SENIOR, "an operator's grade that differs from the model's"
        ),
    )


@dataclass(frozen=True)
class Rule:
    threshold: float | tuple[str, ...] | None
    route: str


@dataclass(frozen=True)
class EscalationPolicy:
    contamination_above: Rule
    confidence_below: Rule
    quality_flags: Rule
    amendment_above: Rule
    grade_disagreement: Rule


def escalation_policy() -> EscalationPolicy:
    """Every rule's threshold and route, in one query."""
    v = policy_values(PREFIX)
    return EscalationPolicy(
        contamination_above=Rule(float(v[CONTAMINATION_ABOVE]), str(v[CONTAMINATION_ROUTE])),
        confidence_below=Rule(float(v[CONFIDENCE_BELOW]), str(v[CONFIDENCE_ROUTE])),
        quality_flags=Rule(codes(v[QUALITY_FLAGS]), str(v[QUALITY_FLAGS_ROUTE])),
        amendment_above=Rule(float(v[AMENDMENT_ABOVE]), str(v[AMENDMENT_ROUTE])),
        grade_disagreement=Rule(None, str(v[GRADE_DISAGREEMENT_ROUTE])),
    )


def rationale_codes() -> tuple[str, ...]:
    return codes(policy_values(RATIONALE_CODES)[RATIONALE_CODES])
