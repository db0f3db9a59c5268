"""ICC(2,1), ICC(3,1) and Lin's CCC against published worked examples and hand computations."""

import numpy as np
import pytest

from adjudication.agreement_icc import concordance, icc

# Shrout & Fleiss (1979), Table 2: six targets rated by four judges.
SHROUT_FLEISS = np.array(
    [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
)


def test_the_icc_of_shrout_and_fleiss_worked_example():
    result = icc(SHROUT_FLEISS)

    # Their Table 4: ICC(2,1) = .29, ICC(3,1) = .71.
    assert result.icc21.value == pytest.approx(0.29, abs=0.005)
    assert result.icc31.value == pytest.approx(0.71, abs=0.005)
    # The 95 % intervals R's psych::ICC prints for the same data (same F-based formulas):
    # ICC2 [0.019, 0.76], ICC3 [0.34, 0.95].
    assert result.icc21.low == pytest.approx(0.019, abs=0.005)
    assert result.icc21.high == pytest.approx(0.76, abs=0.005)
    assert result.icc31.low == pytest.approx(0.34, abs=0.005)
    assert result.icc31.high == pytest.approx(0.95, abs=0.005)
    assert result.icc21.n == 6


def test_a_constant_shift_lowers_icc21_but_not_icc31():
    rng = np.random.default_rng(1)
    truth = rng.uniform(1, 10, 40)
    a = truth + rng.normal(0, 0.3, 40)
    b = truth + 2.0 + rng.normal(0, 0.3, 40)
    result = icc(np.column_stack([a, b]))

    assert result.icc31.value > 0.95
    assert result.icc21.value < result.icc31.value - 0.1
    for c in (result.icc21, result.icc31):
        assert c.low < c.value < c.high


def test_too_few_railcars_give_no_icc():
    assert icc(SHROUT_FLEISS[:4]) is None
    assert icc(SHROUT_FLEISS[:, :1]) is None


def test_lins_concordance_by_hand():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    # Perfect agreement; a shift of 1: 2 * 2 / (2 + 2 + 1) = 0.8 (1/n variances of 2);
    # double the scale: 2 * 4 / (2 + 8 + 9) = 8 / 19.
    assert concordance(x, x).value == pytest.approx(1.0)
    assert concordance(x, x + 1).value == pytest.approx(0.8)
    assert concordance(x, 2 * x).value == pytest.approx(8 / 19)


def test_lins_interval_holds_the_value_and_narrows_with_more_railcars():
    rng = np.random.default_rng(2)
    truth = rng.uniform(1, 10, 400)
    x, y = truth + rng.normal(0, 0.5, 400), truth + 0.3 + rng.normal(0, 0.5, 400)
    small, large = concordance(x[:20], y[:20]), concordance(x, y)

    for c in (small, large):
        assert c.low < c.value < c.high
    assert large.high - large.low < small.high - small.low
    # The population CCC here: 2 var(t) / (2 var(t) + 2 * 0.25 + 0.09), var(t) = 81 / 12.
    expected = 2 * 6.75 / (2 * 6.75 + 0.5 + 0.09)
    assert large.low < expected < large.high


def test_lins_interval_matches_a_simulation():
    """Coverage of the 95 % interval over 400 simulated panels of 30 railcars: 93-97 %."""
    rng = np.random.default_rng(3)
    expected = 2 * 6.75 / (2 * 6.75 + 0.5 + 0.09)
    covered = 0
    for _ in range(400):
        t = rng.uniform(1, 10, 30)
        c = concordance(t + rng.normal(0, 0.5, 30), t + 0.3 + rng.normal(0, 0.5, 30))
        covered += c.low <= expected <= c.high
    assert 0.92 <= covered / 400 <= 0.98


# --- per pair and against gold, on the agreement page --------------------------------------------


def test_pairs_need_enough_shared_railcars_and_gold_is_read_per_rater():
    from adjudication.agreement_pairs import gold_agreements, pair_agreements

    rows = [(i, "a", float(i)) for i in range(6)] + [(i, "b", i + 0.5) for i in range(6)]
    rows += [(i, "c", float(i)) for i in range(3)]  # shares only 3 railcars with a and b
    (pair,) = pair_agreements(rows)

    assert (pair.first, pair.second, pair.n) == ("a", "b", 6)
    assert pair.icc31.value == pytest.approx(1.0)
    assert pair.icc21.value < 1.0 and pair.ccc.value < 1.0
    (gold,) = gold_agreements([("a", t + 1.0, t) for t in range(8)] + [("b", 1.0, 1.0)])
    assert gold.first == "a" and gold.second == "gold" and gold.n == 8


@pytest.mark.django_db
def test_the_agreement_page_shows_icc_and_ccc_per_pair(senior, django_capture_on_commit_callbacks):
    from tests.adjudication.factories import rated_railcar
    from tests.conftest import client_for
    from tests.labeling.factories import annotators

    raters = annotators(2, prefix="pair")
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(6):
            rated_railcar([2.0 + i, 2.5 + i], ["3A", "3A"], raters=raters)

    page = client_for(senior).get("/adjudication/agreement/").content.decode()

    section = page.split('id="rater-pairs"')[1].split("</table>")[0]
    assert "pair0 / pair1" in section and "1.00" in section  # ICC(3,1): a pure shift
    assert 'id="rater-gold"' in page
