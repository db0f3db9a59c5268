"""Label sources besides the final labels, which a dataset freeze may include (mlloop.datasets).

mlloop cannot import the apps above it; an app that owns another source of labels (operations:
operators' amendments) registers it here from its AppConfig.ready, and the freeze form offers
each registered source as a checkbox. Final labels always win: a source is asked only for
railcars without a current final label.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class SourcedLabel:
    """A label from a source other than the final labels, for a railcar that has none."""

    railcar_id: int
    contamination_pct: Decimal
    grade: str
    # Who, why, from what: the source's own record, kept on the dataset item.
    provenance: dict[str, object]


@dataclass(frozen=True)
class LabelSource:
    """A label source a freeze may include (an app above registers it: operations registers
    "operator", the operators' amendments). Final labels always win: `labels` is asked only for
    railcars without a current final label, given the ids to leave out."""

    key: str
    description: str
    labels: Callable[[frozenset[int]], list[SourcedLabel]]


_LABEL_SOURCES: dict[str, LabelSource] = {}


def register_label_source(source: LabelSource) -> None:
    _LABEL_SOURCES[source.key] = source


def label_sources() -> Mapping[str, LabelSource]:
    return _LABEL_SOURCES
