"""An annotator's progress on their queue page: their own figures only, and the pool as a count."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from labeling import pool
from labeling.models import Rating
from labeling.progress import annotator_progress
from tests.adjudication.factories import rate_railcar
from tests.conftest import client_for
from tests.labeling.double_blind_world import World
from tests.labeling.factories import annotators, pool_railcar
from tests.labeling.probe import exposed, leaks

pytestmark = pytest.mark.django_db


def rated(raters, seconds: list[int], *, days_ago: int = 0) -> None:
    railcar = pool_railcar(raters=len(raters))
    rate_railcar(railcar, raters, [2.0 + i for i in range(len(raters))], ["3A"] * len(raters),
                 seconds=seconds)  # fmt: skip
    Rating.objects.filter(railcar=railcar).update(
        submitted_at=timezone.now() - timedelta(days=days_ago)
    )


def test_the_figures_count_only_the_annotators_own_ratings():
    ann, other = annotators(2, prefix="prog-")
    now = timezone.localtime()
    monday = now - timedelta(days=now.weekday())
    rated([ann, other], [60, 900])
    rated([ann, other], [120, 901])
    rated([ann], [300], days_ago=(now - monday).days + 1)  # last week
    rated([other], [5])

    mine = annotator_progress(annotator=ann)
    theirs = annotator_progress(annotator=other)

    assert (mine.rated_today, mine.rated_total) == (2, 3)
    assert mine.rated_this_week == 2
    assert mine.median_seconds == 120 and mine.median_over == 3
    assert mine.median_display == "2 min 00 s"
    assert (theirs.rated_today, theirs.median_seconds) == (3, 900)


def test_the_pool_count_is_what_the_pool_could_still_hand_them():
    ann, other = annotators(2, prefix="left-")
    pool_railcar(raters=1)
    pool_railcar(raters=2)
    assert annotator_progress(annotator=ann).left_in_pool == 2

    held = pool.next_assignment(annotator=ann)  # held by them: not "left" any more
    assert annotator_progress(annotator=ann).left_in_pool == 1
    pool.next_assignment(annotator=other)
    # The other rater took a slot; a count is all this ever says about it.
    assert annotator_progress(annotator=ann).left_in_pool in (0, 1)
    assert held is not None


def test_the_queue_page_shows_the_figures_and_no_one_else_gets_them(annotator, senior, admin_user):
    rated([annotator], [75])

    page = client_for(annotator).get(reverse("labeling:queue"))

    assert page.status_code == 200
    body = page.content.decode()
    assert 'id="progress-today">1<' in body and "1 min 15 s" in body
    for user in (senior, admin_user):
        assert client_for(user).get(reverse("labeling:queue")).status_code == 403
    anonymous = client_for(None).get(reverse("labeling:queue"))
    assert anonymous.status_code == 302


def test_the_attackers_figures_carry_nothing_of_the_other_raters(world: World):
    """The double-blind world: two victims rated the attacker's railcar (4,711 s each), and
    other railcars. The attacker has rated nothing, and their page says so."""
    client = client_for(world.attacker)

    response = client.get(reverse("labeling:queue"))
    figures = response.context["progress"]

    assert (figures.rated_today, figures.rated_this_week, figures.rated_total) == (0, 0, 0)
    assert figures.median_seconds is None
    assert figures.left_in_pool == pool.railcars_left(annotator=world.attacker)
    body = exposed(response)
    assert not leaks(body, world.forbidden)
    assert "78 min" not in body and "4711" not in body and "4,711" not in body
