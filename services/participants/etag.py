"""Optimistic concurrency over HTTP: the ETag of a participant is its version; changes send If-Match."""

from __future__ import annotations

from pena.problems import Problem
from services.participants.models import Participant


def etag(participant: Participant) -> str:
    return version_etag(participant.version)


def version_etag(version: int) -> str:
    return f'"{version}"'


def check_if_match(participant: Participant, if_match: str | None) -> None:
    if not if_match:
        raise Problem(
            428,
            "Precondition required",
            "send If-Match with the ETag of the record you read",
            type_="if-match-required",
        )
    candidates = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if "*" not in candidates and etag(participant) not in candidates:
        raise Problem(
            412,
            "Precondition failed",
            "the record changed since you read it; read it again and retry",
            type_="etag-mismatch",
            current_version=participant.version,
        )
