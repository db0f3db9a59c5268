"""The rating guidelines: admins publish versions (audited, the old ones kept); only admins reach
the editor; annotators read the newest one in the workspace, and nothing else comes with it."""

import pytest
from django.test import Client

from labeling import guidelines, pool
from labeling.models import Guideline
from scrapannot.models import AuditEvent
from tests.labeling.factories import annotators, pool_railcar

pytestmark = pytest.mark.django_db
EDIT = "/guidelines/edit/"


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_each_publication_is_a_new_audited_version_and_the_old_ones_stay(admin_user):
    first = guidelines.publish_guidelines(author=admin_user, text="3A: clean scrap.")
    second = guidelines.publish_guidelines(author=admin_user, text="3A: clean scrap.\n\nMore.")

    assert (first.version, second.version) == (1, 2)
    assert guidelines.current_guidelines() == second
    assert Guideline.objects.count() == 2
    events = AuditEvent.objects.filter(action="guidelines.published").order_by("id")
    assert [(e.actor, e.payload["version"]) for e in events] == [(admin_user, 1), (admin_user, 2)]


def test_an_empty_or_unchanged_text_is_not_published(admin_user):
    guidelines.publish_guidelines(author=admin_user, text="Grades.")

    for text in ("  ", "Grades.\n"):
        with pytest.raises(ValueError):
            guidelines.publish_guidelines(author=admin_user, text=text)
    assert Guideline.objects.count() == 1


def test_an_admin_publishes_from_the_editor(admin_user):
    client = client_of(admin_user)

    response = client.post(EDIT, {"text": "Contamination: share of the load's surface."})

    assert response.status_code == 302
    assert guidelines.current_guidelines().text.startswith("Contamination")
    page = client.get(EDIT)
    assert page.status_code == 200 and b"version 1" in page.content


def test_the_editor_shows_why_a_text_was_refused(admin_user):
    guidelines.publish_guidelines(author=admin_user, text="Same.")

    response = client_of(admin_user).post(EDIT, {"text": "Same."})

    assert response.status_code == 200
    assert b"already in force" in response.content
    assert Guideline.objects.count() == 1


@pytest.mark.parametrize("who", ["senior", "outsider", "plant"])
def test_only_admins_reach_the_editor(who, request):
    user = request.getfixturevalue(who)
    client = client_of(user)

    assert client.get(EDIT).status_code == 403
    assert client.post(EDIT, {"text": "hijacked"}).status_code == 403
    assert not Guideline.objects.exists()


def test_annotators_cannot_edit_the_guidelines():
    (a,) = annotators(1)

    assert client_of(a).post(EDIT, {"text": "hijacked"}).status_code == 403
    assert not Guideline.objects.exists()


def test_anonymous_visitors_are_sent_to_log_in():
    response = Client().get(EDIT)

    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_workspace_carries_the_guidelines_text_and_version_only(admin_user):
    guidelines.publish_guidelines(author=admin_user, text="Grade 3AH: heavy scrap.")
    pool_railcar()
    (a,) = annotators(1)
    held = pool.next_assignment(annotator=a)

    page = client_of(a).get(f"/annotate/{held.uid}/").content.decode()

    assert "Grade 3AH: heavy scrap." in page
    assert "Version 1" in page
    assert admin_user.username not in page
