"""Graduation policy evaluation (services/graduation/policy.py `evaluate`), no database: each criterion on
its own, passing and failing at its boundary, then how the criteria combine into an outcome. Thresholds
are worked out by hand from the rules (stated next to each)."""

from __future__ import annotations

from typing import Any

from pena.contracts.graduation import CriterionResult
from pena.contracts.monev import MonevIndicators
from services.graduation.policy import DEFAULT_CRITERIA, PovertyFigure, ReferenceFigures, WageFigure, evaluate

UMK_PADANG = WageFigure("umk", "1371", 2026, 3_000_000, "test example", True)
UMP_SUMBAR = WageFigure("ump", "13", 2026, 2_900_000, "test example", True)
LINE_2026 = PovertyFigure(2026, 400_000, "test example", True)

WAGE_ONLY = {"household_income_at_least_umk": True}
ACTIVE_ONLY = {"business_active_required": True}
VOLUNTARY_ONLY = {"voluntary_statement_required_for_sejahtera_mandiri": True}


def margin_only(margin: float) -> dict[str, Any]:
    return {"income_per_member_above_poverty_line_margin": margin}


def refs(wage: WageFigure | None = UMK_PADANG, line: PovertyFigure | None = LINE_2026) -> ReferenceFigures:
    return ReferenceFigures(year=2026, regency_code="1371", province_code="13", wage=wage, poverty_line=line)


def survey(income: int, *, size: int = 4, status: str = "active", voluntary: bool = True) -> MonevIndicators:
    return MonevIndicators.model_validate(
        {
            "business_status": status,
            "monthly_revenue": income,
            "monthly_household_income": income,
            "household_size": size,
            "workers_employed": 0,
            "business_assets": 0,
            "savings": 0,
            "welfare_self_assessment": 3,
            "voluntary_exit_statement": voluntary,
        }
    )


def only(results: list[CriterionResult]) -> CriterionResult:
    [result] = results
    return result


# household income at least the minimum wage: income >= UMK (equal passes)


def test_income_equal_to_the_umk_passes() -> None:
    outcome, results = evaluate(WAGE_ONLY, survey(3_000_000), refs())
    result = only(results)
    assert (outcome, result.criterion) == ("ready", "household_income_at_least_minimum_wage")
    assert (result.value, result.threshold, result.passed) == (3_000_000, 3_000_000, True)
    assert result.note == "UMK 1371 2026 Rp 3.000.000 (example reference value, not an official figure)"


def test_income_one_rupiah_below_the_umk_fails() -> None:
    outcome, results = evaluate(WAGE_ONLY, survey(2_999_999), refs())
    assert outcome == "not_ready"
    assert (only(results).value, only(results).passed) == (2_999_999, False)


def test_without_a_umk_the_ump_is_the_threshold_and_the_note_says_so() -> None:
    passed = only(evaluate(WAGE_ONLY, survey(2_900_000), refs(wage=UMP_SUMBAR))[1])
    failed = only(evaluate(WAGE_ONLY, survey(2_899_999), refs(wage=UMP_SUMBAR))[1])
    assert (passed.threshold, passed.passed, failed.passed) == (2_900_000, True, False)
    assert passed.note is not None
    assert passed.note.startswith("UMP fallback: no UMK for 1371 in 2026; UMP 13 2026")


def test_without_any_minimum_wage_the_criterion_cannot_be_assessed() -> None:
    outcome, results = evaluate(WAGE_ONLY, survey(9_000_000), refs(wage=None))
    assert outcome == "cannot_assess"
    assert (only(results).threshold, only(results).passed) == (None, None)
    assert only(results).note == "no UMK for 1371 and no UMP for 13 in 2026"


# income per member above the poverty line plus a margin: round(income / size) > round(line * (1 + margin))


def test_income_per_member_equal_to_the_line_plus_margin_fails() -> None:
    # threshold 400,000 * 1.2 = 480,000; 1,920,000 / 4 = 480,000 is not above it
    outcome, results = evaluate(margin_only(0.2), survey(1_920_000), refs())
    result = only(results)
    assert (outcome, result.criterion) == ("not_ready", "income_per_member_above_poverty_line")
    assert (result.value, result.threshold, result.passed) == (480_000, 480_000, False)


def test_income_per_member_rounded_one_rupiah_above_the_line_plus_margin_passes() -> None:
    # 1,920,003 / 4 = 480,000.75, rounded to 480,001 > 480,000
    outcome, results = evaluate(margin_only(0.2), survey(1_920_003), refs())
    assert outcome == "ready"
    assert (only(results).value, only(results).threshold, only(results).passed) == (480_001, 480_000, True)


