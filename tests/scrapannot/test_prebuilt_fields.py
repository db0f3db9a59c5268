"""Serializers whose fields are built once per class (scrapannot.api.PrebuiltFieldsSerializer)
validate exactly as DRF's per-instance fields do, from many threads at once."""

import copy
import random
import threading

import pytest
from rest_framework import serializers

from labeling.annotation_apis import RatingInputSerializer

# The same declared fields on a plain DRF serializer: a fresh copy of them for every instance.
Fresh = type(
    "Fresh", (serializers.Serializer,), copy.deepcopy(RatingInputSerializer._declared_fields)
)

INPUTS = [
    {"contamination_pct": "4.5", "grade": "3A", "seconds_spent": 90},
    {"contamination_pct": 4.5, "grade": "3AH", "seconds_spent": "90"},
    {"contamination_pct": "100.0", "grade": "cast iron", "seconds_spent": 0},
    {"contamination_pct": "100.1", "grade": "3A", "seconds_spent": 90},
    {"contamination_pct": "-0.1", "grade": "3A", "seconds_spent": -1},
    {"contamination_pct": "4.55", "grade": "3A", "seconds_spent": 90},
    {"contamination_pct": "NaN", "grade": "3A", "seconds_spent": 90},
    {"contamination_pct": "", "grade": "", "seconds_spent": ""},
    {"contamination_pct": None, "grade": None, "seconds_spent": None},
    {"contamination_pct": "4.5", "grade": "gold", "seconds_spent": 10**9},
    {"contamination_pct": [1], "grade": {"a": 1}, "seconds_spent": 1.5},
    {"grade": "3A"},
    {"contamination_pct": "4.5", "grade": "3A", "seconds_spent": 90, "real_id": "X-1"},
    {},
    [],
    "4.5",
    None,
]


def outcome(serializer_class: type, data: object) -> tuple[bool, object]:
    serializer = serializer_class(data=data)
    if serializer.is_valid():
        return True, dict(serializer.validated_data)
    return False, serializer.errors


@pytest.mark.parametrize("data", INPUTS, ids=[repr(d)[:40] for d in INPUTS])
def test_it_validates_as_drf_with_fresh_fields_does(data):
    assert outcome(RatingInputSerializer, data) == outcome(Fresh, data)


def test_the_fields_are_built_once_and_bound_to_no_request():
    first, second = RatingInputSerializer(data=INPUTS[0]), RatingInputSerializer(data=INPUTS[3])

    assert first.fields is second.fields
    assert first.is_valid() and not second.is_valid()
    assert first.fields["grade"].root is not first and not first.fields["grade"].root.partial


def test_many_threads_validating_at_once_each_get_their_own_answer():
    expected = [outcome(Fresh, data) for data in INPUTS]
    wrong: list[object] = []
    barrier = threading.Barrier(8)

    def validate(seed: int) -> None:
        order = list(range(len(INPUTS)))
        random.Random(seed).shuffle(order)
        barrier.wait()
        for _ in range(50):
            for k in order:
                if outcome(RatingInputSerializer, INPUTS[k]) != expected[k]:
                    wrong.append(INPUTS[k])

    threads = [threading.Thread(target=validate, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert wrong == []
