"""The policies aggregation reads; registered when the app loads (AdjudicationConfig.ready)."""

from dataclasses import dataclass

from adjudication.models import Method, StdKind
from scrapannot.policy import Policy, policy_values, register

PREFIX = "aggregation."
STD_THRESHOLD = "aggregation.std_threshold"
STD_KIND = "aggregation.std_kind"
METHOD = "aggregation.method"


@dataclass(frozen=True)
class AggregationPolicy:
    std_threshold: float
    std_kind: str
    method: str

    @property
    def ddof(self) -> int:
        return 1 if self.std_kind == StdKind.SAMPLE else 0

    def as_dict(self) -> dict[str, object]:
        return {
            "std_threshold": self.std_threshold,
            "std_kind": self.std_kind,
            "method": self.method,
        }


def register_adjudication_policies() -> None:
    register(
        Policy(
            key=STD_THRESHOLD,
            default=0.4,
            description="A railcar whose contamination ratings spread more than this (STD, in "
            "percentage points) goes to a senior inspector (seed 000: STD 0.4).",
            minimum=0.0,
            maximum=100.0,
        ),
        Policy(
            key=STD_KIND,
            default=StdKind.SAMPLE.value,
            description="How the spread is computed: 'sample' divides by n-1 (the unbiased "
            "estimate; with 3 raters it is 1.22x the population figure), 'population' by n.",
            choices=tuple(StdKind.values),
        ),
        Policy(
            key=METHOD,
            default=Method.MEAN.value,
            description="Consensus of the contamination: 'mean' of the ratings, or 'calibrated', "
            "the ratings with each rater's estimated offset and scale removed (raters without a "
            "calibration count as they are).",
            choices=tuple(Method.values),
        ),
    )


def aggregation_policy() -> AggregationPolicy:
    values = policy_values(PREFIX)
    return AggregationPolicy(
        std_threshold=float(values[STD_THRESHOLD]),
        std_kind=str(values[STD_KIND]),
        method=str(values[METHOD]),
    )
