"""The gold page: raters scored against gold truth (senior inspectors and admins), and where an
admin imports gold truth with its source or retires a gold railcar. Never for annotators: it
names gold railcars and their truth."""

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from adjudication.gold_scores import RaterGoldScore, gold_report
from labeling import gold
from labeling.models import GoldRailcar, GoldSource, Grade
from scrapannot import charts
from scrapannot.roles import Role, role_required


class GoldForm(forms.Form):
    railcar = forms.CharField(
        max_length=64, help_text="The railcar's id, uid, or plant id if only one railcar has it."
    )
    contamination_pct = forms.DecimalField(min_value=0, max_value=100, decimal_places=1)
    grade = forms.ChoiceField(choices=Grade.choices)
    source = forms.ChoiceField(choices=GoldSource.choices)
    reference = forms.CharField(max_length=200, required=False, strip=True)


def _rater_charts(scores: list[RaterGoldScore]) -> list[tuple[RaterGoldScore, object]]:
    drawn = []
    for s in scores:
        labels = [p.start.isoformat() for p in s.drift]
        bias = [p.bias for p in s.drift]
        mae = [p.mae for p in s.drift]
        axis = charts.axis_around(
            [v for v in bias + mae if v is not None], low=-1.0, high=1.0, step=0.5
        )
        chart = charts.line_chart(
            label=f"{s.rater}: bias and MAE against gold per period",
            x_labels=labels,
            series=[
                charts.Series("bias", bias, charts.colour(0)),
                charts.Series("MAE", mae, charts.colour(1)),
            ],
            y_axis=axis,
        )
        drawn.append((s, chart))
    return drawn


def _page(request: HttpRequest, form: GoldForm, *, status: int = 200) -> HttpResponse:
    scores = gold_report()
    context = {
        "scores": _rater_charts(scores),
        "golds": GoldRailcar.objects.select_related("railcar").order_by("-imported_at")[:200],
        "form": form,
        "colours": [charts.colour(0), charts.colour(1)],
    }
    return render(request, "adjudication/gold.html", context, status=status)


@require_GET
@role_required(Role.SENIOR_INSPECTOR, Role.ADMIN)
def gold_page(request: HttpRequest) -> HttpResponse:
    return _page(request, GoldForm())


@require_POST
@role_required(Role.ADMIN)
def gold_import(request: HttpRequest) -> HttpResponse:
    form = GoldForm(request.POST)
    if not form.is_valid():
        return _page(request, form, status=400)
    data = form.cleaned_data
    try:
        gold.import_gold(
            truths=[
                gold.GoldTruth(
                    railcar=data["railcar"],
                    contamination_pct=data["contamination_pct"],
                    grade=data["grade"],
                    source=data["source"],
                    reference=data["reference"],
                )
            ],
            actor=request.user,
        )
    except gold.UnknownRailcar as exc:
        form.add_error("railcar", str(exc))
        return _page(request, form, status=400)
    messages.success(request, f"Gold truth recorded for railcar {data['railcar']}.")
    return redirect("adjudication:gold")


@require_POST
@role_required(Role.ADMIN)
def gold_retire(request: HttpRequest, railcar_id: int) -> HttpResponse:
    if gold.retire_gold(railcar_id=railcar_id, actor=request.user):
        messages.success(request, f"Railcar {railcar_id} is handed out as gold no more.")
    return redirect("adjudication:gold")
