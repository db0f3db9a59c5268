"""Every Django-admin registration either audits what it changes or is read-only, and audited
data is never deleted there (issue 16, item 7). Walks the registry, so a model registered later
without either rule fails here."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.test import RequestFactory
from django.urls import reverse

from operations.models import WebhookEndpoint
from scrapannot.admin_rules import AuditedAdmin
from scrapannot.models import AuditEvent
from tests.adjudication.factories import rated_railcar
from tests.conftest import client_for

OUR_APPS = {"scrapannot", "labeling", "adjudication", "mlloop", "operations"}
# Configuration the admin is the editor of; every other model of ours is audited data.
CONFIGURATION = {"operations.webhookendpoint"}


@pytest.fixture
def superuser(db) -> User:
    return User.objects.create_superuser("root", "root@example.com", "root-pass-1")


def registrations():
    return sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label_lower)


def overrides(model_admin: admin.ModelAdmin, method: str) -> bool:
    return getattr(type(model_admin), method) is not getattr(admin.ModelAdmin, method)


def test_every_registration_audits_what_it_changes_or_is_read_only(superuser):
    request = RequestFactory().get("/admin/")
    request.user = superuser
    for model, model_admin in registrations():
        label = model._meta.label_lower
        if model_admin.has_add_permission(request) or model_admin.has_change_permission(request):
            assert overrides(model_admin, "save_model"), f"{label}: edits are not audited"
        if model_admin.has_delete_permission(request):
            assert overrides(model_admin, "delete_model"), f"{label}: deletes are not audited"
            assert overrides(model_admin, "delete_queryset"), f"{label}: bulk delete unaudited"
        assert set(model_admin.get_actions(request)) <= {"delete_selected"}, (
            f"{label}: a bulk action other than the audited delete"
        )


def test_audited_data_cannot_be_deleted_in_the_admin(superuser):
    request = RequestFactory().get("/admin/")
    request.user = superuser
    for model, model_admin in registrations():
        label = model._meta.label_lower
        if model._meta.app_label not in OUR_APPS or label in CONFIGURATION:
            continue
        assert not model_admin.has_delete_permission(request), f"{label} may be deleted"
        assert "delete_selected" not in model_admin.get_actions(request), label


def test_deleting_a_frame_of_a_labeled_railcar_is_refused_and_leaves_it(superuser):
    railcar, _ = rated_railcar([10, 12, 11], ["3A", "3A", "3A"])
    frame = railcar.frames.first()
    url = reverse("admin:labeling_frame_delete", args=[frame.pk])
    response = client_for(superuser).post(url, {"post": "yes"})
    assert response.status_code == 403
    assert railcar.frames.filter(pk=frame.pk).exists()


def test_bulk_deleting_webhook_endpoints_writes_one_event_each(superuser):
    endpoints = [
        WebhookEndpoint.objects.create(name=f"hook {n}", url=f"https://example.com/{n}", secret="s")
        for n in range(2)
    ]
    response = client_for(superuser).post(
        reverse("admin:operations_webhookendpoint_changelist"),
        {"action": "delete_selected", "_selected_action": [e.pk for e in endpoints], "post": "yes"},
    )
    assert response.status_code == 302
    assert not WebhookEndpoint.objects.exists()
    events = AuditEvent.objects.filter(action="webhook.endpoint_deleted")
    deleted = sorted(events.values_list("object_id", flat=True))
    assert deleted == sorted(str(e.pk) for e in endpoints)


def test_giving_a_user_a_group_in_the_admin_is_audited_with_the_groups(superuser):
    user = User.objects.create_user("newcomer", password="newcomer-pass-1")
    group = Group.objects.get_or_create(name="senior inspector")[0]
    response = client_for(superuser).post(
        reverse("admin:auth_user_change", args=[user.pk]),
        {
            "username": "newcomer", "is_active": "on", "groups": [group.pk],
            "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
            "initial-date_joined_0": "2026-01-01", "initial-date_joined_1": "00:00:00",
        },
    )  # fmt: skip
    assert response.status_code == 302, response.content[:2000]
    event = AuditEvent.objects.get(action="admin.auth.user.changed", object_id=str(user.pk))
    assert event.payload["fields"]["groups"] == ["senior inspector"]
    assert "password" not in event.payload["fields"]


def test_the_audited_mixin_is_what_third_party_registrations_use():
    for model in (User, Group):
        assert isinstance(admin.site._registry[model], AuditedAdmin)


def test_adding_a_user_in_the_admin_is_audited_without_the_password(superuser):
    response = client_for(superuser).post(
        reverse("admin:auth_user_add"),
        {"username": "fresh", "usable_password": "true",
         "password1": "a-Long-pass-9921", "password2": "a-Long-pass-9921"},
    )  # fmt: skip
    assert response.status_code == 302, response.content[:2000]
    event = AuditEvent.objects.get(action="admin.auth.user.added")
    assert event.payload["fields"]["password1"] == "(changed)"
    assert "a-Long-pass-9921" not in str(event.payload)
