"""The whole story across real processes: four `pena serve` processes on Kafka, and `pena dev`."""

from __future__ import annotations

import json

from aiokafka import AIOKafkaConsumer

from pena.settings import Settings
from tests.e2e.conftest import Deployment
from tests.e2e.story import MAN, WOMAN, run_story
from tests.privacy import sixteen_digit_numbers


def settings_of(deployment: Deployment) -> Settings:
    return Settings(topic_namespace=deployment.namespace)


async def graduation_events_seen_by_a_plain_consumer(bootstrap: str, topic: str, participant_id: str) -> list[dict]:
    """An integrator's view: a bare aiokafka consumer, no project code, from the earliest offset."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id="e2e-payments-system",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[dict] = []
    try:
        for _ in range(60):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    event = json.loads(record.value)
                    if event["type"].endswith("graduation.decided.v1") and event["subject"] == participant_id:
                        assert record.key.decode() == participant_id
                        found.append(event)
            if found:
                break
    finally:
        await consumer.stop()
    return found


def assert_no_identity_in(text: str) -> None:
    for person in (WOMAN, MAN):
        assert person["nik"] not in text
        assert person["kk_number"] not in text
        assert person["full_name"] not in text
    assert not sixteen_digit_numbers(text)


async def test_whole_story_across_four_processes_on_kafka(four_processes: Deployment) -> None:
    settings = settings_of(four_processes)
    outcome = await run_story(four_processes.urls, settings)
    events = await graduation_events_seen_by_a_plain_consumer(
        four_processes.env["PENA_KAFKA_BOOTSTRAP"], settings.topic("graduation"), outcome["woman_id"]
    )
    assert len(events) == 1
    data = events[0]["data"]
    assert data["graduated"] is True
    assert data["kind"] == "sejahtera_mandiri"
    assert data["mentoring_until"]
    assert_no_identity_in(json.dumps(events))
    assert_no_identity_in(four_processes.log_text())


async def test_whole_story_in_one_process_with_the_inprocess_bus(single_process: Deployment) -> None:
    outcome = await run_story(single_process.urls, settings_of(single_process))
    assert outcome["decision"]["participant_id"] == outcome["woman_id"]
    assert_no_identity_in(single_process.log_text())


def test_the_readme_tour_runs_against_pena_dev(single_process: Deployment) -> None:
    """docs/tour.sh (linked from the README) works as written against `pena dev`, and twice in a row."""
    import subprocess

    from tests.e2e.conftest import ROOT

    env = single_process.env | {"BASE": single_process.urls["participants"], "PENA": f"{ROOT}/.venv/bin/pena"}
    for attempt in (1, 2):
        run = subprocess.run(
            ["bash", str(ROOT / "docs" / "tour.sh")], env=env, cwd=ROOT, capture_output=True, text=True, timeout=240
        )
        assert run.returncode == 0, f"attempt {attempt}:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
        assert "registry status: graduated" in run.stdout
