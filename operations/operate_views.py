"""The operator application's pages: the live list of a user's lines (/operate/), its polling
feed, one unloading with its layers and estimate history, the decision form, keyframes.

Every view takes its railcar from operations.access, so a railcar of a line not granted answers
the same 404 as one that does not exist.
"""

from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET, require_POST

from labeling.annotation_models import Grade
from labeling.models import Layer
from labeling.thumbnails import thumbnail_bytes
from operations import review
from operations.access import railcar_for
from operations.models import LiveEstimate, OperatorDecision
from operations.operate_feed import feed_rows, unloading
from operations.policies import rationale_codes
from scrapannot.roles import Role, role_required

OPERATORS = (Role.OPERATOR, Role.SENIOR_INSPECTOR, Role.ADMIN)
POLL_MS = 2000


class DecisionForm(forms.Form):
    estimate = forms.IntegerField(widget=forms.HiddenInput, min_value=1, max_value=2**63 - 1)
    action = forms.ChoiceField(choices=OperatorDecision.Action.choices)
    contamination_pct = forms.FloatField(
        label="Contamination (%)", required=False, min_value=0, max_value=100
    )
    grade = forms.ChoiceField(
        required=False, choices=[("", "keep the model's grade"), *Grade.choices]
    )
    rationale_code = forms.ChoiceField(required=False, label="Rationale")
    note = forms.CharField(
        required=False, max_length=review.MAX_NOTE, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["rationale_code"].choices = [
            ("", "(accepting: none)"),
            *((c, c.replace("_", " ")) for c in rationale_codes()),
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        try:
            review.validate(
                action=data["action"],
                contamination_pct=data.get("contamination_pct"),
                grade=data.get("grade", ""),
                rationale_code=data.get("rationale_code", ""),
                note=data.get("note", ""),
            )
        except review.InvalidDecision as exc:
            for name, message in exc.errors.items():
                self.add_error(name if name in self.fields else None, message)
        return data


def explanations_available() -> bool:
    """Grad-CAM images show once the reports' explanation view is installed (its URL name
    resolves); until then the page leaves the place empty."""
    try:
        reverse("operations:explanation", args=[1, 1])
    except NoReverseMatch:
        return False
    return True


@require_GET
@role_required(*OPERATORS)
def operate(request: HttpRequest) -> HttpResponse:
    context = {"rows": feed_rows(request.user), "poll_ms": POLL_MS}
    return render(request, "operations/operate.html", context)


@require_GET
@role_required(*OPERATORS)
def feed(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"unloadings": feed_rows(request.user)})


def _render_unloading(
    request: HttpRequest, railcar_id: int, form: DecisionForm | None = None, status: int = 200
) -> HttpResponse:
    view = unloading(railcar_for(request.user, railcar_id))
    if form is None:
        initial = {"estimate": view.estimate.pk} if view.estimate is not None else {}
        form = DecisionForm(initial={"action": "accept", **initial})
    context = {
        "u": view,
        "railcar": view.railcar,
        "form": form,
        "explanations_available": explanations_available(),
    }
    return render(request, "operations/operate_unloading.html", context, status=status)


@require_GET
@role_required(*OPERATORS)
def unloading_page(request: HttpRequest, railcar_id: int) -> HttpResponse:
    return _render_unloading(request, railcar_id)


@require_POST
@role_required(*OPERATORS)
def decide(request: HttpRequest, railcar_id: int) -> HttpResponse:
    railcar = railcar_for(request.user, railcar_id)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        return _render_unloading(request, railcar_id, form, status=400)
    data = form.cleaned_data
    estimate = LiveEstimate.objects.filter(pk=data["estimate"], railcar=railcar).first()
    if estimate is None:
        form.add_error(None, "That estimate is not this unloading's; reload the page.")
        return _render_unloading(request, railcar_id, form, status=400)
    outcome = review.decide(
        operator=request.user,
        railcar=railcar,
        estimate=estimate,
        action=data["action"],
        contamination_pct=data.get("contamination_pct"),
        grade=data.get("grade", ""),
        rationale_code=data.get("rationale_code", ""),
        note=data.get("note", ""),
    )
    said = outcome.decision.get_action_display()
    routes = ", ".join(e.get_route_display() for e in outcome.escalations)
    messages.success(request, f"You {said}." + (f" Escalated to: {routes}." if routes else ""))
    return redirect("operations:operate-unloading", railcar_id=railcar.pk)


@require_GET
@role_required(*OPERATORS)
def keyframe(request: HttpRequest, railcar_id: int, index: int) -> HttpResponse:
    railcar = railcar_for(request.user, railcar_id)
    layer = Layer.objects.filter(railcar=railcar, index=index).select_related("keyframe").first()
    data = thumbnail_bytes(frame=layer.keyframe) if layer and layer.keyframe else None
    if data is None:
        raise Http404("No such keyframe.")
    response = HttpResponse(data, content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=3600"
    return response
