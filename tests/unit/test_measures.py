"""The Monev measures (services/monev/measures.py), no database. Every expected value is worked out by hand
from the formulas in docs/services/monev.md (weights: welfare 0.5 self-assessment + 0.5 growth of income per
member; independence 0.30 income growth + 0.25 business status + 0.20 no assistance + 0.15 savings + 0.10
workers; growth = now / before / 2 capped to 0..1; a missing part's weight is spread over the others)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from pena.contracts.monev import MonevIndicators
from services.monev import measures
from services.monev.measures import Baseline, compute, growth_score


def _indicators(**overrides: Any) -> MonevIndicators:
    values: dict[str, Any] = {
        "business_status": "paused",
        "monthly_revenue": 0,
        "monthly_household_income": 0,
        "household_size": 2,
        "workers_employed": 0,
        "business_assets": 0,
        "savings": 0,
        "assistance_still_received": ["BPNT"],  # food assistance: dependence under every formula version
        "welfare_self_assessment": 1,
    } | overrides
    return MonevIndicators.model_validate(values)


def test_growth_score_is_capped_and_handles_a_zero_baseline() -> None:
    assert growth_score(300, 100) == 1.0  # tripled: 300 / 100 / 2 = 1.5, capped to 1
    assert growth_score(200, 100) == 1.0  # doubled: 200 / 100 / 2 = 1
    assert growth_score(100, 100) == 0.5  # unchanged: 100 / 100 / 2
    assert growth_score(50, 100) == 0.25  # halved: 50 / 100 / 2
    assert growth_score(0, 100) == 0.0
    assert growth_score(50, 0) == 1.0  # from nothing to something
    assert growth_score(0, 0) == 0.5  # nothing then, nothing now: unchanged
    assert growth_score(50, None) is None  # no baseline to compare with


def test_lowest_case_indices() -> None:
    result = compute(_indicators(), Baseline(monthly_income=400_000, household_size=2))
    assert result.income_change == -400_000  # 0 - 400,000
    assert result.income_per_member == 0
    assert result.income_per_member_change == -200_000
    assert result.welfare_index == 0.0  # 0.5 * (1-1)/4 + 0.5 * growth(0, 200,000) = 0 + 0
    assert result.independence_index == 0.125  # only the paused business: 0.25 * 0.5


def test_a_doubled_income_with_savings_and_no_assistance() -> None:
    # the survey of tests/monev/test_survey.py: Rp 2,000,000 for 4 people against Rp 1,000,000 for 4
    result = compute(
        _indicators(
            business_status="active",
            monthly_household_income=2_000_000,
            household_size=4,
            savings=250_000,
            assistance_still_received=[],
            welfare_self_assessment=4,
        ),
        Baseline(monthly_income=1_000_000, household_size=4),
    )
    assert result.formula_version == measures.FORMULA_VERSION
    assert (result.baseline_monthly_income, result.baseline_household_size) == (1_000_000, 4)
    assert result.income_change == 1_000_000  # 2,000,000 - 1,000,000
    assert result.income_per_member == 500_000  # 2,000,000 // 4
    assert result.income_per_member_change == 250_000  # 500,000 - 1,000,000 // 4
    # 0.5 * (4-1)/4 + 0.5 * min(500,000 / 250,000 / 2, 1) = 0.375 + 0.5
    assert result.welfare_index == 0.875
    # 0.30 * min(2,000,000 / 1,000,000 / 2, 1) + 0.25 * 1 (active) + 0.20 (no assistance) + 0.15 (savings) + 0
    assert result.independence_index == 0.9


def test_income_per_member_is_floored_and_indices_rounded_to_four_places() -> None:
    result = compute(
        _indicators(
            business_status="closed",
            monthly_household_income=600_002,
            household_size=3,
            savings=10,
            workers_employed=1,
            assistance_still_received=[],
            welfare_self_assessment=2,
        ),
        Baseline(monthly_income=900_000, household_size=3),
    )
    assert result.income_per_member == 200_000  # 600,002 / 3 = 200,000.67, floored
    assert result.income_per_member_change == -100_000  # 200,000 - 900,000 // 3
    assert result.income_change == -299_998  # 600,002 - 900,000
    # 0.5 * (2-1)/4 + 0.5 * (200,000 / 300,000 / 2) = 0.125 + 0.16667 = 0.29167 -> 0.2917
    assert result.welfare_index == 0.2917
    # 0.30 * (600,002 / 900,000 / 2 = 0.3333344) + 0.25 * 0 (closed) + 0.20 + 0.15 + 0.10 = 0.5500003 -> 0.55
    assert result.independence_index == 0.55


def test_without_a_baseline_the_growth_parts_drop_out_and_their_weight_is_spread() -> None:
    result = compute(
        _indicators(
            business_status="active",
            monthly_household_income=1_500_000,
            household_size=3,
            workers_employed=2,
            welfare_self_assessment=3,
        ),
        Baseline(monthly_income=None, household_size=None),
    )
    assert result.income_per_member == 500_000  # 1,500,000 // 3
    assert result.income_change is None
    assert result.income_per_member_change is None
    assert (result.baseline_monthly_income, result.baseline_household_size) == (None, None)
    # self-assessment alone: 0.5 * (3-1)/4 / 0.5 = 0.5
    assert result.welfare_index == 0.5
    # (0.25 * 1 active + 0.20 * 0 assistance + 0.15 * 0 savings + 0.10 * 1 workers) / (1 - 0.30) = 0.35 / 0.7
    assert result.independence_index == 0.5


def test_a_baseline_household_of_zero_gives_no_income_per_member_comparison() -> None:
    result = compute(
        _indicators(monthly_household_income=1_200_000, household_size=3, assistance_still_received=[]),
        Baseline(monthly_income=800_000, household_size=0),
    )
    assert result.income_per_member == 400_000  # 1,200,000 // 3
    assert result.income_per_member_change is None  # no per-member baseline: 800,000 / 0 is not computed
    assert result.income_change == 400_000  # 1,200,000 - 800,000: the household total still compares
    # self-assessment alone: (1-1)/4 = 0
    assert result.welfare_index == 0.0
    # 0.30 * (1,200,000 / 800,000 / 2 = 0.75) + 0.25 * 0.5 (paused) + 0.20 (no assistance) = 0.225 + 0.125 + 0.2
    assert result.independence_index == 0.55


def test_a_baseline_income_of_zero_counts_any_income_as_full_growth() -> None:
    result = compute(
        _indicators(business_status="closed", monthly_household_income=100_000, household_size=4),
        Baseline(monthly_income=0, household_size=4),
    )
    assert result.income_per_member == 25_000  # 100,000 // 4
    assert result.income_per_member_change == 25_000  # 25,000 - 0 // 4
    assert result.income_change == 100_000
    # 0.5 * (1-1)/4 + 0.5 * growth(25,000, 0) = 0 + 0.5 * 1
    assert result.welfare_index == 0.5
    # 0.30 * growth(100,000, 0) = 0.30; closed, assistance, no savings, no workers add 0
    assert result.independence_index == 0.3


def test_a_household_of_zero_never_reaches_the_formulas() -> None:
    # income per member divides by the household size: the contract refuses 0 people before compute() runs
    with pytest.raises(ValidationError) as refused:
        _indicators(household_size=0)
    assert [e["loc"] for e in refused.value.errors()] == [("household_size",)]


# ---- formula versions: 2026.2 (current) against 2026.1 ----------------------------------------------------


def test_current_version_is_2026_2_and_both_versions_stay_computable() -> None:
    assert measures.FORMULA_VERSION == "2026.2"
    assert measures.FORMULAS == ("2026.1", "2026.2")
    with pytest.raises(ValueError, match="unknown formula version"):
        compute(_indicators(), Baseline(monthly_income=None, household_size=None), version="2025.9")


def test_pkh_before_the_exit_decision_is_dependence_only_under_2026_1() -> None:
    pkh = _indicators(business_status="active", assistance_still_received=["PKH"])
    baseline = Baseline(monthly_income=None, household_size=None)  # growth parts drop out: 0.70 of the weight left
    old = compute(pkh, baseline, version="2026.1")
    new = compute(pkh, baseline)
    assert (old.formula_version, new.formula_version) == ("2026.1", "2026.2")
    assert old.independence_index == round(0.25 / 0.70, 4)  # active only: PKH counted as dependence
    assert new.independence_index == round((0.25 + 0.20) / 0.70, 4)  # PKH before exit: not dependence
    after_exit = compute(pkh, Baseline(monthly_income=None, household_size=None, exit_decided=True))
    assert after_exit.independence_index == round(0.25 / 0.70, 4)  # still PKH after the decision: dependence


def test_health_insurance_is_left_out_under_2026_2_but_food_assistance_still_counts() -> None:
    baseline = Baseline(monthly_income=None, household_size=None, exit_decided=True)
    pbi = _indicators(business_status="active", assistance_still_received=["PBI-JK"])
    assert compute(pbi, baseline, version="2026.1").independence_index == round(0.25 / 0.70, 4)
    assert compute(pbi, baseline).independence_index == round(0.45 / 0.70, 4)
    food = _indicators(business_status="active", assistance_still_received=["PBI-JK", "PKH", "BPNT"])
    assert compute(food, Baseline(monthly_income=None, household_size=None)).independence_index == round(0.25 / 0.70, 4)
    assert measures.dependence(["pkh", " PBI-JK ", "BPNT"], exit_decided=False, version="2026.2") == ["BPNT"]
