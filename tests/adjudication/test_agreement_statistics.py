"""Agreement statistics, against textbook values and small hand-computed examples. The agreement
page is tested in test_agreement_page.py."""

from datetime import UTC, date, datetime, timedelta

import krippendorff
import numpy as np
import pytest

from adjudication.agreement_report import AgreementData, FinalRow, RatingRow, summarize
from adjudication.agreement_statistics import (
    MIN_RAILCARS,
    MONTH,
    WEEK,
    bias_scale_mae,
    categories_of,
    choose_period,
    final_confusion,
    fleiss_kappa,
    interval_alpha,
    next_period,
    rater_confusion,
)

GRADES = ["3A", "3A1", "3AH", "cast iron"]

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers,
# 12 units, missing values. His published alphas: interval 0.849 (nominal 0.743).
KRIPPENDORFF_2011 = [
    [1, 1, None, 1],
    [2, 2, 3, 2],
    [3, 3, 3, 3],
    [3, 3, 3, 3],
    [2, 2, 2, 2],
    [1, 2, 3, 4],
    [4, 4, 4, 4],
    [1, 1, 2, 1],
    [2, 2, 2, 2],
    [None, 5, 5, 5],
    [None, None, 1, 1],
    [None, 3, None, None],
]

# Fleiss' kappa worked example (Wikipedia, "Fleiss' kappa"): 10 subjects, 14 raters each,
# 5 categories; P-bar = 0.378, P-bar-e = 0.213, kappa = 0.210.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def grades_from_table(table: list[list[int]]) -> list[list[str]]:
    return [[str(c + 1) for c, n in enumerate(row) for _ in range(n)] for row in table]


# --- alpha --------------------------------------------------------------------------------------


def test_alpha_matches_krippendorffs_published_interval_example():
    units = [[v for v in unit if v is not None] for unit in KRIPPENDORFF_2011]

    assert interval_alpha(units) == pytest.approx(0.849, abs=5e-4)


@pytest.mark.parametrize("seed", range(5))
def test_alpha_in_closed_form_equals_the_krippendorff_package(seed):
    rng = np.random.default_rng(seed)
    truth = rng.gamma(2.0, 2.5, 60)
    units = [
        list(np.round(t + rng.normal(0, 0.5, rng.integers(1, 5)), 1)) for t in truth
    ]  # 1 to 4 ratings a railcar, one decimal, some railcars not pairable
    reliability = np.full((4, len(units)), np.nan)
    for column, values in enumerate(units):
        reliability[: len(values), column] = values

    expected = krippendorff.alpha(reliability_data=reliability, level_of_measurement="interval")

    assert interval_alpha(units) == pytest.approx(expected, rel=1e-9)


def test_alpha_does_not_depend_on_the_order_of_a_railcars_ratings():
    units = [[v for v in unit if v is not None] for unit in KRIPPENDORFF_2011]

    assert interval_alpha([list(reversed(u)) for u in units]) == pytest.approx(
        interval_alpha(units)
    )


def test_alpha_of_a_hand_computed_interval_example():
    # Units (1, 2), (3, 3), (5, 6), two values each, n = 6 pairable values.
    # Observed: within-unit squared differences, each pair both ways, over n: (2*1 + 0 + 2*1) / 6.
    # Expected: every pair of the 6 values, both ways, over n(n - 1) = 30.
    units = [[1.0, 2.0], [3.0, 3.0], [5.0, 6.0]] * 2  # doubled to clear MIN_RAILCARS
    values = [v for u in units for v in u]
    d_o = sum((a - b) ** 2 for u in units for a in u for b in u) / len(values)
    d_e = sum((a - b) ** 2 for a in values for b in values) / (len(values) * (len(values) - 1))

    assert interval_alpha(units) == pytest.approx(1 - d_o / d_e)
    assert 0.8 < 1 - d_o / d_e < 1.0


def test_perfect_agreement_gives_alpha_one():
    assert interval_alpha([[v, v, v] for v in (1.0, 4.5, 7.0, 12.0, 30.0)]) == pytest.approx(1.0)


def test_alpha_is_undefined_for_too_few_railcars_or_a_single_value():
    assert interval_alpha([[1.0, 2.0]] * (MIN_RAILCARS - 1)) is None
    assert interval_alpha([[1.0, 2.0]] * MIN_RAILCARS) is not None
    assert interval_alpha([[5.0, 5.0, 5.0]] * 10) is None
    # Railcars with one rating only are not pairable and do not count.
    assert interval_alpha([[1.0]] * 20 + [[1.0, 2.0]] * 4) is None


