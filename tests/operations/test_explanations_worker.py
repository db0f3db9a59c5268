"""Grad-CAM on a real worker of the "explanations" queue: the first view answers 202, the
worker computes the heatmap once, later views get the PNG."""

import io

from django.urls import reverse
from PIL import Image

from operations.models import Explanation
from tests.celery_worker import wait_for
from tests.conftest import client_for
from tests.mlloop.model_factories import production_model, scrap_railcar
from tests.operations.test_explanations import TINY_CAM


def test_the_explanations_worker_computes_the_heatmap_the_first_view_asked_for(
    on_postgresql, celery_worker, admin_user
):
    production_model(**TINY_CAM)
    railcar = scrap_railcar(5.0, layers=2)
    celery_worker.start(queues="explanations")
    client = client_for(admin_user)
    url = reverse("operations:explanation", args=[railcar.pk, 2])

    assert client.get(url).status_code == 202
    assert client.get(url).status_code in (200, 202)  # asked again while it is computed

    wait_for(lambda: Explanation.objects.filter(railcar=railcar).exists(), what="the heatmap")
    response = client.get(url)
    assert response.status_code == 200
    assert Image.open(io.BytesIO(response.content)).format == "PNG"
    assert Explanation.objects.filter(railcar=railcar).count() == 1
