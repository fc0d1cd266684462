"""The CSV export: its own scope, the caller's reach, formulas neutralised, one audit row per subject.

Only admins hold `participants:export` (pena/auth.py); these tests also grant it to other roles for
the test's duration, exactly as a ROLE_SCOPES entry would, to show reach still applies."""

from __future__ import annotations

import csv
import io

import pytest

from pena.auth import ROLE_SCOPES
from services.participants.exports import cell
from tests.participants.support import WOMAN_NIK, man, woman
from tests.support import audit_rows

EXPORT = "participants:export"


@pytest.fixture
def exporters(monkeypatch: pytest.MonkeyPatch) -> None:
    for role in ("admin", "integrator", "facilitator"):
        monkeypatch.setitem(ROLE_SCOPES, role, ROLE_SCOPES[role] | {EXPORT})


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_export_needs_its_own_scope(registry) -> None:
    await registry.client.post("/v1/participants", json=woman(), headers=registry.admin)
    # participants:read (and read_nik) are not enough: the integrator holds both, not the export scope
    refused = await registry.client.get("/v1/participants/export.csv", headers=registry.integrator)
    assert refused.status_code == 403, refused.text
    assert EXPORT in refused.json()["detail"]
    assert EXPORT in ROLE_SCOPES["admin"]
    allowed = await registry.client.get("/v1/participants/export.csv", headers=registry.admin)
    assert allowed.status_code == 200, allowed.text


@pytest.mark.usefixtures("exporters")
async def test_export_masks_nik_without_scope_and_applies_filters(registry, auth) -> None:
    await registry.client.post("/v1/participants", json=woman(), headers=registry.admin)
    await registry.client.post("/v1/participants", json=man(region_code="1375011001"), headers=registry.admin)
    as_integrator = await registry.client.get(
        "/v1/participants/export.csv?region_prefix=1371", headers=registry.integrator
    )
    assert as_integrator.status_code == 200
    assert as_integrator.headers["content-type"].startswith("text/csv")
    [row] = rows_of(as_integrator.text)
    assert row["nik"] == "1371**********01"
    assert WOMAN_NIK not in as_integrator.text
    as_admin = await registry.client.get("/v1/participants/export.csv", headers=registry.admin)
    assert WOMAN_NIK in as_admin.text
    assert len(rows_of(as_admin.text)) == 2
    as_facilitator = await registry.client.get("/v1/participants/export.csv", headers=auth("facilitator", unit="1375"))
    assert [r["full_name"] for r in rows_of(as_facilitator.text)] == ["Budi Santoso"]


@pytest.mark.usefixtures("exporters")
async def test_export_neutralises_spreadsheet_formulas(registry) -> None:
    formulas = ['=HYPERLINK("http://evil.example","x")', "+1+2", "-2+3", "@SUM(A1)", "\tTab", "\rCR"]
    niks = ["1371015205900001", "1371015205900002", "1371015205900003"]
    niks += ["1371015205900004", "1371015205900005", "1371015205900006"]
    for name, nik in zip(formulas, niks, strict=True):
        created = await registry.client.post(
            "/v1/participants", json=woman(nik=nik, full_name=name), headers=registry.admin
        )
        assert created.status_code == 201, created.text
    answer = await registry.client.get("/v1/participants/export.csv", headers=registry.admin)
    names = [r["full_name"] for r in rows_of(answer.text)]
    # the schema strips surrounding whitespace of names: tab and CR survive only inside
    stored = [n.strip() for n in formulas]
    assert sorted(names) == sorted(("'" + n if n[:1] in "=+-@\t\r" else n) for n in stored)
    assert not [n for n in names if n[:1] in "=+-@\t\r"]


@pytest.mark.usefixtures("exporters")
async def test_export_and_list_audit_every_subject(registry) -> None:
    first = (await registry.client.post("/v1/participants", json=woman(), headers=registry.admin)).json()
    second = (await registry.client.post("/v1/participants", json=man(), headers=registry.admin)).json()
    answer = await registry.client.get("/v1/participants/export.csv", headers=registry.integrator)
    assert answer.status_code == 200
    exported = await audit_rows(registry.runtime, "participants", "participant.export")
    assert sorted(r.subject_id for r in exported) == sorted([first["id"], second["id"]])
    assert {r.actor for r in exported} == {"dev-integrator"}
    listed = await registry.client.get("/v1/participants?limit=1", headers=registry.integrator)
    assert listed.status_code == 200
    audited = await audit_rows(registry.runtime, "participants", "participant.list")
    assert [r.subject_id for r in audited] == [listed.json()["items"][0]["id"]]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("=1+1", "'=1+1"),
        ("+62 812", "'+62 812"),
        ("-5", "'-5"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("Siti", "Siti"),
        (3, "3"),
        (None, ""),
    ],
)
def test_cells_that_start_like_a_formula_are_quoted(value: object, shown: str) -> None:
    assert cell(value) == shown


@pytest.mark.usefixtures("exporters")
async def test_xlsx_export_has_the_csv_rows_as_text_cells(registry, auth) -> None:
    import openpyxl

    from pena.http.tabular import XLSX_MEDIA_TYPE

    await registry.client.post("/v1/participants", json=woman(), headers=registry.admin)
    await registry.client.post("/v1/participants", json=man(region_code="1375011001"), headers=registry.admin)
    as_csv = await registry.client.get("/v1/participants/export.csv?region_prefix=1371", headers=registry.integrator)
    as_xlsx = await registry.client.get("/v1/participants/export.xlsx?region_prefix=1371", headers=registry.integrator)
    assert as_xlsx.status_code == 200, as_xlsx.text
    assert as_xlsx.headers["content-type"] == XLSX_MEDIA_TYPE
    sheet = openpyxl.load_workbook(io.BytesIO(as_xlsx.content)).active
    assert sheet is not None
    header, *lines = [[c.value for c in row] for row in sheet.iter_rows()]
    [row] = rows_of(as_csv.text)
    assert header == list(row)
    [line] = lines
    assert dict(zip(header, line, strict=True))["nik"] == row["nik"] == "1371**********01"  # masked the same way
    assert len(await audit_rows(registry.runtime, "participants", "participant.export")) == 2  # one per export
    refused = await registry.client.get("/v1/participants/export.xlsx", headers=auth("verifier", unit="13"))
    assert refused.status_code == 403