def test_alpha_is_negative_when_raters_disagree_more_than_chance():
    assert interval_alpha([[0.0, 10.0], [0.0, 10.0], [10.0, 0.0], [0.0, 10.0], [10.0, 0.0]]) < 0


# --- kappa --------------------------------------------------------------------------------------


def test_kappa_matches_the_fleiss_worked_example():
    kappa = fleiss_kappa(grades_from_table(FLEISS_TABLE), ["1", "2", "3", "4", "5"])

    assert kappa.value == pytest.approx(0.210, abs=5e-4)
    assert (kappa.railcars, kappa.raters, kappa.left_out) == (10, 14, 0)


def test_kappa_by_hand_on_grades():
    grades = [
        ["3A", "3A", "3A"],
        ["3A", "3A", "3A1"],
        ["3A1", "3A1", "3A1"],
        ["3AH", "3AH", "3A"],
        ["cast iron", "cast iron", "cast iron"],
    ]
    # P_i = sum n_ij (n_ij - 1) / (3 * 2): 1, 1/3, 1, 1/3, 1 -> P-bar = 11/15.
    # Marginals over 15 ratings: 3A 6, 3A1 4, 3AH 2, cast iron 3 -> P-e = (36+16+4+9)/225.
    p_bar, p_e = 11 / 15, 65 / 225

    assert fleiss_kappa(grades, GRADES).value == pytest.approx((p_bar - p_e) / (1 - p_e))


def test_perfect_agreement_gives_kappa_one():
    grades = [[g] * 3 for g in ["3A", "3A1", "3AH", "cast iron", "3A"]]

    assert fleiss_kappa(grades, GRADES).value == pytest.approx(1.0)


def test_kappa_uses_the_most_common_rater_count_and_says_how_many_it_left_out():
    grades = [["3A", "3A", "3A1"]] * 4 + [["3AH", "3AH", "3AH"]] * 3 + [["3A", "3A"]] * 2
    grades += [["3A"]]  # one rating: not pairable, not counted at all

    kappa = fleiss_kappa(grades, GRADES)

    assert (kappa.railcars, kappa.raters, kappa.left_out) == (7, 3, 2)
    assert kappa.value == pytest.approx(fleiss_kappa(grades[:7], GRADES).value)


def test_kappa_is_undefined_for_too_few_railcars_or_one_grade_only():
    assert fleiss_kappa([["3A", "3A1", "3A"]] * 4, GRADES).value is None
    assert fleiss_kappa([["3A", "3A", "3A"]] * 10, GRADES).value is None
    assert fleiss_kappa([], GRADES).value is None


# --- confusion ----------------------------------------------------------------------------------


def test_rater_confusion_counts_each_pair_both_ways():
    matrix = rater_confusion([["3A", "3A", "3A1"], ["3AH", "cast iron"]], GRADES)

    # Railcar 1: pairs (3A, 3A), (3A, 3A1), (3A, 3A1); railcar 2: (3AH, cast iron).
    assert matrix == [
        [2, 2, 0, 0],
        [2, 0, 0, 0],
        [0, 0, 0, 1],
        [0, 0, 1, 0],
    ]
    assert np.array_equal(np.array(matrix), np.array(matrix).T)


def test_final_confusion_puts_the_label_in_rows_and_the_rater_in_columns():
    matrix = final_confusion([("3A", "3A"), ("3A", "3A1"), ("3A", "3A1"), ("3AH", "3A")], GRADES)

    assert matrix[0] == [1, 2, 0, 0]
    assert matrix[2] == [1, 0, 0, 0]
    assert sum(map(sum, matrix)) == 4


def test_an_unknown_grade_gets_its_own_column_rather_than_vanishing():
    categories = categories_of(["3A", "scrap X"])

    assert categories == [*GRADES, "scrap X"]
    assert rater_confusion([["3A", "scrap X"]], categories)[0][4] == 1


# --- per rater ----------------------------------------------------------------------------------


def test_bias_scale_and_mae_of_a_rater_with_offset_and_wide_scale():
    truths = [2.0, 4.0, 6.0, 8.0]
    values = [1.0 + 1.5 * t for t in truths]  # offset 1, scale 1.5

    bias, scale, mae = bias_scale_mae(values, truths)

    assert scale == pytest.approx(1.5)
    # Deviations 2, 3, 4, 5.
    assert bias == pytest.approx(3.5)
    assert mae == pytest.approx(3.5)


def test_mae_differs_from_bias_when_deviations_change_sign():
    bias, scale, mae = bias_scale_mae([1.0, 3.0, 5.0], [2.0, 2.0, 6.0])

    assert bias == pytest.approx(-1 / 3)
    assert mae == pytest.approx(1.0)
    # Slope by hand: t-mean = (-4/3, -4/3, 8/3), v-mean = (-2, 0, 2); 8/(96/9) = 0.75.
    assert scale == pytest.approx(0.75)


