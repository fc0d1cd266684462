"""Results of one survey against the participant's baseline: income change, income per household
member, a welfare index and an economic independence index (both 0..1). Pure functions, versioned by
FORMULA_VERSION; docs/services/monev.md states the formulas and weights. Changing a formula or a weight
means a new FORMULA_VERSION (results already stored keep the version they were computed with: each
survey row and monev.completed carry `formula_version`).

Versions (FORMULAS): `2026.1` counted every assistance programme still received as dependence;
`2026.2` leaves health insurance (PBI-JK) out and does not count conditional cash (PKH) still received
before the exit decision (every family receives it until then), only after it."""

from __future__ import annotations

from dataclasses import dataclass

from pena.contracts.monev import MonevIndicators, MonevMeasures

FORMULA_VERSION = "2026.2"
FORMULAS = ("2026.1", "2026.2")  # every version this module can still compute, oldest first

# welfare index: how the family feels + how income per member moved
WELFARE_WEIGHTS = {"self_assessment": 0.5, "income_per_member_growth": 0.5}
# economic independence index
INDEPENDENCE_WEIGHTS = {
    "income_growth": 0.30,
    "business_active": 0.25,
    "no_assistance": 0.20,
    "has_savings": 0.15,
    "employs_workers": 0.10,
}
BUSINESS_STATUS_SCORE = {"active": 1.0, "paused": 0.5, "closed": 0.0}
# 2026.2: programmes that are not dependence: health insurance always, conditional cash before the exit decision
NEVER_DEPENDENCE = frozenset({"PBI-JK"})
NOT_DEPENDENCE_BEFORE_EXIT = frozenset({"PKH"})


@dataclass(frozen=True)
class Baseline:
    monthly_income: int | None
    household_size: int | None
    exit_decided: bool = False  # the graduation (exit) decision was taken before this visit


def dependence(assistance: list[str], *, exit_decided: bool, version: str) -> list[str]:
    """The programmes still received that count as dependence under a formula version."""
    received = sorted({a.strip().upper() for a in assistance if a.strip()})
    if version == "2026.1":
        return received
    excluded = NEVER_DEPENDENCE if exit_decided else NEVER_DEPENDENCE | NOT_DEPENDENCE_BEFORE_EXIT
    return [a for a in received if a not in excluded]


def growth_score(now: int, before: int | None) -> float | None:
    """Ratio now/before halved and capped to 0..1: 0 = no income, 0.5 = unchanged, 1 = doubled or more.
    None when there is no baseline to compare with."""
    if before is None:
        return None
    if before <= 0:
        return 1.0 if now > 0 else 0.5
    return min(max(now / before / 2, 0.0), 1.0)


def _weighted(parts: dict[str, float | None], weights: dict[str, float]) -> float:
    """Weighted mean over the parts that could be computed (weights of missing parts are redistributed)."""
    known = {name: value for name, value in parts.items() if value is not None}
    total = sum(weights[name] for name in known)
    if total == 0:
        return 0.0
    return round(sum(weights[name] * value for name, value in known.items()) / total, 4)


def compute(indicators: MonevIndicators, baseline: Baseline, *, version: str | None = None) -> MonevMeasures:
    """The measures under `version` (default: the current FORMULA_VERSION)."""
    version = version or FORMULA_VERSION
    if version not in FORMULAS:
        raise ValueError(f"unknown formula version {version}")
    income = indicators.monthly_household_income
    per_member = income // indicators.household_size
    baseline_per_member = (
        baseline.monthly_income // baseline.household_size
        if baseline.monthly_income is not None and baseline.household_size
        else None
    )
    welfare = _weighted(
        {
            "self_assessment": (indicators.welfare_self_assessment - 1) / 4,
            "income_per_member_growth": growth_score(per_member, baseline_per_member),
        },
        WELFARE_WEIGHTS,
    )
    independence = _weighted(
        {
            "income_growth": growth_score(income, baseline.monthly_income),
            "business_active": BUSINESS_STATUS_SCORE[indicators.business_status],
            "no_assistance": 0.0
            if dependence(indicators.assistance_still_received, exit_decided=baseline.exit_decided, version=version)
            else 1.0,
            "has_savings": 1.0 if indicators.savings > 0 else 0.0,
            "employs_workers": 1.0 if indicators.workers_employed > 0 else 0.0,
        },
        INDEPENDENCE_WEIGHTS,
    )
    return MonevMeasures(
        formula_version=version,
        baseline_monthly_income=baseline.monthly_income,
        baseline_household_size=baseline.household_size,
        income_change=income - baseline.monthly_income if baseline.monthly_income is not None else None,
        income_per_member=per_member,
        income_per_member_change=per_member - baseline_per_member if baseline_per_member is not None else None,
        welfare_index=welfare,
        independence_index=independence,
    )
