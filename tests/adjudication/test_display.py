from adjudication.display import std_against_threshold


def test_a_spread_just_above_its_threshold_never_reads_as_equal_to_it():
    assert std_against_threshold(0.404, 0.4) == ("0.404", "0.400")
    assert std_against_threshold(0.40004, 0.4) == ("0.40004", "0.40000")


def test_figures_that_differ_at_two_decimals_keep_two():
    assert std_against_threshold(1.2345, 0.4) == ("1.23", "0.40")


def test_a_spread_equal_to_its_threshold_reads_equal():
    # Aggregation treats a floating-point hair above the threshold as equal to it.
    assert std_against_threshold(0.4000000000000004, 0.4) == ("0.40", "0.40")
