"""deploy/k8s as an ops team upgrades and runs it (issue 15, item 6): every rendered object validated
offline against the Kubernetes JSON schemas (kubernetes-validate ships them, strict: unknown fields
fail), one migrate Job per release with the DDL role kept out of the app pods, HPA on CPU and consumer
lag, default-deny NetworkPolicy, ServiceMonitor, clean shutdown and a locked-down securityContext.

`kubectl kustomize` renders the manifests (kustomize is built into kubectl); on a machine without
kubectl the files listed in kustomization.yaml are validated as they are (no component patches, no
release names), and the tests that need the rendering skip."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import kubernetes_validate
import pytest
import yaml
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

import composition.cli as cli
import pena.runtime
from composition.catalog import load_definitions
from pena.access import DEFAULT_PUBLIC
from pena.clock import ManualClock
from pena.db import drop_database, ensure_database
from pena.migrate import _config as migrate_config
from pena.migrate import migrate
from pena.runtime import Runtime
from pena.settings import Settings
from services.participants.app import definition as participants
from tests.deploy.test_compose_and_k8s import parse_pena_command
from tests.participants.support import woman

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
# the oldest and the newest minor the manifests are meant for (both bundled by kubernetes-validate)
K8S_VERSIONS = ("1.30.0", "1.34.0")
# kinds from CRDs: no schema in kubernetes-validate; checked field by field below instead
CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}
HAS_KUBECTL = shutil.which("kubectl") is not None
needs_kubectl = pytest.mark.skipif(not HAS_KUBECTL, reason="kubectl is not installed (it renders the kustomization)")
SERVICES = tuple(cli.DEFAULT_PORTS)
UID = 10001  # deploy/Dockerfile's USER
RUNTIME_STOP_SECONDS = 10  # pena/runtime.py Runtime.stop: waits this long for the relay, consumers, scheduler
DNS_1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def kustomize(directory: Path = K8S) -> list[dict[str, Any]]:
    result = subprocess.run(
        ["kubectl", "kustomize", str(directory)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def listed_files() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs = []
    for name in kustomization["resources"]:
        docs += [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]
    return docs


def rendered() -> list[dict[str, Any]]:
    return kustomize() if HAS_KUBECTL else listed_files()


def by_key(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in docs}


def schema_errors(doc: dict[str, Any]) -> list[str]:
    errors = []
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = "/".join(str(p) for p in exc.path)
            errors.append(f"{doc['kind']}/{doc['metadata'].get('name')} (k8s {version}) at {where}: {exc.message}")
    return errors


def pod_templates(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        f"{d['kind']}/{d['metadata']['name']}": d["spec"]["template"]
        for d in docs
        if d["kind"] in ("Deployment", "Job")
    }


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expr in selector.get("matchExpressions", []):
        assert expr["operator"] in ("In", "NotIn", "Exists", "DoesNotExist"), expr
        value = labels.get(expr["key"])
        if expr["operator"] == "In" and value not in expr["values"]:
            return False
        if expr["operator"] == "NotIn" and value in expr["values"]:
            return False
        if expr["operator"] == "Exists" and value is None:
            return False
        if expr["operator"] == "DoesNotExist" and value is not None:
            return False
    return True


def egress_ports(docs: list[dict[str, Any]], labels: dict[str, str]) -> set[tuple[str, int]]:
    """(peer, port) pairs the NetworkPolicies allow a pod with these labels to reach: peer is 'dns' for the
    cluster resolver, else the ipBlock CIDR."""
    allowed = set()
    for policy in (d for d in docs if d["kind"] == "NetworkPolicy"):
        if "Egress" not in policy["spec"]["policyTypes"] or not selects(policy["spec"]["podSelector"], labels):
            continue
        for rule in policy["spec"].get("egress", []):
            for peer in rule["to"]:
                name = peer["ipBlock"]["cidr"] if "ipBlock" in peer else "dns"
                allowed |= {(name, p["port"]) for p in rule["ports"]}
    return allowed


# ------------------------------------------------------------------ schema validation


def test_every_object_validates_against_the_kubernetes_schemas() -> None:
    docs = rendered()
    # the Secrets an operator creates from the template must be valid too
    docs += [d for d in yaml.safe_load_all((K8S / "secret.template.yaml").read_text()) if d]
    validated, skipped, errors = set(), set(), []
    for doc in docs:
        kind = (doc["apiVersion"], doc["kind"])
        if kind in CRD_KINDS:
            skipped.add(kind)
            continue
        errors += schema_errors(doc)
        validated.add(doc["kind"])
    assert errors == []
    expected = {"Namespace", "ConfigMap", "Secret", "Deployment", "Service", "PodDisruptionBudget", "Job"}
    assert expected | {"HorizontalPodAutoscaler", "NetworkPolicy"} <= validated
    assert skipped == CRD_KINDS, "a CRD kind is skipped that the manifests do not use, or one is missing"


def test_the_validation_fails_on_a_broken_manifest() -> None:
    deployment = next(d for d in rendered() if d["kind"] == "Deployment")
    assert schema_errors(deployment) == []
    misspelt = copy.deepcopy(deployment)
    container = misspelt["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")  # unknown field (strict)
    assert any("readinesProbe" in e for e in schema_errors(misspelt))
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "60s"
    assert any("terminationGracePeriodSeconds" in e for e in schema_errors(wrong_type))
    hpa = next(d for d in rendered() if d["kind"] == "HorizontalPodAutoscaler")
    no_target = copy.deepcopy(hpa)
    del no_target["spec"]["scaleTargetRef"]
    assert any("scaleTargetRef" in e for e in schema_errors(no_target))


# ------------------------------------------------------------------ migrations once per release


@needs_kubectl
def test_the_migrate_and_topics_jobs_are_named_after_the_release(tmp_path: Path) -> None:
    def jobs(docs: list[dict[str, Any]]) -> dict[str, str]:
        out = {}
        for d in docs:
            if d["kind"] == "Job":
                (container,) = d["spec"]["template"]["spec"]["containers"]
                out[container["name"]] = d["metadata"]["name"]
        return out

    tag = yaml.safe_load((K8S / "kustomization.yaml").read_text())["images"][0]["newTag"]
    assert jobs(kustomize()) == {"migrate": f"pena-migrate-{tag}", "topics": f"pena-topics-{tag}"}
    # the next release: a different Job, so applying it never meets the previous (immutable) one
    copy_dir = tmp_path / "k8s"
    shutil.copytree(K8S, copy_dir)
    kustomization = copy_dir / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace(f'newTag: "{tag}"', 'newTag: "0.2.0-rc.1"'))
    names = jobs(kustomize(copy_dir))
    assert names == {"migrate": "pena-migrate-0.2.0-rc.1", "topics": "pena-topics-0.2.0-rc.1"}
    for name in names.values():
        assert DNS_1123_SUBDOMAIN.fullmatch(name), name
        assert len(name) <= 63, name  # also the value of the pods' job-name label


def test_app_pods_do_not_migrate_and_only_the_job_gets_the_migration_role(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = rendered()
    templates = pod_templates(docs)
    migrate_job = next(t for k, t in templates.items() if k.startswith("Job/pena-migrate"))
    (container,) = migrate_job["spec"]["containers"]
    assert parse_pena_command(container["command"], monkeypatch).command == "migrate"
    url = next(e for e in container["env"] if e["name"] == "PENA_DATABASE_URL")
    assert url["valueFrom"]["secretKeyRef"] == {"name": "pena-migrate", "key": "PENA_DATABASE_URL"}
    for name in SERVICES:
        (container,) = templates[f"Deployment/pena-{name}"]["spec"]["containers"]
        args = parse_pena_command(container["command"], monkeypatch)
        assert (args.command, args.no_migrate) == ("serve", True), name
        assert "PENA_DATABASE_URL" not in {e["name"] for e in container.get("env", [])}, name
        assert {"name": "pena-migrate"} not in [r.get("secretRef") for r in container["envFrom"]], name
    # the template's two roles differ: the app's URL is not the owner's
    secrets = {d["metadata"]["name"]: d for d in yaml.safe_load_all((K8S / "secret.template.yaml").read_text())}
    users = {n: urlsplit(s["stringData"]["PENA_DATABASE_URL"]).username for n, s in secrets.items()}
    assert users["pena-secrets"] != users["pena-migrate"]
    assert set(secrets["pena-migrate"]["stringData"]) == {"PENA_DATABASE_URL"}  # nothing else rides along


async def test_serve_no_migrate_refuses_a_database_behind_the_release(settings: Settings) -> None:
    """What a pod of a new release does before its migrate Job has run: no DDL, a refusal naming the fix.
    An old pod restarting after the Job (the database at a later release's revision) starts."""
    (definition,) = load_definitions(["graduation"])
    # the release's head revision and the one before it, read from the revision scripts
    script = ScriptDirectory.from_config(migrate_config(definition))
    head = script.get_current_head()
    assert isinstance(head, str)
    revision = script.get_revision(head)
    assert revision is not None
    previous = revision.down_revision
    assert isinstance(previous, str)
    url = settings.service_database_url("graduation")
    with pytest.raises(RuntimeError, match=r"graduation: the database is at revision none, .*pena migrate"):
        await cli._require_schema_at_head(settings, definition)  # no database yet
    await ensure_database(url)
    try:
        with pytest.raises(RuntimeError, match=r"graduation: the database is at revision none, .*pena migrate"):
            await cli._require_schema_at_head(settings, definition)
        await migrate(settings, definition)
        await cli._require_schema_at_head(settings, definition)  # at head: starts
        db = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))
        try:
            assert await db.fetchval("SELECT version_num FROM alembic_version") == head
            await db.execute("UPDATE alembic_version SET version_num = $1", previous)  # one release behind
            with pytest.raises(RuntimeError, match=rf"at revision {previous}, this release needs {head}"):
                await cli._require_schema_at_head(settings, definition)
            await db.execute("UPDATE alembic_version SET version_num = 'grad_ffffffff'")  # a later release's
            await cli._require_schema_at_head(settings, definition)
        finally:
            await db.close()
    finally:
        await drop_database(url)


