"""The dataset pages: only admins get in; the freeze form, the detail with its charts, the
comparison and the export download."""

import io
import zipfile

import pytest
from django.test import Client
from django.urls import reverse

from mlloop.datasets import freeze_version
from mlloop.models import DatasetVersion
from scrapannot.models import AuditEvent
from tests.conftest import client_for
from tests.mlloop.dataset_factories import labeled_railcar, relabel

pytestmark = pytest.mark.django_db
INTRUDERS = ["annotator", "senior", "plant", "outsider"]


@pytest.fixture
def v1(admin_user) -> DatasetVersion:
    labeled_railcar("1.0", "3A", with_files=True)
    labeled_railcar("6.0", "3AH", with_files=True)
    return freeze_version(actor=admin_user, name="pilot")


def urls(number: int) -> list[tuple[str, str]]:
    return [
        ("get", reverse("mlloop:datasets")),
        ("post", reverse("mlloop:datasets")),
        ("get", reverse("mlloop:dataset", args=[number])),
        ("get", reverse("mlloop:dataset-compare") + f"?a={number}&b={number}"),
        ("get", reverse("mlloop:dataset-export", args=[number])),
    ]


def test_anonymous_users_are_sent_to_log_in(v1):
    for method, url in urls(v1.number):
        response = getattr(Client(), method)(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("who", INTRUDERS)
def test_everyone_but_admins_is_refused(v1, who, request):
    client = client_for(request.getfixturevalue(who))
    for method, url in urls(v1.number):
        assert getattr(client, method)(url, {"name": "x"}).status_code == 403
    assert DatasetVersion.objects.count() == 1


def test_the_list_shows_versions_and_what_a_freeze_would_take(v1, admin_user):
    relabeled = labeled_railcar("2.0")
    relabel(relabeled, "2.5")
    page = client_for(admin_user).get(reverse("mlloop:datasets")).content.decode()
    assert "v1" in page and "pilot" in page and v1.content_hash[:12] in page
    assert "takes <strong>3</strong> railcars" in page
    assert "<strong>1</strong> changed" in page and "1 added" in page


def test_an_admin_freezes_a_version_through_the_form(v1, admin_user):
    labeled_railcar("3.0")
    response = client_for(admin_user).post(
        reverse("mlloop:datasets"), {"name": "second", "notes": "more railcars"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("mlloop:dataset", args=[2])
    version = DatasetVersion.objects.get(number=2)
    assert (version.name, version.notes, version.created_by) == (
        "second",
        "more railcars",
        admin_user,
    )


def test_bad_form_input_and_refused_freezes_say_why_and_change_nothing(v1, admin_user):
    client = client_for(admin_user)
    too_long = client.post(reverse("mlloop:datasets"), {"name": "x" * 121})
    assert too_long.status_code == 400 and "at most 120 characters" in too_long.content.decode()
    unchanged = client.post(reverse("mlloop:datasets"), {"name": "<script>alert(1)</script>"})
    assert unchanged.status_code == 409
    body = unchanged.content.decode()
    assert "Nothing changed since v1" in body and "<script>alert(1)" not in body
    assert DatasetVersion.objects.count() == 1


def test_freezing_nothing_through_the_form_says_so(admin_user):
    response = client_for(admin_user).post(reverse("mlloop:datasets"), {"name": ""})
    assert response.status_code == 409
    assert "nothing to freeze" in response.content.decode()


def test_the_detail_page_draws_the_histograms_as_inline_svg(v1, admin_user):
    response = client_for(admin_user).get(reverse("mlloop:dataset", args=[1]))
    page = response.content.decode()
    assert response.status_code == 200
    assert page.count("<svg") == 2 and "<script" not in page.split("<main>")[1]
    assert "3AH" in page and v1.content_hash in page
    assert client_for(admin_user).get(reverse("mlloop:dataset", args=[9])).status_code == 404


def test_the_detail_page_paginates_its_items(admin_user, settings):
    for i in range(105):
        labeled_railcar(f"{i % 10}.0")
    freeze_version(actor=admin_user)
    client = client_for(admin_user)
    first = client.get(reverse("mlloop:dataset", args=[1])).content.decode()
    second = client.get(reverse("mlloop:dataset", args=[1]) + "?page=2").content.decode()
    assert first.count("<tr><td><code>") == 100 and second.count("<tr><td><code>") == 5
    assert "page 1 of 2" in first
    assert client.get(reverse("mlloop:dataset", args=[1]) + "?page=zz").status_code == 200


def test_the_compare_page_shows_added_and_relabeled_railcars(v1, admin_user):
    railcar = v1.items.order_by("id").first().railcar
    relabel(railcar, "9.5", "cast iron")
    labeled_railcar("0.5")
    freeze_version(actor=admin_user)
    client = client_for(admin_user)
    page = client.get(reverse("mlloop:dataset-compare"), {"a": 1, "b": 2}).content.decode()
    assert "<strong>1</strong> added" in page and "<strong>1</strong> relabeled" in page
    assert "1.0 → 9.5" in page and "3A → cast iron" in page
    assert "No railcar changed split." in page
    for bad in ({"a": "x", "b": 1}, {"a": 1, "b": 7}, {"a": -1, "b": 1}, {"a": "1" * 40, "b": 1}):
        assert client.get(reverse("mlloop:dataset-compare"), bad).status_code == 400
    unchosen = client.get(reverse("mlloop:dataset-compare"))
    assert unchosen.status_code == 200
    assert (unchosen.context["a"].number, unchosen.context["b"].number) == (1, 2)
    assert '<option value="2" selected>' in unchosen.content.decode()  # "To": the newest


def test_the_export_downloads_as_a_zip_without_plant_ids_unless_asked(v1, admin_user):
    client = client_for(admin_user)
    response = client.get(reverse("mlloop:dataset-export", args=[1]))
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert 'filename="dataset-v1.zip"' in response["Content-Disposition"]
    data = b"".join(response.streaming_content)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        manifest = archive.read("manifest.jsonl").decode()
    assert "RC-" not in manifest and '"real_id"' not in manifest
    with_ids = b"".join(
        client.get(reverse("mlloop:dataset-export", args=[1]), {"real_ids": "1"}).streaming_content
    )
    with zipfile.ZipFile(io.BytesIO(with_ids)) as archive:
        assert '"real_id":"RC-' in archive.read("manifest.jsonl").decode()
    events = AuditEvent.objects.filter(action="dataset.exported").order_by("id")
    assert [e.payload["real_ids"] for e in events] == [False, True]
