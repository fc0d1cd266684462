"""Response models built from stored rows: tasks, survey versions and summary groups.

Property level (RELIABILITY.md): a survey's free-text notes may name people, so they are decrypted only
for a caller whose token may write surveys (`monev:submit`: the assigned facilitator, an admin) and who
reaches the task; any other reader gets `notes: null` and `notes_withheld: true`. Indicators and
measures are what `monev:read` is for."""

from __future__ import annotations

from typing import Any

from pena.auth import Principal
from pena.crypto import FieldCipher
from pena.settings import Settings
from services.monev import measures
from services.monev.models import MonevSurvey, MonevTask
from services.monev.schemas import QuartileSummary, SummaryGroupRead, SurveyRead, TaskRead, TaskSummaryRead


def task_summary_read(task: MonevTask) -> TaskSummaryRead:
    return TaskSummaryRead.model_validate(task, from_attributes=True)


NOTES_SCOPE = "monev:submit"


def may_read_notes(principal: Principal) -> bool:
    return principal.has(NOTES_SCOPE)


def decrypt_notes(survey: MonevSurvey, settings: Settings) -> str | None:
    if survey.notes_encrypted is None:
        return None
    return FieldCipher(settings.field_encryption_key).decrypt(survey.notes_encrypted)


def decrypt_early_reason(survey: MonevSurvey, settings: Settings) -> str | None:
    if survey.early_reason_encrypted is None:
        return None
    return FieldCipher(settings.field_encryption_key).decrypt(survey.early_reason_encrypted)


def indicators_of(survey: MonevSurvey) -> measures.MonevIndicators:
    return measures.MonevIndicators(**{name: getattr(survey, name) for name in measures.MonevIndicators.model_fields})


def measures_of(survey: MonevSurvey) -> measures.MonevMeasures:
    return measures.MonevMeasures(**{name: getattr(survey, name) for name in measures.MonevMeasures.model_fields})


def survey_read(survey: MonevSurvey, settings: Settings, *, with_notes: bool) -> SurveyRead:
    withheld = not with_notes and survey.notes_encrypted is not None
    return SurveyRead(
        id=survey.id,
        task_id=survey.task_id,
        version=survey.version,
        visit_date=survey.visit_date,
        respondent=survey.respondent,
        indicators=indicators_of(survey),
        measures=measures_of(survey),
        notes=decrypt_notes(survey, settings) if with_notes else None,
        notes_withheld=withheld,
        correction_reason=survey.correction_reason,
        early=survey.early,
        early_reason=decrypt_early_reason(survey, settings) if with_notes else None,
        submitted_by=survey.submitted_by,
        submitted_at=survey.submitted_at,
    )


def task_read(task: MonevTask, survey: MonevSurvey | None, settings: Settings, *, with_notes: bool) -> TaskRead:
    return TaskRead(
        **task_summary_read(task).model_dump(),
        announced_at=task.announced_at,
        created_at=task.created_at,
        updated_at=task.updated_at,
        # an erased participant's survey keeps no figures to show (services/monev/erasure.py)
        result=survey_read(survey, settings, with_notes=with_notes) if survey and survey.erased_at is None else None,
    )


def summary_group_read(row: dict[str, Any]) -> SummaryGroupRead:
    quartiles = row["income_quartiles"] or [None, None, None]
    due = int(row["tasks_due"])
    done = int(row["tasks_done"])

    def rounded(value: Any) -> float | None:
        return None if value is None else round(float(value), 4)

    return SummaryGroupRead(
        group=None if row["group_key"] is None else str(row["group_key"]),
        tasks_total=int(row["tasks_total"]),
        tasks_due=due,
        tasks_done=done,
        tasks_overdue=int(row["tasks_overdue"]),
        persons=int(row["persons"]),
        kpm=int(row["kpm"]),
        surveyed=int(row["surveyed"]),
        completion_rate=round(done / due, 4) if due else None,
        income_change=QuartileSummary(q1=quartiles[0], median=quartiles[1], q3=quartiles[2]),
        business_active_share=rounded(row["business_active_share"]),
        welfare_index_mean=rounded(row["welfare_index_mean"]),
        independence_index_mean=rounded(row["independence_index_mean"]),
    )
