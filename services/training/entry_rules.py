"""Entry rules checked at enrolment, as a versioned policy (the `entry_policies` table): working age,
KPM status, a running or planned business, and the family's agreement to leave assistance on
graduation. The version in force on the enrolment's business date applies and is recorded on the
enrolment; each failed rule is one error (field, rule code) of one 422 problem, unless an admin
overrides with a reason (services/training/enrolment.py records which rules were overridden).

The rules read training's read model of the registry's facts (birth year, assistance programmes,
DTSEN decile, business field: participant.registered / participant.updated), never the registry."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.problems import Problem
from services.training import queries
from services.training.models import EligibleParticipant, EntryPolicy
from services.training.schemas import EntryPolicyRead


class EntryParameters(BaseModel):
    """The parameters of one policy version (docs/services/training.md, "Entry rules")."""

    min_age: int = Field(ge=0, le=120, description="youngest age (in years, by birth year) who may enrol")
    max_age: int = Field(ge=0, le=120, description="oldest age who may enrol")
    kpm_programmes: list[str] = Field(min_length=1, description="a KPM receives at least one of these")
    max_dtsen_decile: int | None = Field(default=None, ge=1, le=10, description="highest DTSEN decile; None: any")
    require_business: bool = True
    require_exit_agreement: bool = True


def _error(field: str, rule: str, message: str) -> dict[str, str]:
    return {"field": field, "rule": rule, "message": message}


def failed_rules(
    policy: EntryPolicy, participant: EligibleParticipant, *, exit_agreement: bool, on: date
) -> list[dict[str, str]]:
    """One error per rule the participant fails under `policy` on the business date `on`. A fact the
    read model does not hold fails its rule (fail closed): the registry has not announced it."""
    rules = EntryParameters.model_validate(policy.parameters)
    errors: list[dict[str, str]] = []
    if participant.birth_year is None:
        errors.append(_error("participant.birth_year", "working_age", "the participant's birth year is not known"))
    elif not rules.min_age <= on.year - participant.birth_year <= rules.max_age:
        errors.append(
            _error(
                "participant.birth_year",
                "working_age",
                f"aged {on.year - participant.birth_year} in {on.year}: "
                f"working age is {rules.min_age} to {rules.max_age}",
            )
        )
    programmes = set(participant.assistance_programmes or [])
    if not programmes & set(rules.kpm_programmes):
        errors.append(
            _error(
                "participant.assistance_programmes",
                "kpm_status",
                f"a KPM receives {' or '.join(rules.kpm_programmes)}; the registry records none of them",
            )
        )
    elif rules.max_dtsen_decile is not None and (
        participant.dtsen_decile is None or participant.dtsen_decile > rules.max_dtsen_decile
    ):
        found = "unknown" if participant.dtsen_decile is None else str(participant.dtsen_decile)
        errors.append(
            _error(
                "participant.dtsen_decile",
                "kpm_status",
                f"a KPM is in DTSEN deciles 1 to {rules.max_dtsen_decile}; the registry records {found}",
            )
        )
    if rules.require_business and not participant.business_field:
        errors.append(
            _error(
                "participant.business_field",
                "business_running_or_planned",
                "the registry records no running or planned business (business_field) for the participant",
            )
        )
    if rules.require_exit_agreement and not exit_agreement:
        errors.append(
            _error(
                "exit_agreement",
                "exit_agreement_required",
                "the family must agree to leave social assistance on graduation (exit_agreement: true)",
            )
        )
    return errors


def entry_rules_problem(policy: EntryPolicy, errors: list[dict[str, str]], participant_id: str) -> Problem:
    rules = ", ".join(dict.fromkeys(e["rule"] for e in errors))
    return Problem(
        422,
        "Entry rules not met",
        f"the participant does not meet the entry rules of policy {policy.version}: {rules}",
        type_="entry_rules_failed",
        errors=errors,
        policy_version=policy.version,
        participant_id=participant_id,
    )


def no_policy_problem(on: date) -> Problem:
    return Problem(
        409,
        "Conflict",
        f"no entry policy is in force on {on.isoformat()}: enrolment waits for one",
        type_="no_entry_policy",
    )


async def entry_policies(session: AsyncSession) -> list[EntryPolicyRead]:
    """Every policy version, oldest first (reference data: what enrolment checks, and since when)."""
    return [
        EntryPolicyRead(
            version=p.version,
            effective_from=p.effective_from,
            parameters=EntryParameters.model_validate(p.parameters).model_dump(),  # type: ignore[arg-type]
            source=p.source,
        )
        for p in await queries.entry_policies(session)
    ]
