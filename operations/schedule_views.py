"""The admin page of the product's Celery beat schedules: every app's periodic tasks, edited in
one place (the editing and its audit are `operations.schedules`)."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from django_celery_beat.validators import (
    day_of_week_validator,
    hour_validator,
    minute_validator,
)

from operations import schedules as schedules_domain
from scrapannot.roles import Role, role_required


class ScheduleForm(forms.Form):
    task = forms.IntegerField(widget=forms.HiddenInput)
    # The task's date_changed as the form saw it: a second admin's stale form is refused.
    seen = forms.CharField(max_length=64, widget=forms.HiddenInput)
    enabled = forms.BooleanField(required=False)
    minute = forms.CharField(max_length=60, required=False, validators=[minute_validator])
    hour = forms.CharField(max_length=60, required=False, validators=[hour_validator])
    day_of_week = forms.CharField(max_length=60, required=False, validators=[day_of_week_validator])
    every = forms.IntegerField(min_value=1, max_value=100_000, required=False)
    period = forms.ChoiceField(choices=IntervalSchedule.PERIOD_CHOICES, required=False)


def _form_errors(form: forms.Form) -> str:
    return "; ".join(f"{field}: {' '.join(errors)}" for field, errors in form.errors.items())


@require_http_methods(["GET", "POST"])
@role_required(Role.ADMIN)
def schedules(request: HttpRequest) -> HttpResponse:
    status = 200
    if request.method == "POST":
        form = ScheduleForm(request.POST)
        try:
            if not form.is_valid():
                raise ValidationError(_form_errors(form))
            task = schedules_domain.edit_schedule(data=form.cleaned_data, actor=request.user)
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
            status = 409 if isinstance(exc, schedules_domain.StaleSchedule) else 400
        else:
            messages.success(request, f"{task.name} saved.")
            return redirect("operations:schedules")
    tasks = PeriodicTask.objects.select_related("crontab", "interval", "solar", "clocked")
    # The learning loop first, then the other product schedules, each by name.
    rows = sorted(tasks, key=lambda t: (not t.task.startswith("mlloop."), t.name))
    runs_now = schedules_domain.last_runs_now(rows)
    for row in rows:
        row.run_now_event = runs_now.get(row.pk)
    context = {"tasks": rows, "periods": IntervalSchedule.PERIOD_CHOICES}
    return render(request, "operations/schedules.html", context, status=status)


@require_POST
@role_required(Role.ADMIN)
def run_now(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        task = schedules_domain.run_now(task_id=pk, actor=request.user)
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    else:
        messages.success(request, f"{task.name}: sent to run now ({task.task}).")
    return redirect("operations:schedules")
