"""`manage.py simulate_ratings`: simulated raters through the real pool, and its refusals."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from labeling.models import Railcar, Rating
from tests.labeling.factories import pool_railcar

pytestmark = pytest.mark.django_db(transaction=True)


def test_simulated_raters_rate_through_the_pool_and_aggregation_follows(on_postgresql, tmp_path):
    railcars = [pool_railcar(raters=3, with_files=False) for _ in range(4)]
    labels = tmp_path / "labels.jsonl"
    labels.write_text(
        "".join(
            f'{{"railcar": "{r.real_id}", "contamination_pct_exact": 3.25, "grade": "3A1"}}\n'
            for r in railcars
        )
    )
    out = io.StringIO()

    call_command(
        "simulate_ratings", railcars=3, raters=6, seed=5, labels=labels,
        i_know_this_is_not_production=True, stdout=out,
    )  # fmt: skip

    rated = Railcar.objects.exclude(status=Railcar.Status.IN_POOL)
    assert rated.count() == 3
    assert set(rated.values_list("status", flat=True)) <= {"labeled", "in_adjudication"}
    assert Rating.objects.filter(railcar__in=rated).count() == 9
    # The fourth may hold ratings from raters who took it before the third closed; none is
    # over-rated.
    assert Rating.objects.exclude(railcar__in=rated).count() < 3
    # Readings scatter around the truth the labels file gave (offsets up to 1.5 points).
    values = [float(v) for v in Rating.objects.values_list("contamination_pct", flat=True)]
    assert all(abs(v - 3.25) < 4 for v in values)
    assert "3 railcars fully rated by 6 simulated raters" in out.getvalue()


def test_it_refuses_a_production_database_and_bad_input(on_postgresql, tmp_path):
    with pytest.raises(CommandError, match="not-production"):
        call_command("simulate_ratings", railcars=1)
    for bad in [{"railcars": 0}, {"raters": 2}, {"raters": 51}]:
        with pytest.raises(CommandError):
            call_command("simulate_ratings", i_know_this_is_not_production=True, **bad)
    broken = tmp_path / "labels.jsonl"
    for content in ['{"railcar": "RC-1"}\n', "not json\n", '["a list"]\n']:
        broken.write_text(content)
        with pytest.raises(CommandError, match="labels.jsonl:1"):
            call_command("simulate_ratings", labels=broken, i_know_this_is_not_production=True)
    broken.write_bytes(b"\xff\xfe\x00 not utf-8")
    with pytest.raises(CommandError, match="cannot read"):
        call_command("simulate_ratings", labels=broken, i_know_this_is_not_production=True)
    assert not Rating.objects.exists()