async def test_the_app_role_has_no_ddl_and_serves_after_the_owner_migrated(
    settings: Settings, auth: Any, api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """deploy/k8s/database-roles.sql on the real PostgreSQL: the migrate Job's role migrates, the app role
    cannot (no DDL), and `pena serve --no-migrate` with the app role serves a registration."""

    ns = settings.topic_namespace
    owner, app = f"{ns}_owner", f"{ns}_app"
    url = make_url(settings.service_database_url("participants"))
    assert url.username == "postgres"
    assert url.database is not None
    db_name: str = url.database

    def as_role(role: str) -> Settings:
        return settings.model_copy(update={"database_url": settings.database_url.replace("//postgres@", f"//{role}@")})

    async def connect(database: str, user: str = "postgres") -> asyncpg.Connection:
        return await asyncpg.connect(user=user, host=url.host, port=url.port, database=database)

    admin = await connect("postgres")
    runtime = None
    try:
        await admin.execute(f'CREATE ROLE "{owner}" LOGIN; CREATE ROLE "{app}" LOGIN')
        await admin.execute(f'CREATE DATABASE "{url.database}" OWNER "{owner}"')
        sql = (
            (K8S / "database-roles.sql").read_text().replace("pena_owner", f'"{owner}"').replace("pena_app", f'"{app}"')
        )
        database = await connect(db_name)
        try:
            await database.execute(sql)
        finally:
            await database.close()

        await migrate(as_role(owner), participants)  # the Job
        with pytest.raises(ProgrammingError, match="permission denied"):
            await migrate(as_role(app), participants)  # what every pod did at start before --no-migrate
        as_app = await connect(db_name, app)
        try:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await as_app.execute("CREATE TABLE public.sneaky (id int)")
        finally:
            await as_app.close()

        monkeypatch.setattr(pena.runtime, "migrate", cli._require_schema_at_head)  # what --no-migrate does
        runtime = Runtime(as_role(app), [participants], clock=ManualClock(datetime(2026, 1, 5, tzinfo=UTC)))
        await runtime.start()
        async with api(runtime) as client:
            created = await client.post("/v1/participants", json=woman(), headers=auth("admin"))
            assert created.status_code == 201, created.text
            read = await client.get(f"/v1/participants/{created.json()['id']}", headers=auth("admin"))
            assert read.status_code == 200, read.text
    finally:
        if runtime is not None:
            await runtime.stop()
        await admin.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
        await admin.execute(f'DROP ROLE IF EXISTS "{app}"; DROP ROLE IF EXISTS "{owner}"')
        await admin.close()


# ------------------------------------------------------------------ scaling, traffic, monitoring


def test_each_service_scales_on_cpu_and_consumer_lag() -> None:
    docs = rendered()
    hpas = {d["spec"]["scaleTargetRef"]["name"]: d for d in docs if d["kind"] == "HorizontalPodAutoscaler"}
    partitions = int(by_key(docs)["ConfigMap/pena-config"]["data"]["PENA_TOPIC_PARTITIONS"])
    for name in SERVICES:
        deployment = by_key(docs)[f"Deployment/pena-{name}"]
        assert "replicas" not in deployment["spec"], "the HPA owns replicas; an apply would reset them"
        hpa = hpas[f"pena-{name}"]
        assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"] <= partitions
        metrics = {m["type"]: m for m in hpa["spec"]["metrics"]}
        assert metrics["Resource"]["resource"]["name"] == "cpu"
        assert metrics["Pods"]["pods"]["metric"]["name"] == "pena_consumer_lag"
        assert metrics["Pods"]["pods"]["target"]["type"] == "AverageValue"
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["resources"]["requests"]["cpu"], "CPU utilisation is relative to the request"


def test_network_policies_deny_by_default_and_allow_only_what_pena_needs() -> None:
    docs = rendered()
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    assert any(
        p["spec"]["podSelector"] == {}
        and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not {"ingress", "egress"} & set(p["spec"])
        for p in policies
    ), "no default-deny policy"
    config = by_key(docs)["ConfigMap/pena-config"]["data"]
    kafka_ports = {int(address.rsplit(":", 1)[1]) for address in config["PENA_KAFKA_BOOTSTRAP"].split(",")}
    jwks = urlsplit(config["PENA_JWKS_URL"])
    jwks_port = jwks.port or {"https": 443}[jwks.scheme]

    def ports(labels: dict[str, str]) -> set[int]:
        allowed = egress_ports(docs, labels)
        assert ("dns", 53) in allowed, labels
        return {port for peer, port in allowed if peer != "dns"}

    templates = pod_templates(docs)
    for key, template in templates.items():
        labels = template["metadata"]["labels"]
        if key.startswith("Deployment/"):
            assert ports(labels) == {5432, *kafka_ports, jwks_port}, key
        elif key.startswith("Job/pena-migrate"):
            assert ports(labels) == {5432}, key  # PostgreSQL only
        else:
            assert key.startswith("Job/pena-topics")
            assert ports(labels) == kafka_ports, key
    # ingress: only the API port, only from the ingress controller's and Prometheus' namespaces
    for name, port in cli.DEFAULT_PORTS.items():
        labels = templates[f"Deployment/pena-{name}"]["metadata"]["labels"]
        rules = [
            rule
            for p in policies
            if "Ingress" in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], labels)
            for rule in p["spec"].get("ingress", [])
        ]
        assert [p["port"] for rule in rules for p in rule["ports"]] == [port], name
        sources = {
            peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for r in rules for peer in r["from"]
        }
        assert sources == {"ingress-nginx", "monitoring"}, name
    for key in (k for k in templates if k.startswith("Job/")):
        labels = templates[key]["metadata"]["labels"]
        assert not [p for p in policies if "ingress" in p["spec"] and selects(p["spec"]["podSelector"], labels)], key


