"""The audit page's filters: by action, actor, railcar and time, newest first."""

import json
from datetime import datetime
from typing import Any

from django import forms
from django.db.models import Q, QuerySet

from scrapannot.models import AuditEvent

RAILCAR_TYPE = "labeling.railcar"  # the label audit.record writes for a Railcar


def search_events(
    *,
    action: str = "",
    actor: str = "",
    railcar_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.order_by("-id")
    if action:
        events = events.filter(action=action)
    if actor:
        events = events.filter(actor_label__iexact=actor)
    if railcar_id is not None:
        # Events on the railcar itself, and those on its assignments, cases, decisions... that
        # name it in their payload (the domain functions write "railcar": its id).
        events = events.filter(
            Q(object_type=RAILCAR_TYPE, object_id=str(railcar_id)) | Q(payload__railcar=railcar_id)
        )
    if since is not None:
        events = events.filter(created_at__gte=since)
    if until is not None:
        events = events.filter(created_at__lte=until)
    return events


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(required=False)
    actor = forms.CharField(required=False, max_length=150)
    railcar = forms.IntegerField(
        required=False, min_value=1, label="Railcar id", help_text="the railcar's database id"
    )
    since = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    until = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        actions = AuditEvent.objects.order_by("action").values_list("action", flat=True)
        self.fields["action"].choices = [("", "any action")] + [(a, a) for a in actions.distinct()]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", "The end of the range is before its start.")
        return cleaned

    def events(self) -> QuerySet[AuditEvent]:
        data = self.cleaned_data
        return search_events(
            action=data.get("action") or "",
            actor=(data.get("actor") or "").strip(),
            railcar_id=data.get("railcar"),
            since=data.get("since"),
            until=data.get("until"),
        )


def pretty_payload(payload: Any) -> str:
    return json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False)
