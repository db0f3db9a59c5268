"""Admin pages of the model registry: the versions, one version's run, promotion and rollback.

Admins only: a senior sees the model's estimate on the adjudication page, never here, and an
annotator must never see a prediction at all.
"""

import math
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.safestring import SafeString
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from mlloop import registry
from mlloop.models import DatasetVersion, ModelVersion
from scrapannot import charts
from scrapannot.roles import Role, role_required

LOG_TAIL_LINES = 20
# metric key, title, and the axis each chart starts from (widened to take in every value).
CHART_METRICS = (
    ("mae", "contamination MAE (percentage points)", 0.0, 1.0, 0.5),
    ("r2", "contamination R²", 0.0, 1.0, 0.25),
    ("f1_macro", "grade macro F1", 0.0, 1.0, 0.25),
)
SPLIT_COLOURS = (("val", charts.colour(0)), ("test", charts.colour(1)))


class StartRunForm(forms.Form):
    dataset_version = forms.ModelChoiceField(
        queryset=DatasetVersion.objects.all(), to_field_name="number"
    )


class PromoteForm(forms.Form):
    action = forms.ChoiceField(choices=[("promote", "promote"), ("rollback", "roll back")])
    reason = forms.CharField(max_length=500, strip=True)


def _metrics_charts(versions: list[ModelVersion]) -> list[dict[str, Any]]:
    """MAE, R2 and F1 over the succeeded versions, oldest first, val and test as two lines."""
    done = sorted(
        (v for v in versions if v.status == ModelVersion.Status.SUCCEEDED), key=lambda v: v.number
    )
    labels = [f"v{v.number}" for v in done]
    out = []
    for key, title, low, high, step in CHART_METRICS:
        series = [
            charts.Series(
                split, [_number((v.metrics.get(split) or {}).get(key)) for v in done], colour
            )
            for split, colour in SPLIT_COLOURS
        ]
        values = [x for s in series for x in s.values if x is not None]
        svg = None
        if values:
            axis = charts.axis_around(values, low=low, high=high, step=step)
            svg = charts.line_chart(label=title, x_labels=labels, series=series, y_axis=axis)
        out.append({"title": title, "svg": svg, "series": series})
    return out


def _number(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


@require_http_methods(["GET", "POST"])
@role_required(Role.ADMIN)
def model_list(request: HttpRequest) -> HttpResponse:
    form = StartRunForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if not form.is_valid():
            messages.error(request, "Choose a dataset version to train on.")
        else:
            try:
                version = registry.create_run(
                    dataset_version=form.cleaned_data["dataset_version"], actor=request.user
                )
            except ValidationError as exc:  # the configured model settings are unusable
                messages.error(request, "; ".join(exc.messages))
                form.add_error(None, exc)
            else:
                messages.success(request, f"Training run v{version.number} queued.")
                return redirect("mlloop:model", number=version.number)
    versions = list(ModelVersion.objects.select_related("dataset_version"))
    return render(
        request,
        "mlloop/models.html",
        {"versions": versions, "charts": _metrics_charts(versions), "form": form},
        status=400 if form.errors else 200,
    )


def _confusion(metrics: dict[str, Any]) -> dict[str, Any] | None:
    """The test split's grade confusion matrix as heat-map rows (true grade by predicted)."""
    confusion = metrics.get("confusion") or {}
    grades, matrix = confusion.get("grades"), confusion.get("matrix")
    if not grades or not matrix or len(matrix) != len(grades):
        return None
    rows = charts.heat_rows(grades, matrix)
    return {"grades": grades, "rows": [{"grade": g, "cells": cells} for g, cells in rows]}


def _history_chart(history: list[dict[str, Any]]) -> SafeString | None:
    """Validation MAE per epoch of the run (the kept epoch is the lowest)."""
    values = [_number(h.get("val_mae")) for h in history if isinstance(h, dict)]
    if not any(v is not None for v in values):
        return None
    return charts.line_chart(
        label="validation MAE per epoch",
        x_labels=[str(i) for i in range(1, len(values) + 1)],
        series=[charts.Series("val MAE", values)],
        y_axis=charts.axis_around([v for v in values if v is not None], low=0, high=1, step=0.5),
    )


def _version(number: int) -> ModelVersion:
    return get_object_or_404(ModelVersion.objects.select_related("dataset_version"), number=number)


def _render_detail(
    request: HttpRequest, version: ModelVersion, *, status: int = 200
) -> HttpResponse:
    metrics = version.metrics or {}
    production = registry.production()
    splits = [split for split in ("train", "val", "test") if metrics.get(split)]
    metric_names = sorted(
        {k for s in splits for k, v in metrics[s].items() if isinstance(v, int | float)}
    )
    context = {
        "version": version,
        "metric_names": metric_names,
        "metric_rows": [(s, [metrics[s].get(k) for k in metric_names]) for s in splits],
        "confusion": _confusion(metrics.get("test") or {}),
        "per_class": sorted(((metrics.get("test") or {}).get("per_class") or {}).items()),
        "settings_rows": sorted(version.settings.items()),
        "running": version.status in (ModelVersion.Status.QUEUED, ModelVersion.Status.RUNNING),
        "production": production,
        "history_chart": _history_chart(metrics.get("history") or []),
        "promotion": metrics.get("promotion"),
        "can_promote": version.status == ModelVersion.Status.SUCCEEDED
        and not version.is_production,
    }
    return render(request, "mlloop/model.html", context, status=status)


@require_GET
@role_required(Role.ADMIN)
def model_detail(request: HttpRequest, number: int) -> HttpResponse:
    version = _version(number)
    if request.GET.get("download") == "artifact":
        if not version.artifact:
            raise Http404("this version has no artifact")
        return FileResponse(
            version.artifact.open("rb"), as_attachment=True, filename=f"model-v{version.number}.pt"
        )
    return _render_detail(request, version)


@require_GET
@role_required(Role.ADMIN)
def progress(request: HttpRequest, number: int) -> JsonResponse:
    version = get_object_or_404(ModelVersion, number=number)
    return JsonResponse(
        {
            "number": version.number,
            "status": version.status,
            "progress": max(0.0, min(1.0, version.progress)),
            "stage": version.stage,
            "log_tail": version.log.splitlines()[-LOG_TAIL_LINES:],
            "finished": version.status
            in (ModelVersion.Status.SUCCEEDED, ModelVersion.Status.FAILED),
        }
    )


@require_POST
@role_required(Role.ADMIN)
def promote(request: HttpRequest, number: int) -> HttpResponse:
    version = _version(number)
    form = PromoteForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_errors(form))
        return _render_detail(request, version, status=400)
    reason = form.cleaned_data["reason"]
    try:
        if form.cleaned_data["action"] == "promote":
            registry.promote(model_version=version, actor=request.user, reason=reason)
            messages.success(request, f"v{version.number} is now the production model.")
        else:
            restored = registry.rollback(actor=request.user, reason=reason)
            messages.success(request, f"Rolled back: v{restored.number} is the production model.")
    except registry.PromotionError as exc:
        messages.error(request, str(exc))
        return _render_detail(request, _version(number), status=400)
    return redirect("mlloop:model", number=number)


def _form_errors(form: forms.Form) -> str:
    return "; ".join(f"{field}: {' '.join(errors)}" for field, errors in form.errors.items())
