"""`GET /v1/audit`: the audit log of a service, for auditors (`audit:read`, national reach). The kernel
mounts it on every app. A process serving one service (`pena serve <service>`, one deployment per
service) answers with that service's log, `service` optional; the single-process app (`pena dev`) holds
four logs and needs `service=` to say which."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request

from pena.access import policy
from pena.audit import AuditEntryRead, read_audit
from pena.auth import Principal
from pena.http.deps import get_runtime
from pena.pagination import Page, Paging
from pena.problems import field_error
from pena.queries import AuditFilter
from pena.runtime import Runtime, ServiceRuntime

audit = APIRouter(tags=["audit"])
Auditor = Annotated[Principal, policy("audit:read", "national")]
Text = Annotated[str | None, Query(min_length=1, max_length=200)]


def audited_service(runtime: Runtime, service: str | None) -> ServiceRuntime:
    """The service whose log is read: the one named, or the only one of the process."""
    names = sorted(runtime.services)
    if service is None:
        if len(names) == 1:
            return runtime.services[names[0]]
        raise field_error("service", "required", f"this process serves several services: name one of {names}")
    if service not in runtime.services:
        raise field_error("service", "one_of", f"service must be one of {names}")
    return runtime.services[service]


@audit.get("/v1/audit", summary="Read a service's audit log (newest first, keyset-paginated)")
async def read_audit_log(
    request: Request,
    principal: Auditor,
    page: Paging,
    service: Text = None,
    subject_type: Text = None,
    subject_id: Text = None,
    actor: Text = None,
    action: Text = None,
    since: Annotated[datetime | None, Query(description="entries at or after this time (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="entries before this time (ISO 8601)")] = None,
) -> Page[AuditEntryRead]:
    if subject_id is not None and subject_type is None:
        raise field_error("subject_id", "requires_subject_type", "subject_id needs subject_type (e.g. participant)")
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise field_error(name, "timezone_required", f"{name} needs a time zone (e.g. 2026-01-05T00:00:00Z)")
    if since is not None and until is not None and since >= until:
        raise field_error("until", "after_since", "until must be later than since")
    svc = audited_service(get_runtime(request), service)
    where = AuditFilter(subject_type, subject_id, actor, action, since, until)
    async with svc.db.transaction() as session:
        return await read_audit(session, principal, where, page)
