"""Read-only admin for what aggregation and adjudication produce.

Consensus, cases, final labels and calibrations change only through the domain functions
(aggregation, decisions, calibration), which keep their invariants and write the audit trail;
an edit here would do neither. So admins may look, filter and follow a railcar to its timeline.
"""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from adjudication.models import AdjudicationCase, Consensus, FinalLabel, RaterCalibration
from scrapannot.admin_rules import ReadOnlyAdmin


class RailcarTimeline(ReadOnlyAdmin):
    """For the models with a `railcar`: its real id, linked to the railcar's timeline."""

    @admin.display(description="railcar", ordering="railcar__real_id")
    def railcar_timeline(self, obj: Consensus | AdjudicationCase | FinalLabel) -> str:
        url = reverse("operations:railcar-timeline", args=[obj.railcar_id])
        return format_html('<a href="{}">{}</a>', url, obj.railcar.real_id)


@admin.register(Consensus)
class ConsensusAdmin(RailcarTimeline):
    list_display = [
        "railcar_timeline", "n_ratings", "value_pct", "std_pct", "std_kind", "method",
        "majority_grade", "outcome", "computed_at",
    ]  # fmt: skip
    list_filter = ["outcome", "method", "std_kind", "majority_grade"]
    search_fields = ["railcar__real_id"]
    list_select_related = ["railcar"]
    date_hierarchy = "computed_at"


@admin.register(AdjudicationCase)
class AdjudicationCaseAdmin(RailcarTimeline):
    list_display = [
        "railcar_timeline", "status", "disagreement", "opened_at", "closed_at", "decided_by",
        "rationale_code",
    ]  # fmt: skip
    list_filter = ["status", "rationale_code"]
    search_fields = ["railcar__real_id", "decided_by__username"]
    list_select_related = ["railcar", "decided_by"]
    date_hierarchy = "opened_at"


@admin.register(FinalLabel)
class FinalLabelAdmin(RailcarTimeline):
    list_display = [
        "railcar_timeline", "contamination_pct", "grade", "source", "method", "std_pct",
        "decided_at", "decided_by", "superseded_at",
    ]  # fmt: skip
    list_filter = ["source", "method", "grade", ("superseded_at", admin.EmptyFieldListFilter)]
    search_fields = ["railcar__real_id"]
    list_select_related = ["railcar", "decided_by"]
    date_hierarchy = "decided_at"


@admin.register(RaterCalibration)
class RaterCalibrationAdmin(ReadOnlyAdmin):
    """Per rater, not per railcar: no timeline to link to."""

    list_display = ["annotator", "offset", "scale", "noise_sd", "n_ratings", "estimated_at"]
    list_filter = ["annotator"]
    search_fields = ["annotator__username"]
    list_select_related = ["annotator"]
    date_hierarchy = "estimated_at"