def test_the_threshold_itself_is_rounded_to_whole_rupiah() -> None:
    # 2023 line Rp 351,957 * 1.2 = 422,348.4 -> 422,348; 3 people: 1,267,044 / 3 = 422,348 (not above),
    # 1,267,047 / 3 = 422,349 (above)
    line = PovertyFigure(2023, 351_957, "BPS", False)
    at = only(evaluate(margin_only(0.2), survey(1_267_044, size=3), refs(line=line))[1])
    above = only(evaluate(margin_only(0.2), survey(1_267_047, size=3), refs(line=line))[1])
    assert (at.threshold, at.value, at.passed) == (422_348, 422_348, False)
    assert (above.value, above.passed) == (422_349, True)
    assert at.note == (
        "extreme-poverty line 2023 Rp 351.957 per person per month x (1 + 0.2 margin); Rp 1.267.044 / 3 members"
    )


def test_a_margin_of_zero_compares_with_the_line_itself() -> None:
    # threshold 400,000 * (1 + 0) = 400,000; 1,600,000 / 4 = 400,000 fails, 1,600,004 / 4 = 400,001 passes
    assert only(evaluate(margin_only(0), survey(1_600_000), refs())[1]).passed is False
    assert only(evaluate(margin_only(0), survey(1_600_004), refs())[1]).passed is True


def test_without_a_poverty_line_the_criterion_cannot_be_assessed() -> None:
    outcome, results = evaluate(margin_only(0.2), survey(1_000_000), refs(line=None))
    assert outcome == "cannot_assess"
    # the income per member is still reported: 1,000,000 / 4 = 250,000
    assert (only(results).value, only(results).threshold, only(results).passed) == (250_000, None, None)
    assert only(results).note == "no extreme-poverty line for 2026"


# business active: the status must be exactly "active"


def test_an_active_business_passes() -> None:
    outcome, results = evaluate(ACTIVE_ONLY, survey(0, status="active"), refs())
    assert outcome == "ready"
    assert (only(results).criterion, only(results).passed, only(results).note) == ("business_active", True, None)


def test_a_paused_or_closed_business_fails() -> None:
    for status in ("paused", "closed"):
        outcome, results = evaluate(ACTIVE_ONLY, survey(9_000_000, status=status), refs())
        assert outcome == "not_ready", status
        assert (only(results).value, only(results).threshold, only(results).passed) == (status, "active", False)
        assert only(results).note == "the business is not running"


# voluntary exit statement: reported, but never blocks readiness


def test_the_voluntary_statement_is_reported_and_does_not_block_readiness() -> None:
    with_statement = evaluate(VOLUNTARY_ONLY, survey(0, voluntary=True), refs())
    without = evaluate(VOLUNTARY_ONLY, survey(0, voluntary=False), refs())
    assert with_statement[0] == without[0] == "ready"
    assert only(with_statement[1]).passed is True
    assert (only(without[1]).criterion, only(without[1]).passed) == ("voluntary_exit_statement", False)


# the criteria together


def test_default_criteria_all_met_is_ready_with_four_results_in_order() -> None:
    # 3,000,000 >= UMK 3,000,000; 3,000,000 / 4 = 750,000 > 480,000; active; statement given
    outcome, results = evaluate(DEFAULT_CRITERIA, survey(3_000_000), refs())
    assert outcome == "ready"
    assert [(r.criterion, r.passed) for r in results] == [
        ("household_income_at_least_minimum_wage", True),
        ("income_per_member_above_poverty_line", True),
        ("business_active", True),
        ("voluntary_exit_statement", True),
    ]


def test_one_blocking_failure_makes_not_ready_and_a_missing_figure_outranks_it() -> None:
    assert evaluate(DEFAULT_CRITERIA, survey(3_000_000, status="paused"), refs())[0] == "not_ready"
    # no minimum wage and a closed business: what cannot be assessed decides
    assert evaluate(DEFAULT_CRITERIA, survey(3_000_000, status="closed"), refs(wage=None))[0] == "cannot_assess"


def test_criteria_switched_off_are_not_evaluated() -> None:
    criteria = {
        "household_income_at_least_umk": False,
        "income_per_member_above_poverty_line_margin": None,
        "business_active_required": False,
        "voluntary_statement_required_for_sejahtera_mandiri": False,
    }
    assert evaluate(criteria, survey(0, status="closed", voluntary=False), refs(wage=None, line=None)) == ("ready", [])
