"""The admins' railcar list: search by real id, uid, status and line; paging; hostile input."""

import pytest
from django.urls import reverse

from labeling.models import Railcar
from tests.adjudication.factories import rated_railcar
from tests.conftest import client_for
from tests.labeling.factories import pool_railcar

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]


def test_the_list_finds_railcars_by_real_id_uid_status_and_line(admin_user):
    rated, _ = rated_railcar(["4", "4", "4"], ["3A", "3A", "3A"])
    waiting = pool_railcar(with_files=False)
    Railcar.objects.filter(pk=waiting.pk).update(line="L9")
    client = client_for(admin_user)
    url = reverse("operations:railcars")

    def found(**params) -> list[str]:
        response = client.get(url, params)
        assert response.status_code == 200
        return [r.real_id for r in response.context["page"]]

    assert found(q=rated.real_id[-4:]) == [rated.real_id]
    assert found(q=str(waiting.uid)) == [waiting.real_id]
    assert found(q=str(waiting.uid).upper()) == [waiting.real_id]
    assert found(status="rated") == [rated.real_id]
    assert found(line="L9") == [waiting.real_id]
    assert sorted(found()) == sorted([rated.real_id, waiting.real_id])
    html = client.get(url, {"q": rated.real_id}).content.decode()
    assert reverse("operations:railcar-timeline", args=[rated.pk]) in html


def test_the_list_pages_by_fifty(admin_user):
    for _ in range(51):
        pool_railcar(with_files=False, layers=1, frames_per_layer=1)
    client = client_for(admin_user)
    url = reverse("operations:railcars")

    first = client.get(url, {"line": "L2"})
    second = client.get(url, {"line": "L2", "page": 2})

    assert len(first.context["page"]) == 50 and len(second.context["page"]) == 1
    assert "line=L2&amp;page=2" in first.content.decode()
    for page in ("abc", "-1", "0", "99999999999999999999", "1e3"):
        assert client.get(url, {"page": page}).status_code == 200


@pytest.mark.parametrize(
    "q",
    [
        "' OR 1=1 --",
        "RC-%",
        "_",
        "%",
        "\\",
        "'); DROP TABLE labeling_railcar; --",
        "Ж🚂 ​‮",
        "<script>alert(1)</script>",
        "00000000-0000-0000-0000-000000000000",
    ],
)
def test_malicious_search_text_matches_nothing_and_breaks_nothing(admin_user, q):
    railcar = pool_railcar(with_files=False)

    response = client_for(admin_user).get(reverse("operations:railcars"), {"q": q})

    assert response.status_code == 200
    assert list(response.context["page"]) == []
    assert "<script>alert(1)</script>" not in response.content.decode()
    assert Railcar.objects.filter(pk=railcar.pk).exists()


@pytest.mark.parametrize(
    "params, field",
    [
        ({"q": "x" * 100_000}, "q"),
        ({"q": "RC\x00-1"}, "q"),
        ({"status": "labeled' OR '1'='1"}, "status"),
        ({"line": "L" * 33}, "line"),
        ({"line": "L2\x00"}, "line"),
    ],
)
def test_bad_search_input_gets_a_clear_error(admin_user, params, field):
    pool_railcar(with_files=False)

    response = client_for(admin_user).get(reverse("operations:railcars"), params)

    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert 'id="search-errors"' in response.content.decode()
    assert response.context["page"] is None
