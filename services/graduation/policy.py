"""Graduation criteria as data: a policy version's `criteria` dict is evaluated against one Monev
result and the reference figures in force for the visit year. Pure functions, no database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pena.contracts.graduation import CriterionResult
from pena.contracts.monev import MonevIndicators

Outcome = Literal["ready", "not_ready", "cannot_assess"]

# Monev mentoring visits after a graduation, as ISO-8601 offsets from the decision's effective date
DEFAULT_MENTORING_FOLLOW_UPS = ["P6M", "P12M"]

DEFAULT_CRITERIA: dict[str, Any] = {
    "household_income_at_least_umk": True,
    "income_per_member_above_poverty_line_margin": 0.2,
    "business_active_required": True,
    "voluntary_statement_required_for_sejahtera_mandiri": True,
    "mentoring_follow_ups": DEFAULT_MENTORING_FOLLOW_UPS,
}

# The voluntary statement decides which kind of graduation may be approved, not readiness itself.
NON_BLOCKING = {"voluntary_exit_statement"}


@dataclass(frozen=True)
class WageFigure:
    level: str  # "umk" | "ump"
    region_code: str
    year: int
    amount: int
    source: str
    is_example: bool


@dataclass(frozen=True)
class PovertyFigure:
    year: int
    amount: int
    source: str
    is_example: bool


@dataclass(frozen=True)
class ReferenceFigures:
    year: int
    regency_code: str
    province_code: str
    wage: WageFigure | None
    poverty_line: PovertyFigure | None

    def as_record(self) -> dict[str, Any]:
        """Every reference value an assessment used, stored with it (policy changes never rewrite it)."""
        return {
            "year": self.year,
            "regency_code": self.regency_code,
            "province_code": self.province_code,
            "minimum_wage": None if self.wage is None else vars(self.wage),
            "poverty_line": None if self.poverty_line is None else vars(self.poverty_line),
        }


def mentoring_follow_ups(criteria: dict[str, Any]) -> list[str]:
    """The mentoring schedule of a policy version; a version published before the key existed gets the
    default (an explicit empty list means no mentoring visits)."""
    offsets = criteria.get("mentoring_follow_ups")
    return list(DEFAULT_MENTORING_FOLLOW_UPS if offsets is None else offsets)


def below_poverty_line(income: int, household_size: int, line: PovertyFigure) -> tuple[int, bool]:
    """Income per person (rounded like the readiness criterion) and whether it is below the line:
    a graduated family back under the extreme-poverty line has relapsed."""
    per_member = round(income / household_size)
    return per_member, per_member < line.amount


def rupiah(amount: float) -> str:
    return "Rp " + f"{round(amount):,}".replace(",", ".")


def _example(flag: bool) -> str:
    return " (example reference value, not an official figure)" if flag else ""


def wage_note(refs: ReferenceFigures) -> str:
    wage = refs.wage
    if wage is None:
        return f"no UMK for {refs.regency_code} and no UMP for {refs.province_code} in {refs.year}"
    if wage.level == "ump":
        return (
            f"UMP fallback: no UMK for {refs.regency_code} in {refs.year}; "
            f"UMP {wage.region_code} {wage.year} {rupiah(wage.amount)} used{_example(wage.is_example)}"
        )
    return f"UMK {wage.region_code} {wage.year} {rupiah(wage.amount)}{_example(wage.is_example)}"


def evaluate(
    criteria: dict[str, Any], indicators: MonevIndicators, refs: ReferenceFigures
) -> tuple[Outcome, list[CriterionResult]]:
    results: list[CriterionResult] = []
    income = indicators.monthly_household_income

    if criteria.get("household_income_at_least_umk"):
        if refs.wage is None:
            results.append(
                CriterionResult(
                    criterion="household_income_at_least_minimum_wage",
                    value=income,
                    threshold=None,
                    passed=None,
                    note=wage_note(refs),
                )
            )
        else:
            results.append(
                CriterionResult(
                    criterion="household_income_at_least_minimum_wage",
                    value=income,
                    threshold=refs.wage.amount,
                    passed=income >= refs.wage.amount,
                    note=wage_note(refs),
                )
            )

    margin = criteria.get("income_per_member_above_poverty_line_margin")
    if margin is not None:
        per_member = round(income / indicators.household_size)
        line = refs.poverty_line
        if line is None:
            results.append(
                CriterionResult(
                    criterion="income_per_member_above_poverty_line",
                    value=per_member,
                    threshold=None,
                    passed=None,
                    note=f"no extreme-poverty line for {refs.year}",
                )
            )
        else:
            threshold = round(line.amount * (1 + float(margin)))
            results.append(
                CriterionResult(
                    criterion="income_per_member_above_poverty_line",
                    value=per_member,
                    threshold=threshold,
                    passed=per_member > threshold,
                    note=f"extreme-poverty line {line.year} {rupiah(line.amount)} per person per month "
                    f"x (1 + {float(margin):g} margin); {rupiah(income)} / {indicators.household_size} members"
                    f"{_example(line.is_example)}",
                )
            )

    if criteria.get("business_active_required"):
        results.append(
            CriterionResult(
                criterion="business_active",
                value=indicators.business_status,
                threshold="active",
                passed=indicators.business_status == "active",
                note=None if indicators.business_status == "active" else "the business is not running",
            )
        )

    if criteria.get("voluntary_statement_required_for_sejahtera_mandiri"):
        results.append(
            CriterionResult(
                criterion="voluntary_exit_statement",
                value=indicators.voluntary_exit_statement,
                threshold=True,
                passed=indicators.voluntary_exit_statement,
                note="required to approve kind sejahtera_mandiri; does not block readiness",
            )
        )

    blocking = [r for r in results if r.criterion not in NON_BLOCKING]
    if any(r.passed is None for r in blocking):
        return "cannot_assess", results
    if all(r.passed for r in blocking):
        return "ready", results
    return "not_ready", results