def test_scale_is_undefined_with_too_few_points_or_no_spread_in_the_labels():
    assert bias_scale_mae([1.0, 2.0], [1.0, 2.0])[1] is None
    assert bias_scale_mae([1.0, 2.0, 3.0], [4.0, 4.0, 4.0])[1] is None
    assert bias_scale_mae([], []) == (None, None, None)


def row(railcar: int, rater: str, pct: float, grade: str, day: int, seconds: int = 60) -> RatingRow:
    when = datetime(2026, 3, 2, 12, tzinfo=UTC) + timedelta(days=day)
    return RatingRow(railcar, rater, pct, grade, seconds, when)


def test_summary_per_rater_on_known_data():
    # Rater "wide" reads 1.5x the label; "low" reads 1 point under; "ok" reads the label.
    # Railcar 4 is still in adjudication (no final label), railcar 5 waits for raters.
    labels = {1: 2.0, 2: 4.0, 3: 6.0}
    ratings = []
    for railcar, label in labels.items():
        ratings += [
            row(railcar, "wide", 1.5 * label, "3A", 0, seconds=30),
            row(railcar, "low", label - 1, "3A", 0, seconds=90),
            row(railcar, "ok", label, "3A1", 0, seconds=60),
        ]
    ratings += [row(4, "wide", 9.0, "3A", 1, 40), row(4, "low", 1.0, "3AH", 1, 100)]
    ratings += [row(5, "wide", 5.0, "3A", 1, 50)]
    data = AgreementData(
        ratings=ratings,
        finals={k: FinalRow(v, "3A") for k, v in labels.items()},
        adjudicated={4},
        calibrations={},
    )

    report = summarize(data)
    by_name = {r.rater: r for r in report.raters}

    assert [r.rater for r in report.raters] == ["low", "ok", "wide"]
    assert by_name["wide"].scale == pytest.approx(1.5)
    assert by_name["wide"].bias == pytest.approx((1 + 2 + 3) / 3)
    assert by_name["low"].bias == pytest.approx(-1.0) and by_name["low"].scale == pytest.approx(1)
    assert by_name["ok"].mae == pytest.approx(0.0)
    # wide: railcars 1-4 settled (5 still waits), one of them adjudicated.
    assert (by_name["wide"].n_settled, by_name["wide"].adjudication_rate) == (4, 0.25)
    assert by_name["ok"].adjudication_rate == 0.0
    assert by_name["wide"].median_seconds == 30.0 and by_name["low"].median_seconds == 90.0
    assert (report.railcars, report.ratings, report.labeled) == (5, 12, 3)
    # Final label 3A in every labeled railcar: 6 raters said 3A, 3 said 3A1.
    assert report.final_confusion[0] == [6, 3, 0, 0]


# --- time -----------------------------------------------------------------------------------


def test_busy_weeks_are_buckets_and_sparse_ones_fall_back_to_months():
    start = datetime(2026, 3, 2, 9, tzinfo=UTC)  # a Monday
    busy = [start + timedelta(days=7 * w, hours=i) for w in range(4) for i in range(6)]
    sparse = [start + timedelta(days=10 * i) for i in range(8)]

    assert choose_period(busy) == WEEK
    assert choose_period(sparse) == MONTH
    assert choose_period([]) == WEEK


def test_railcars_fall_in_the_week_of_their_last_rating_and_gaps_stay_visible():
    ratings = []
    for railcar in range(12):
        # Six railcars in the week of 2 March, six in the week of 16 March, none between.
        day = 0 if railcar < 6 else 14
        ratings += [row(railcar, f"r{i}", float(railcar + i % 2), "3A", day) for i in range(3)]
    # Railcar 0's last rating comes a week later: it moves to the middle week.
    ratings[0] = row(0, "r0", 0.0, "3A", 7)

    report = summarize(AgreementData(ratings, {}, set(), {}))

    assert report.period == WEEK
    assert [(b.label, b.railcars) for b in report.buckets] == [
        ("2026-03-02", 5),
        ("2026-03-09", 1),
        ("2026-03-16", 6),
    ]
    assert report.buckets[0].alpha is not None
    assert report.buckets[1].alpha is None and report.buckets[1].kappa.value is None


def test_months_step_over_year_ends():
    assert next_period(date(2026, 12, 1), MONTH) == date(2027, 1, 1)
    assert next_period(date(2026, 1, 1), MONTH) == date(2026, 2, 1)
