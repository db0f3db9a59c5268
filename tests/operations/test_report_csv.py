"""The reports of a shift or a day as CSV: the shift boundaries, only the reader's lines, and
cells that a spreadsheet would run as formulas defused."""

import csv
import datetime as dt
import io

import pytest
from django.urls import reverse

from operations.report_csv import COLUMNS, safe_cell, shift_of, window
from tests.conftest import client_for
from tests.operations.report_factories import amend, escalate, estimate, operator_of, unloading

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]

UTC = dt.UTC
DAY = dt.date(2026, 12, 1)


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=UTC)


def rows(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.content
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def shifts(settings):
    settings.OPERATIONS_REPORTS = {**settings.OPERATIONS_REPORTS,
                                   "SHIFT_STARTS": ["06:00", "14:00", "22:00"],
                                   "SHIFT_TIME_ZONE": "UTC"}  # fmt: skip


def test_shift_three_runs_past_midnight_and_the_day_is_its_three_shifts(shifts):
    assert window(day=DAY, shift=1) == (at(DAY, 6), at(DAY, 14))
    assert window(day=DAY, shift=3) == (at(DAY, 22), at(DAY + dt.timedelta(days=1), 6))
    assert window(day=DAY) == (at(DAY, 6), at(DAY + dt.timedelta(days=1), 6))
    with pytest.raises(ValueError):
        window(day=DAY, shift=4)


def test_the_small_hours_belong_to_the_previous_days_last_shift(shifts):
    assert shift_of(at(DAY, 6)) == (DAY, 1)
    assert shift_of(at(DAY, 13, 59)) == (DAY, 1)
    assert shift_of(at(DAY, 14)) == (DAY, 2)
    assert shift_of(at(DAY, 23)) == (DAY, 3)
    assert shift_of(at(DAY, 5, 59)) == (DAY - dt.timedelta(days=1), 3)


def test_the_report_page_links_the_csv_of_the_unloadings_own_shift_and_day(shifts):
    railcar = unloading(line="L1", started=at(DAY, 2), real_id="RC-NIGHT")
    client = client_for(operator_of("olga", "L1"))
    page = client.get(reverse("operations:report", args=[railcar.pk])).content.decode()
    previous = DAY - dt.timedelta(days=1)
    assert f"reports.csv?day={previous}&amp;shift=3" in page
    response = client.get(reverse("operations:reports-csv") + f"?day={previous}&shift=3")
    assert [r["real_id"] for r in rows(response)] == ["RC-NIGHT"]


def test_shift_times_are_local_to_the_configured_zone(settings):
    settings.OPERATIONS_REPORTS = {**settings.OPERATIONS_REPORTS,
                                   "SHIFT_STARTS": ["07:00", "19:00"],
                                   "SHIFT_TIME_ZONE": "Europe/Moscow"}  # fmt: skip
    start, end = window(day=DAY, shift=1)
    assert start.astimezone(UTC) == at(DAY, 4) and end.astimezone(UTC) == at(DAY, 16)


def test_an_unloading_belongs_to_the_shift_it_started_in(shifts):
    client = client_for(operator_of("olga", "L1"))
    first = unloading(line="L1", started=at(DAY, 6), real_id="RC-1")
    last_of_first = unloading(line="L1", started=at(DAY, 13, 59), real_id="RC-2")
    second = unloading(line="L1", started=at(DAY, 14), real_id="RC-3")
    night = unloading(line="L1", started=at(DAY + dt.timedelta(days=1), 5, 59), real_id="RC-4")
    unloading(line="L1", started=at(DAY, 5, 59), real_id="RC-0")  # the day before's shift 3
    url = reverse("operations:reports-csv")

    def real_ids(query: str) -> list[str]:
        return [r["real_id"] for r in rows(client.get(url + query))]

    assert real_ids(f"?day={DAY}&shift=1") == [first.real_id, last_of_first.real_id]
    assert real_ids(f"?day={DAY}&shift=2") == [second.real_id]
    assert real_ids(f"?day={DAY}&shift=3") == [night.real_id]
    assert real_ids(f"?day={DAY}") == ["RC-1", "RC-2", "RC-3", "RC-4"]


def test_the_csv_has_the_reports_columns_and_the_operators_amendment(shifts):
    operator = operator_of("olga", "L1")
    railcar = unloading(line="L1", started=at(DAY, 9), real_id="RC-777")
    estimate(railcar, pct=4.25, grade="3A1")
    amend(railcar, operator, pct="6.5", grade="3AH")
    escalate(railcar)

    response = client_for(operator).get(reverse("operations:reports-csv") + f"?day={DAY}")

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="reports-{DAY}.csv"'
    assert response["Cache-Control"] == "private, no-store"
    (row,) = rows(response)
    assert tuple(row) == COLUMNS
    assert row["real_id"] == "RC-777" and row["line"] == "L1"
    assert row["contamination_pct"] == "4.25" and row["grade"] == "3A1"
    assert row["decision"] == "amend" and row["decision_contamination_pct"] == "6.5"
    assert row["decision_grade"] == "3AH" and row["decision_by"] == "olga"
    assert row["escalation_route"] == "senior"
    assert row["escalation_reasons"] == "contamination_above"
    assert row["layers_total"] == "3" and row["layers_scored"] == "2"


def test_an_operator_gets_only_the_rows_of_their_lines(shifts, admin_user):
    unloading(line="L1", started=at(DAY, 9), real_id="RC-OURS")
    unloading(line="L2", started=at(DAY, 9), real_id="RC-THEIRS")
    url = reverse("operations:reports-csv") + f"?day={DAY}"

    assert [r["real_id"] for r in rows(client_for(operator_of("olga", "L1")).get(url))] == [
        "RC-OURS"
    ]
    assert rows(client_for(operator_of("nobody-lines")).get(url)) == []
    assert len(rows(client_for(admin_user).get(url))) == 2


def test_cells_a_spreadsheet_would_run_as_formulas_are_defused(shifts):
    operator = operator_of("olga", "L1")
    railcar = unloading(line="L1", started=at(DAY, 9), real_id='=HYPERLINK("x")')
    estimate(railcar)
    amend(railcar, operator, note="+cmd|' /C calc'!A0")

    (row,) = rows(client_for(operator).get(reverse("operations:reports-csv") + f"?day={DAY}"))

    assert row["real_id"] == '\'=HYPERLINK("x")'
    assert row["decision_note"] == "'+cmd|' /C calc'!A0"
    for dangerous in ("=1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"):
        assert safe_cell(dangerous) == "'" + dangerous
    assert safe_cell("3A1") == "3A1" and safe_cell(4.25) == 4.25


@pytest.mark.parametrize("query", ["", "?day=2026-13-01", "?day=yesterday",
                                   f"?day={DAY}&shift=0", f"?day={DAY}&shift=4",
                                   f"?day={DAY}&shift=x"])  # fmt: skip
def test_a_bad_day_or_shift_is_a_400(shifts, query):
    client = client_for(operator_of("olga", "L1"))
    assert client.get(reverse("operations:reports-csv") + query).status_code == 400


@pytest.mark.parametrize("who", ["annotator", "plant", "outsider"])
def test_annotators_and_others_get_no_csv(who, request, shifts):
    railcar = unloading(line="L1", started=at(DAY, 9))
    estimate(railcar)
    response = client_for(request.getfixturevalue(who)).get(
        reverse("operations:reports-csv") + f"?day={DAY}"
    )
    assert response.status_code == 403
