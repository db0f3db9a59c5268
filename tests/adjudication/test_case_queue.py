"""The adjudication queue: the most disagreement first, then the oldest; its figures and the recent
decisions."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from adjudication import decisions
from adjudication.models import AdjudicationCase
from tests.conftest import client_for

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


# The queue


def test_the_queue_puts_the_most_disagreement_first_then_the_oldest(senior, make_case):
    mild_new = make_case(("10.0", "11.0", "12.0"), ("3A", "3A", "3A"))
    wide = make_case(("2.0", "12.0", "22.0"), ("3A", "3A", "3A"))
    mild_old = make_case(("10.0", "11.0", "12.0"), ("3A", "3A", "3A"))
    split = make_case(("10.0", "11.0", "12.0"), ("3A", "3A1", "3AH"))
    # Equal disagreement: the one opened first goes first, whatever its id.
    AdjudicationCase.objects.filter(pk=mild_old.pk).update(
        opened_at=mild_new.opened_at - timedelta(hours=3)
    )

    response = client_for(senior).get(reverse("adjudication:queue"))

    order = [row.case.pk for row in response.context["rows"]]
    assert order == [wide.pk, split.pk, mild_old.pk, mild_new.pk]
    body = response.content.decode()
    positions = [body.index(f'data-case="{pk}"') for pk in order]
    assert positions == sorted(positions)
    assert wide.disagreement > split.disagreement > mild_new.disagreement


def test_the_queue_shows_the_figures_and_the_recent_decisions(senior, admin_user, make_case):
    decided, waiting = make_case(), make_case(grades=("3A", "3A1", "3AH"))
    decisions.decide(
        case_id=decided.pk, actor=admin_user, contamination_pct=Decimal("12.0"), grade="3A",
        rationale_code="rater_outlier", note="<b>C</b> was off",
    )  # fmt: skip

    response = client_for(senior).get(reverse("adjudication:queue"), {"days": "x; DROP"})

    body = response.content.decode()
    row = re.search(rf'<tr data-case="{waiting.pk}">(.*?)</tr>', body, re.S).group(1)
    assert "2.00" in row  # sample STD of 10, 12, 14
    assert "12.0 %" in row
    assert "3A × 1" in row and "3A1 × 1" in row and "3AH × 1" in row
    assert "contamination STD above the threshold, no grade majority" in row
    recent = re.search(rf'<tr data-case="{decided.pk}">(.*?)</tr>', body, re.S).group(1)
    assert "12.0 %, 3A" in recent and admin_user.username in recent
    assert "one rater is an outlier" in recent and "&lt;b&gt;C&lt;/b&gt; was off" in recent
    assert response.context["days"] == 7
