from collections.abc import Callable

import pytest

from adjudication.models import AdjudicationCase
from tests.adjudication.disputes import disputed_railcar, open_case_of


@pytest.fixture
def make_case(db, django_capture_on_commit_callbacks) -> Callable[..., AdjudicationCase]:
    def make(*args: object, **kwargs: object) -> AdjudicationCase:
        with django_capture_on_commit_callbacks(execute=True):
            railcar = disputed_railcar(*args, **kwargs)
        return open_case_of(railcar)

    return make


@pytest.fixture
def case(make_case) -> AdjudicationCase:
    return make_case()
