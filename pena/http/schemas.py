"""`GET /schemas/{name}/v{version}.json`: the JSON Schema of an event's `data`, at the path of the
`dataschema` URL every event of that type carries (pena/contracts). Public, like the documentation:
integrators fetch it without a token. A process serves the schemas of the events its services own
(all of them in `pena dev`); any other name or version is a 404."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from pena.access import public
from pena.contracts import BY_NAME
from pena.http.deps import get_runtime
from pena.problems import PROBLEM_JSON, Problem

schemas = APIRouter(tags=["schemas"])
SCHEMA_JSON = "application/schema+json"
SCHEMA_EXAMPLE = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://pena.kemensos.go.id/schemas/participant.status_changed/v1.json",
    "title": "ParticipantStatusChanged",
    "type": "object",
    "properties": {"participant_id": {"type": "string"}, "to_status": {"type": "string"}},
    "required": ["participant_id", "to_status"],
}


class SchemaJsonResponse(JSONResponse):
    """A JSON Schema document (documented as application/schema+json only: the route answers nothing else)."""

    media_type = SCHEMA_JSON


@schemas.get(
    "/schemas/{name}/v{version}.json",
    summary="JSON Schema of an event type's data (its CloudEvents dataschema URL)",
    dependencies=[public()],
    response_class=SchemaJsonResponse,
    responses={
        200: {"content": {SCHEMA_JSON: {"schema": {"type": "object"}, "example": SCHEMA_EXAMPLE}}},
        404: {"description": "not an event type of this process's services", "content": {PROBLEM_JSON: {}}},
    },
)
async def event_schema(name: str, version: str, request: Request) -> JSONResponse:
    contract = BY_NAME.get(name)
    owned = contract is not None and contract.service in get_runtime(request).services
    if contract is None or not owned or version != str(contract.version):
        raise Problem(
            404,
            "Not found",
            f"no schema {name} v{version} here: this process serves the event types of its services "
            f"({', '.join(sorted(get_runtime(request).services))})",
            type_="not-found",
        )
    return JSONResponse(contract.json_schema(), media_type=SCHEMA_JSON)