def test_the_service_monitor_scrapes_metrics_of_every_service() -> None:
    docs = rendered()
    (monitor,) = [d for d in docs if d["kind"] == "ServiceMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert "/metrics" in DEFAULT_PUBLIC, "Prometheus scrapes without a token"
    services = [d for d in docs if d["kind"] == "Service"]
    scraped = {s["metadata"]["name"] for s in services if selects(monitor["spec"]["selector"], s["metadata"]["labels"])}
    assert scraped == {f"pena-{name}" for name in SERVICES}
    for service in services:
        assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}, service["metadata"]["name"]


# ------------------------------------------------------------------ shutdown, probes, securityContext


def test_pods_stop_cleanly_and_run_locked_down() -> None:
    docs = rendered()
    assert by_key(docs)["Namespace/pena"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for key, template in pod_templates(docs).items():
        pod = template["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, key
        assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (UID, UID), key
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, key
        assert pod["automountServiceAccountToken"] is False, key
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, key
            assert context["allowPrivilegeEscalation"] is False, key
            assert context["capabilities"] == {"drop": ["ALL"]}, key
            assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}, key  # writable scratch
            if key.startswith("Deployment/"):
                assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", key
                assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", key
                command = container["lifecycle"]["preStop"]["exec"]["command"]
                assert command[0] == "sleep", key
                drain = int(command[1])
                assert drain >= 5, key
                # preStop, then SIGTERM: uvicorn drains, the runtime stops its workers (RUNTIME_STOP_SECONDS),
                # the Kafka clients leave their group; the kubelet kills at the end of the grace period
                assert pod["terminationGracePeriodSeconds"] >= drain + RUNTIME_STOP_SECONDS + 30, key
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert f"\nUSER {UID}:{UID}\n" in dockerfile, "the manifests' uid is not the image's"
    for name in SERVICES:
        pdb = by_key(docs)[f"PodDisruptionBudget/pena-{name}"]
        assert pdb["spec"]["minAvailable"] == 1
