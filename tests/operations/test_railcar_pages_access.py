"""Who reaches the railcar list and timeline pages: admins only, by GET only."""

import pytest
from django.urls import reverse

from tests.adjudication.factories import rated_railcar
from tests.conftest import client_for
from tests.labeling.factories import pool_railcar

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]


@pytest.mark.parametrize("who", ["anonymous", "annotator", "senior", "plant", "outsider"])
def test_nobody_but_admins_reaches_the_railcar_pages(who, request):
    railcar, _ = rated_railcar(["4", "4", "4"], ["3A", "3A", "3A"])
    user = None if who == "anonymous" else request.getfixturevalue(who)
    client = client_for(user)

    for url in (
        reverse("operations:railcars"),
        reverse("operations:railcars") + f"?q={railcar.real_id}",
        reverse("operations:railcar-timeline", args=[railcar.pk]),
        reverse("operations:railcar-timeline", args=[railcar.pk + 1000]),
    ):
        response = client.get(url)
        if user is None:
            assert response.status_code == 302 and "/accounts/login/" in response["Location"]
        else:
            assert response.status_code == 403, url
        assert railcar.real_id.encode() not in response.content


def test_a_plant_token_does_not_open_the_pages(plant_client):
    railcar = pool_railcar()
    response = plant_client.get(reverse("operations:railcar-timeline", args=[railcar.pk]))
    assert response.status_code == 302


def test_the_pages_answer_get_only(admin_user):
    railcar = pool_railcar()
    client = client_for(admin_user)
    assert client.post(reverse("operations:railcars")).status_code == 405
    url = reverse("operations:railcar-timeline", args=[railcar.pk])
    assert client.post(url).status_code == 405


@pytest.mark.parametrize("railcar_id", [999999, 2**31, 2**63, 10**30])
def test_an_unknown_railcar_is_404(admin_user, railcar_id):
    url = reverse("operations:railcar-timeline", args=[railcar_id])
    assert client_for(admin_user).get(url).status_code == 404
