"""The routes of bulk imports, written once (pena.import_runs): `import_routes` adds to a service's router,
for each import kind, `POST <prefix>/imports/<kind path>` (a multipart `file`, CSV or XLSX; 202 with the
run and its Location; Idempotency-Key honoured) and `GET <prefix>/imports/templates/<kind path>` (the
template, CSV or XLSX by Accept), and once `GET <prefix>/imports/{import_id}` (progress and counts) and
`GET <prefix>/imports/{import_id}/errors` (row, field, rule as CSV; never a value).

The service passes its policies (pena.access) and session dependency, so every route declares its
permission like a hand-written one. (No `from __future__ import annotations` here: the route signatures
use the service's dependency types, which FastAPI must see as objects.)"""

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from pena.http.deps import ClockDep, SettingsDep
from pena.http.openapi import CsvResponse
from pena.http.tabular import XLSX_MEDIA_TYPE, wanted_format
from pena.idempotency import IdempotencyKey, idempotent
from pena.import_runs import ImportKind, errors_csv, load_run, start_import, template_csv, template_xlsx
from pena.imports import file_sha256


class ImportRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "2d4f6a8c-1e3b-4d5f-8a9c-0b2d4f6a8c1e",
                    "kind": "participants",
                    "status": "done",
                    "filename": "peserta-padang-oktober.csv",
                    "total_rows": 120,
                    "processed_rows": 120,
                    "created_rows": 116,
                    "duplicate_rows": 3,
                    "error_rows": 1,
                    "created_at": "2026-10-02T02:00:00Z",
                    "finished_at": "2026-10-02T02:00:41Z",
                }
            ]
        }
    )
    id: str
    kind: str
    status: str  # queued, running, done
    filename: str | None
    total_rows: int
    processed_rows: int
    created_rows: int
    duplicate_rows: int  # rows already there (e.g. the same file uploaded again)
    error_rows: int  # rows refused: see the errors file
    created_at: datetime
    finished_at: datetime | None


def import_read(run: dict[str, Any]) -> dict[str, Any]:
    return ImportRead.model_validate(run).model_dump(mode="json")


def _suffix(kind: ImportKind) -> str:
    return f"{kind.path}_" if kind.path else ""


def _add_kind(router: APIRouter, kind: ImportKind, session_type: Any, writer: Any, reference: Any) -> None:
    segment = f"/{kind.path}" if kind.path else ""
    example = template_csv(kind).decode()

    async def start(
        session: session_type,
        settings: SettingsDep,
        clock: ClockDep,
        principal: writer,
        file: Annotated[UploadFile, File(description="UTF-8 CSV or XLSX (first sheet) with a header row")],
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:
        async def effect() -> tuple[int, dict[str, Any], dict[str, str]]:
            run = await start_import(
                session,
                kind=kind,
                principal=principal,
                settings=settings,
                clock=clock,
                file=file.file,
                filename=file.filename,
            )
            return 202, import_read(run), {"Location": f"{router.prefix}/imports/{run['id']}"}

        fingerprint = {"sha256": await asyncio.to_thread(file_sha256, file.file)}
        return await idempotent(
            session,
            principal=principal,
            key=idempotency_key,
            scope=f"{kind.name}.import",
            body=fingerprint,
            effect=effect,
        )

    async def template(request: Request, principal: reference) -> Response:
        name = kind.path or kind.name
        if wanted_format(request) == "xlsx":
            body = await asyncio.to_thread(template_xlsx, kind)
            disposition = {"Content-Disposition": f'attachment; filename="{name}-template.xlsx"'}
            return Response(body, media_type=XLSX_MEDIA_TYPE, headers=disposition)
        disposition = {"Content-Disposition": f'attachment; filename="{name}-template.csv"'}
        return Response(template_csv(kind), media_type="text/csv; charset=utf-8", headers=disposition)

    router.add_api_route(
        f"/imports{segment}",
        start,
        methods=["POST"],
        status_code=202,
        response_model=ImportRead,
        name=f"start_{_suffix(kind)}import",
        summary=f"{kind.description} from a CSV or XLSX (background job)",
        openapi_extra={"requestBody": {"content": {"multipart/form-data": {"example": {"file": example}}}}},
    )
    router.add_api_route(
        f"/imports/templates/{kind.path or kind.name}",
        template,
        methods=["GET"],
        name=f"get_{_suffix(kind)}import_template",
        summary=f"Template of the {kind.path or kind.name} import: columns and an example row (CSV, XLSX by Accept)",
        response_class=CsvResponse,
    )


def import_routes(
    router: APIRouter,
    *,
    kinds: Sequence[ImportKind],
    session_type: Any,
    writer: Any,
    viewer: Any,
    reference: Any,
) -> None:
    """Adds the import routes of `kinds` to `router`. `session_type` is the service's session dependency type;
    `writer` the policy of starting an import, `viewer` of reading a run (scope "assigned": the uploader
    and admins), `reference` of the templates (no records: scope "none")."""
    for kind in kinds:
        _add_kind(router, kind, session_type, writer, reference)

    async def get_import(import_id: str, session: session_type, principal: viewer) -> ImportRead:
        return ImportRead.model_validate(await load_run(session, principal=principal, import_id=import_id))

    async def get_import_errors(import_id: str, session: session_type, principal: viewer) -> Response:
        body = await errors_csv(session, principal=principal, import_id=import_id)
        return Response(body, media_type="text/csv; charset=utf-8")

    router.add_api_route(
        "/imports/{import_id}",
        get_import,
        methods=["GET"],
        response_model=ImportRead,
        summary="Progress and counts of an import",
    )
    router.add_api_route(
        "/imports/{import_id}/errors",
        get_import_errors,
        methods=["GET"],
        summary="Refused fields of an import as CSV (row, field, rule; no values)",
        response_class=CsvResponse,
    )
