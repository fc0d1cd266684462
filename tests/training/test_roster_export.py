"""The roster as CSV and XLSX (Accept): the JSON roster's rows, one per enrolled person, nothing
suppressed (a list of persons for staff whose reach covers the batch, not an aggregate), audited; and
the names training announces with a batch (centre, method, business field) for statistics elsewhere."""

from __future__ import annotations

import csv
import io

import openpyxl

from pena.http.tabular import XLSX_MEDIA_TYPE
from tests.support import audit_rows, outbox_data, register
from tests.training.support import create_centre, open_batch, set_status


async def test_roster_as_csv_and_xlsx(runtime, api, auth) -> None:
    admin = auth("admin")
    await register(runtime, "p-1", "p-2")
    async with api(runtime) as client:
        padang = await create_centre(client, admin)
        other = await create_centre(client, admin, code="BBPPKS-BANDUNG")
        batch = await open_batch(client, admin, padang, sessions=2)
        for pid in ("p-1", "p-2"):
            enrolled = await client.post(
                f"/v1/batches/{batch['id']}/enrolments",
                json={"participant_id": pid, "exit_agreement": True},
                headers=admin,
            )
            assert enrolled.status_code == 201, enrolled.text
        assert (await set_status(client, admin, batch["id"], "running")).status_code == 200
        attended = await client.post(
            f"/v1/batches/{batch['id']}/attendance",
            json={"session_id": batch["sessions"][0]["id"], "present": ["p-1"]},
            headers=admin,
        )
        assert attended.status_code == 200, attended.text

        url = f"/v1/batches/{batch['id']}/roster"
        as_json = (await client.get(url, headers=admin)).json()
        as_csv = await client.get(url, headers=admin | {"Accept": "text/csv"})
        as_xlsx = await client.get(url, headers=admin | {"Accept": XLSX_MEDIA_TYPE})
        stranger = auth("centre_operator", unit=other, sub="op-2")
        refused = await client.get(url, headers=stranger | {"Accept": "text/csv"})

    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.headers["content-disposition"] == f'attachment; filename="roster-{batch["id"]}.csv"'
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["participant_id"] for r in rows] == [i["participant_id"] for i in as_json["items"]]
    by_id = {r["participant_id"]: r for r in rows}
    assert (by_id["p-1"]["sessions_attended"], by_id["p-1"]["attendance_rate"]) == ("1", "0.5")
    assert (by_id["p-2"]["sessions_attended"], by_id["p-2"]["sessions_total"]) == ("0", "2")
    assert by_id["p-1"]["enrolled_at"] == as_json["items"][0]["enrolled_at"].replace("Z", "+00:00")
    assert "suppressed" not in rows[0]  # persons, not aggregates: nothing is suppressed

    assert as_xlsx.status_code == 200, as_xlsx.text
    sheet = openpyxl.load_workbook(io.BytesIO(as_xlsx.content), read_only=True).active
    assert sheet is not None
    header, *lines = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert header == list(rows[0])
    assert {line[0]: line[header.index("sessions_attended")] for line in lines} == {"p-1": 1, "p-2": 0}

    assert refused.status_code == 404  # out of reach answers like a missing batch, in any format
    assert [r.details["format"] for r in await audit_rows(runtime, "training", "training.roster.read")] == [
        None,
        "csv",
        "xlsx",
    ]


async def test_a_scheduled_batch_announces_the_names_of_its_codes(runtime, api, auth) -> None:
    admin = auth("admin")
    async with api(runtime) as client:
        await open_batch(client, admin, await create_centre(client, admin))
    [event] = await outbox_data(runtime, "training", "training.batch_scheduled")
    assert event["centre_name"] == "BBPPKS Padang"
    assert event["business_field_name"] == "Fashion / menjahit (tailoring)"
    assert event["method_name"].startswith("Life skill training")
