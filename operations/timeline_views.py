"""Admin pages: find a railcar, and read its whole history off the verified audit trail."""

from django import forms
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from adjudication.models import FinalLabel
from labeling.models import Railcar
from operations.timeline import by_phase, find_railcars, railcar_events
from scrapannot.audit import verify_since_checkpoint
from scrapannot.roles import Role, role_required

PAGE_SIZE = 50


class RailcarSearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=64, strip=True, label="Real id or uid")
    status = forms.ChoiceField(
        required=False, choices=[("", "any status"), *Railcar.Status.choices]
    )
    line = forms.CharField(required=False, max_length=32, strip=True)


@require_GET
@role_required(Role.ADMIN)
def railcars(request: HttpRequest) -> HttpResponse:
    form = RailcarSearchForm(request.GET)
    if not form.is_valid():
        context = {"form": form, "page": None, "lines": _lines()}
        return render(request, "operations/railcars.html", context, status=400)
    found = find_railcars(
        text=form.cleaned_data["q"],
        status=form.cleaned_data["status"],
        line=form.cleaned_data["line"],
    )
    page = Paginator(found, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "lines": _lines(), "query": query.urlencode()}
    return render(request, "operations/railcars.html", context)


def _lines() -> list[str]:
    return list(Railcar.objects.order_by("line").values_list("line", flat=True).distinct())


@require_GET
@role_required(Role.ADMIN)
def timeline(request: HttpRequest, railcar_id: int) -> HttpResponse:
    railcar = get_object_or_404(Railcar.objects.select_related("consensus"), pk=railcar_id)
    entries = railcar_events(railcar)
    context = {
        "railcar": railcar,
        "consensus": getattr(railcar, "consensus", None),
        "label": FinalLabel.objects.current().filter(railcar=railcar).first(),
        "phases": by_phase(entries),
        "broken": [e for e in entries if e.problem],
        "pending": sum(1 for e in entries if not e.sealed),
        "events": len(entries),
        # The whole chain, as the audit page does: a deleted event leaves every remaining one
        # of this railcar intact, only the walk from the genesis notices the gap.
        "report": verify_since_checkpoint(),
    }
    return render(request, "operations/timeline.html", context)
