"""The agreement page: how well raters agree and how each rater reads, for senior inspectors and
admins only (it names raters and shows final labels: never for annotators)."""

from datetime import date

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from adjudication.agreement_icc import MIN_TARGETS
from adjudication.agreement_pairs import gold_agreements, pair_agreements
from adjudication.agreement_report import (
    AgreementReport,
    agreement_report,
    mask_kinds,
    rated_lines,
)
from adjudication.agreement_statistics import MIN_RAILCARS
from adjudication.gold_scores import gold_ratings
from scrapannot import charts
from scrapannot.roles import Role, role_required

# The range a date filter may take: outside it nothing was ever rated, and far outside it the
# conversion to an aware datetime overflows.
EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)
DATE_INPUT = ["%Y-%m-%d"]


class AgreementFilter(forms.Form):
    line = forms.CharField(max_length=32, required=False, strip=True)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        # "from" is a Python keyword, so these two fields cannot be class attributes.
        self.fields["from"] = forms.DateField(required=False, input_formats=DATE_INPUT)
        self.fields["to"] = forms.DateField(required=False, input_formats=DATE_INPUT)

    def clean(self) -> dict[str, object]:
        data = super().clean()
        since, until = data.get("from"), data.get("to")
        for name, day in (("from", since), ("to", until)):
            if day is not None and not EARLIEST <= day <= LATEST:
                self.add_error(name, f"Enter a date between {EARLIEST} and {LATEST}.")
        if since and until and since > until:
            self.add_error("to", "The end of the range comes before its start.")
        return data


def _charts(report: AgreementReport) -> dict[str, object]:
    labels = [b.label for b in report.buckets]
    alphas = [b.alpha for b in report.buckets]
    kappas = [b.kappa.value for b in report.buckets]
    coefficient_axis = charts.axis_around(
        [v for v in alphas + kappas if v is not None], low=0.0, high=1.0, step=0.2
    )
    series = [
        charts.Series("alpha (contamination)", alphas, charts.colour(0)),
        charts.Series("kappa (grade)", kappas, charts.colour(1)),
    ]
    over_time = charts.line_chart(
        label=f"agreement per {report.period}: Krippendorff's alpha and Fleiss' kappa",
        x_labels=labels,
        series=series,
        # Alpha can fall below -1 in theory; nothing below that is worth the chart's height.
        y_axis=charts.Axis(
            low=max(coefficient_axis.low, -1.0),
            high=1.0,
            ticks=[t for t in coefficient_axis.ticks if t >= -1.0],
        ),
    )
    points = [
        charts.Point(r.bias, r.scale, r.rater)
        for r in report.raters
        if r.bias is not None and r.scale is not None
    ]
    scatter = charts.scatter_chart(
        label="bias against scale, one point per rater",
        points=points,
        x_axis=charts.axis_around([p.x for p in points], low=-1.0, high=1.0, step=0.5),
        y_axis=charts.axis_around([p.y for p in points], low=0.5, high=1.5, step=0.25),
        x_title="bias (percentage points)",
        y_title="scale (slope against the final label)",
        x_reference=0.0,
        y_reference=1.0,
    )
    return {
        "over_time": over_time,
        "over_time_series": series,
        "scatter": scatter,
        "scatter_points": len(points),
    }


@require_GET
@role_required(Role.SENIOR_INSPECTOR, Role.ADMIN)
def agreement(request: HttpRequest) -> HttpResponse:
    form = AgreementFilter(request.GET)
    context: dict[str, object] = {
        "form": form,
        "lines": rated_lines(),
        "min_railcars": MIN_RAILCARS,
    }
    if not form.is_valid():
        return render(request, "adjudication/agreement.html", context, status=400)
    report = agreement_report(
        since=form.cleaned_data["from"],
        until=form.cleaned_data["to"],
        line=form.cleaned_data["line"],
    )
    context.update(
        report=report,
        pairs=pair_agreements(
            (r.railcar_id, r.rater, r.contamination_pct) for r in report.rating_rows
        ),
        gold_agreement=gold_agreements(
            (g.rater, g.contamination_pct, g.truth_pct) for g in gold_ratings()
        ),
        min_pairs=MIN_TARGETS,
        charts=_charts(report),
        rater_heat=charts.heat_rows(report.categories, report.rater_confusion),
        final_heat=charts.heat_rows(report.categories, report.final_confusion),
        mask_kinds=mask_kinds(
            since=form.cleaned_data["from"],
            until=form.cleaned_data["to"],
            line=form.cleaned_data["line"],
        ),
    )
    return render(request, "adjudication/agreement.html", context)
