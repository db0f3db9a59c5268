"""The current model's estimate of a railcar, for the adjudication page.

The learning loop (mlloop) sits above adjudication and registers a provider when it loads, so
that adjudication never imports it. A provider takes a railcar id and returns an `Estimate` or
None (no production model, railcar not scored).
"""

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Estimate:
    contamination_pct: float
    grade: str
    grade_probability: float
    uncertainty: float
    model_label: str  # e.g. "model v3"


Provider = Callable[[int], Estimate | None]
_providers: list[Provider] = []


def register_provider(provider: Provider) -> None:
    if provider not in _providers:
        _providers.append(provider)


def model_estimate(railcar_id: int) -> Estimate | None:
    for provider in _providers:
        estimate = provider(railcar_id)
        if estimate is not None:
            return estimate
    return None
