"""RFC 9457 problem+json for every error the APIs return, including validation failures
(each names the field and the rule) and an unavailable database (503, never a raw 500 or a hang)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pena.consumer import causes, is_transient
from pena.context import request_id_var

log = logging.getLogger("pena.http")
PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://pena.kemensos.go.id/problems/"


class Problem(Exception):
    """Raise from any layer; becomes an RFC 9457 response. `extra` adds members (e.g. existing_id)."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        type_: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type_ or title.lower().replace(" ", "-")
        self.errors = errors
        self.headers = headers
        self.extra = extra


def not_found(kind: str, ident: object) -> Problem:
    return Problem(404, "Not found", f"no {kind} with id {ident} (or it is outside your unit)", type_="not-found")


def field_error(field: str, rule: str, message: str, status: int = 422, **extra: Any) -> Problem:
    return Problem(
        status,
        "Validation failed",
        message,
        type_="validation",
        errors=[{"field": field, "rule": rule, "message": message}],
        **extra,
    )


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    type_: str = "about:blank",
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": type_ if type_.startswith(("http", "about:")) else TYPE_BASE + type_,
        "title": title,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    if rid := request_id_var.get():
        body["request_id"] = rid
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        errors.append(
            {
                "field": ".".join(loc[1:])
                if len(loc) > 1 and loc[0] in ("body", "query", "path", "header")
                else ".".join(loc),
                "in": loc[0] if loc else None,
                "rule": err.get("type"),
                "message": err.get("msg"),
            }
        )
    return errors


def data_exception_state(exc: BaseException) -> str | None:
    """The SQLSTATE of a PostgreSQL data exception (class 22: numeric value out of range, invalid
    text representation, datetime overflow, ...) anywhere in the cause chain, else None."""
    for current in causes(exc):
        state = getattr(current, "sqlstate", None)
        if isinstance(state, str) and state.startswith("22"):
            return state
    return None


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            exc.status,
            exc.title,
            exc.detail,
            type_=exc.type,
            instance=request.url.path,
            headers=exc.headers,
            errors=exc.errors,
            **exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        fields = ", ".join(e["field"] for e in errors[:5])
        return problem_response(
            422,
            "Validation failed",
            f"invalid input: {fields}",
            type_="validation",
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(
            exc.status_code,
            str(exc.detail) if exc.detail else "Error",
            instance=request.url.path,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if is_transient(exc):
            return problem_response(
                503,
                "Service unavailable",
                "the database is not reachable; retry shortly",
                type_="unavailable",
                instance=request.url.path,
                headers={"Retry-After": "2"},
            )
        if (sqlstate := data_exception_state(exc)) is not None:
            # a value the database refused (out of range, malformed): the input's fault, and nothing
            # was written (the transaction rolled back). Logged without the value.
            log.warning("database refused a value", extra={"path": request.url.path, "sqlstate": sqlstate})
            return problem_response(
                422,
                "Validation failed",
                "a value is out of the range or form the database can store or compare",
                type_="validation",
                instance=request.url.path,
                errors=[{"field": None, "rule": "database_data_exception", "message": f"SQLSTATE {sqlstate}"}],
            )
        log.exception("unhandled error", extra={"path": request.url.path})
        return problem_response(
            500,
            "Internal error",
            "an unexpected error occurred; it has been logged",
            type_="internal",
            instance=request.url.path,
        )
