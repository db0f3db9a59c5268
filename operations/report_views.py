"""The reports helper's pages and API: the report of one unloading (page, printable page, JSON),
the CSV of a shift or a day, Grad-CAM explanations, and the admins' webhook delivery log.

Who may: operators, senior inspectors and admins, for the lines granted to them
(operations.access): another line's railcar answers the same 404 as one that does not exist.
Annotators never reach any of it (403 on the pages, 404 on the explanation images).
"""

import datetime as dt

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.models import Layer, Railcar
from operations import explanations, webhooks
from operations.access import railcar_for, visible_railcars
from operations.models import WebhookDelivery
from operations.report_csv import csv_lines, railcars_in, shift_of
from operations.reports import unloading_report
from scrapannot.api import HasRole
from scrapannot.roles import Role, has_role, role_required

READERS = (Role.OPERATOR, Role.SENIOR_INSPECTOR, Role.ADMIN)
PAGE_SIZE = 50


@require_GET
@role_required(*READERS)
def report(request: HttpRequest, railcar_id: int) -> HttpResponse:
    railcar = railcar_for(request.user, railcar_id)
    layers = Layer.objects.filter(railcar=railcar, keyframe__isnull=False).order_by("index")
    day, shift = shift_of(railcar.unloading_started_at)
    context = {
        "day": day.isoformat(),
        "shift": shift,
        "report": unloading_report(railcar),
        "railcar": railcar,
        "layer_indexes": list(layers.values_list("index", flat=True)),
        "printable": request.GET.get("print") == "1",
    }
    template = "operations/report_print.html" if context["printable"] else "operations/report.html"
    response = render(request, template, context)
    response["Cache-Control"] = "private, no-store"
    return response


class UnloadingReportApi(APIView):
    """GET /api/v1/unloadings/<id>/report/: the operational report of one unloading."""

    permission_classes = [HasRole]
    allowed_roles = READERS

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, operation_id="unloading_report")
    def get(self, request: Request, railcar_id: int) -> Response:
        railcar = railcar_for(request.user, railcar_id)
        return Response(unloading_report(railcar), headers={"Cache-Control": "private, no-store"})


class CsvForm(forms.Form):
    day = forms.DateField(input_formats=["%Y-%m-%d"])
    shift = forms.IntegerField(required=False, min_value=1, max_value=24)


@require_GET
@role_required(*READERS)
def reports_csv(request: HttpRequest) -> HttpResponse:
    form = CsvForm(request.GET)
    if not form.is_valid():
        return HttpResponseBadRequest(f"day=YYYY-MM-DD and an optional shift=N: {form.errors}")
    day: dt.date = form.cleaned_data["day"]
    shift: int | None = form.cleaned_data["shift"]
    try:
        railcars = railcars_in(visible_railcars(request.user), day=day, shift=shift)
    except ValueError as exc:
        return HttpResponseBadRequest(str(exc))
    name = f"reports-{day.isoformat()}" + (f"-shift-{shift}" if shift else "") + ".csv"
    response = StreamingHttpResponse(
        csv_lines(railcars.iterator(chunk_size=200)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "private, no-store"
    return response


def _explanation_railcar(request: HttpRequest, railcar_id: int) -> Railcar:
    """Operators for their lines; senior inspectors (the adjudication page is not by line) and
    admins for every railcar; everyone else 404, like a railcar that does not exist."""
    if has_role(request.user, Role.SENIOR_INSPECTOR, Role.ADMIN):
        return get_object_or_404(Railcar, pk=railcar_id)
    if has_role(request.user, Role.OPERATOR):
        return railcar_for(request.user, railcar_id)
    raise Http404("No such unloading.")


@require_GET
@login_required
def explanation(request: HttpRequest, railcar_id: int, index: int) -> HttpResponse:
    railcar = _explanation_railcar(request, railcar_id)
    try:
        found = explanations.request(railcar=railcar, layer_index=index)
    except explanations.NotExplainable as exc:
        raise Http404("No explanation for this layer.") from exc
    if found is None:
        response = HttpResponse("Computing; retry shortly.", status=202, content_type="text/plain")
        response["Retry-After"] = "3"
        response["Cache-Control"] = "private, no-store"  # the image is coming: ask again
        return response
    response = HttpResponse(explanations.png_bytes(found), content_type="image/png")
    response["Content-Disposition"] = "inline; filename=gradcam.png"
    # The heatmap reveals the model's view of the railcar: never kept by a shared cache. Short
    # in the browser's, since the URL serves whichever model is in production.
    response["Cache-Control"] = "private, max-age=300"
    return response


class ReplayForm(forms.Form):
    delivery = forms.IntegerField(min_value=1)


@require_http_methods(["GET", "POST"])
@role_required(Role.ADMIN)
def webhook_log(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = ReplayForm(request.POST)
        if not form.is_valid():
            return HttpResponseBadRequest("delivery: a delivery id")
        delivery = get_object_or_404(
            WebhookDelivery.objects.select_related("endpoint"), pk=form.cleaned_data["delivery"]
        )
        copy = webhooks.replay(delivery=delivery, actor=request.user)
        messages.success(request, f"Delivery {delivery.uid} replayed as {copy.uid}.")
        return redirect("operations:webhooks")
    deliveries = WebhookDelivery.objects.select_related("endpoint", "railcar").prefetch_related(
        "attempt_log"
    )
    status = request.GET.get("status", "")
    if status in WebhookDelivery.Status.values:
        deliveries = deliveries.filter(status=status)
    page = Paginator(deliveries, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"page": page, "status": status, "statuses": WebhookDelivery.Status.choices}
    return render(request, "operations/webhooks.html", context)
