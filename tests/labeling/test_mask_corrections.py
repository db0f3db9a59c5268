"""Correcting an accepted mask (new pixels from more clicks, or a new inclusion kind) through the
annotator API: the holder only, audited, checked like a new mask."""

import numpy as np
import pytest
from rest_framework.test import APIClient

from labeling import pool
from labeling import rle as rle_codec
from labeling.models import Assignment, InclusionKind, Mask
from scrapannot.audit import verify_chain
from scrapannot.models import AuditEvent
from tests.labeling.factories import annotators, pool_railcar

pytestmark = pytest.mark.django_db

PROMPTS = {"points": [[40, 25]], "labels": [1], "box": [20, 10, 70, 45]}


def api(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def square(frame, top: int, size: int) -> dict:
    pixels = np.zeros((frame.height, frame.width), dtype=bool)
    pixels[top : top + size, top : top + size] = True
    return rle_codec.encode(pixels)


@pytest.fixture
def held():
    railcar = pool_railcar()
    (a,) = annotators(1, prefix="masker-")
    assignment = pool.next_assignment(annotator=a)
    return a, assignment, railcar.frames.first()


def create(user, assignment, frame, **extra):
    url = f"/api/v1/assignments/{assignment.uid}/frames/{frame.uid}/masks/"
    body = {"rle": square(frame, 5, 10), "prompts": PROMPTS, "engine": "grabcut", **extra}
    return api(user).post(url, body, format="json")


def mask_url(assignment, mask_id) -> str:
    return f"/api/v1/assignments/{assignment.uid}/masks/{mask_id}/"


def test_a_new_mask_has_an_inclusion_kind_from_the_policy_list(held):
    user, assignment, frame = held

    plain = create(user, assignment, frame)
    wood = create(user, assignment, frame, kind="wood")
    bad = create(user, assignment, frame, kind="plastic bag")

    assert plain.status_code == 201 and plain.json()["kind"] == InclusionKind.OTHER
    assert wood.status_code == 201 and wood.json()["kind"] == "wood"
    assert wood.json()["prompts"]["box"] == PROMPTS["box"]  # a correction starts from them
    assert bad.status_code == 400 and "kind" in bad.json()
    assert sorted(Mask.objects.values_list("kind", flat=True)) == ["other", "wood"]
    assert AuditEvent.objects.filter(action="mask.saved").last().payload["kind"] == "wood"
    listed = api(user).get(f"/api/v1/assignments/{assignment.uid}/").json()["masks"]
    assert [m["kind"] for m in listed] == ["other", "wood"]


def test_an_accepted_mask_is_corrected_with_more_clicks_and_keeps_its_kind(held):
    user, assignment, frame = held
    mask_id = create(user, assignment, frame, kind="soil").json()["id"]
    more = {"points": [[40, 25], [12, 12]], "labels": [1, 0], "box": PROMPTS["box"]}

    response = api(user).patch(
        mask_url(assignment, mask_id),
        {"rle": square(frame, 5, 20), "prompts": more, "engine": "grabcut"},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert response.json()["area"] == 400 and response.json()["kind"] == "soil"
    mask = Mask.objects.get(uid=mask_id)
    assert mask.area == 400 and mask.prompts["labels"] == [1, 0]
    event = AuditEvent.objects.get(action="mask.changed")
    assert event.payload["before"] == {"area": 100, "kind": "soil"}
    assert event.payload["after"] == {"area": 400, "kind": "soil"}
    assert verify_chain().ok


def test_the_kind_of_an_accepted_mask_changes_alone(held):
    user, assignment, frame = held
    mask_id = create(user, assignment, frame).json()["id"]

    response = api(user).patch(mask_url(assignment, mask_id), {"kind": "rubber"}, format="json")
    again = api(user).patch(mask_url(assignment, mask_id), {"kind": "rubber"}, format="json")

    assert response.status_code == 200 and response.json()["kind"] == "rubber"
    assert again.status_code == 200
    assert Mask.objects.get(uid=mask_id).kind == "rubber"
    assert AuditEvent.objects.filter(action="mask.changed").count() == 1  # the repeat: nothing


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "plastic"},
        {"rle": {"size": [54, 96], "counts": [54 * 96]}, "prompts": PROMPTS, "engine": "x"},
        {"rle": {"size": [100000, 100000], "counts": "0"}, "prompts": PROMPTS, "engine": "x"},
        {"rle": "not an rle", "prompts": PROMPTS, "engine": "x"},
    ],
    ids=["unknown kind", "empty", "forged size", "not an object"],
)
def test_a_bad_correction_is_refused_and_changes_nothing(held, body):
    user, assignment, frame = held
    mask_id = create(user, assignment, frame).json()["id"]
    if "rle" in body and isinstance(body["rle"], dict) and body["rle"]["size"] == [54, 96]:
        body = {
            **body,
            "rle": {"size": [frame.height, frame.width], "counts": [frame.height * frame.width]},
        }

    response = api(user).patch(mask_url(assignment, mask_id), body, format="json")

    assert response.status_code == 400
    mask = Mask.objects.get(uid=mask_id)
    assert (mask.area, mask.kind) == (100, "other")
    assert not AuditEvent.objects.filter(action="mask.changed").exists()


def test_new_pixels_without_the_prompts_that_made_them_are_refused(held):
    user, assignment, frame = held
    mask_id = create(user, assignment, frame).json()["id"]

    response = api(user).patch(
        mask_url(assignment, mask_id), {"rle": square(frame, 5, 20)}, format="json"
    )

    assert response.status_code == 400
    assert Mask.objects.get(uid=mask_id).area == 100


def test_another_annotators_mask_cannot_be_corrected(held):
    user, assignment, frame = held
    mask_id = create(user, assignment, frame).json()["id"]
    (other,) = annotators(1, prefix="snoop-")
    pool_railcar()
    theirs = pool.next_assignment(annotator=other)

    for path in (mask_url(theirs, mask_id), mask_url(assignment, mask_id)):
        response = api(other).patch(path, {"kind": "wood"}, format="json")
        assert response.status_code == 404
    assert Mask.objects.get(uid=mask_id).kind == "other"
    assert Assignment.objects.get(pk=assignment.pk).masks.count() == 1
