"""The assignment and rating answers are built by hand for speed (labeling.annotation_apis);
they must equal what DRF builds from the declared fields, which the API schema documents."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from labeling import annotation, pool
from labeling.annotation_apis import (
    AssignmentOutputSerializer,
    LayerOutputSerializer,
    OwnRatingOutputSerializer,
)
from labeling.models import Assignment
from tests.labeling.factories import annotators, pool_railcar

pytestmark = pytest.mark.django_db


def drf_answer(assignment: Assignment) -> dict:
    """DRF's field-by-field answer, nested serializers included."""
    serializer = AssignmentOutputSerializer(assignment)
    answer = dict(serializers.Serializer.to_representation(serializer, assignment))
    layers = annotation.workspace_layers(assignment=assignment)
    answer["layers"] = LayerOutputSerializer(layers, many=True).data
    rating = getattr(assignment, "rating", None)
    answer["rating"] = OwnRatingOutputSerializer(rating).data if rating else None
    return answer


def same(assignment: Assignment) -> None:
    by_hand = AssignmentOutputSerializer(assignment).data
    by_drf = drf_answer(assignment)
    assert by_hand == by_drf
    # The same bytes on the wire: keys in the same order, "4.5" not 4.5.
    assert JSONRenderer().render(by_hand) == JSONRenderer().render(by_drf)


def test_every_kind_of_assignment_is_answered_as_drf_answers_it():
    railcar = pool_railcar(layers=2, frames_per_layer=3)
    a, b = annotators(2)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=a)[0]}")
    fresh = pool.next_assignment(annotator=a)
    same(fresh)

    frames = list(railcar.frames.order_by("index"))
    base = f"/api/v1/assignments/{fresh.uid}/frames"
    assert client.put(f"{base}/{frames[1].uid}/exclusion/", {"code": "blur", "note": "x"},
                      format="json").status_code == 200  # fmt: skip
    prompts = {"points": [[40, 25]], "labels": [1], "box": [20, 10, 70, 45]}
    proposal = client.post(f"{base}/{frames[0].uid}/mask-proposals/", {"prompts": prompts},
                           format="json").json()  # fmt: skip
    mask = {"rle": proposal["rle"], "prompts": prompts, "engine": proposal["engine"]}
    saved = client.post(f"{base}/{frames[0].uid}/masks/", mask, format="json")
    assert saved.status_code == 201, saved.content
    held = pool.next_assignment(annotator=a)
    assert held.uid == fresh.uid
    same(held)

    rated = client.post(f"/api/v1/assignments/{fresh.uid}/rating/",
                        {"contamination_pct": "4.5", "grade": "3A", "seconds_spent": 90},
                        format="json")  # fmt: skip
    assert rated.status_code == 201 and rated.json() == {"contamination_pct": "4.5", "grade": "3A"}
    same(Assignment.objects.get(uid=fresh.uid))

    late = pool.next_assignment(annotator=b)
    Assignment.objects.filter(pk=late.pk).update(
        lease_expires_at=timezone.now() - timedelta(minutes=1)
    )
    late = Assignment.objects.get(pk=late.pk)
    same(late)
    assert AssignmentOutputSerializer(late).data["status"] == "expired"
