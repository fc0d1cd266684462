"""Static checks of the deployment files: docker-compose.yml, deploy/Dockerfile, .dockerignore and
deploy/k8s/. No container engine, cluster, database or broker is needed, so this proves the files agree
with the code (commands, settings, ports, probes); tests/deploy/test_image.py builds the image and runs
it with podman. `kubectl kustomize` renders the manifests when kubectl is installed."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import composition.cli as cli
from pena.settings import Settings
from services.graduation.settings import GraduationSettings
from services.monev.settings import MonevSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
K8S = ROOT / "deploy" / "k8s"

# PENA_* variables read with os.environ by the CLI / local infra rather than by Settings.
NON_SETTINGS_ENV = {"PENA_HOME"}


# ------------------------------------------------------------------ helpers


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def k8s_docs() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path.name, doc))
    return docs


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in k8s_docs() if doc.get("kind") == kind]


def parse_pena_command(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> argparse.Namespace:
    """Runs the real `pena` argument parser on argv with every command body replaced by a recorder,
    so unknown subcommands, unknown services and bad options fail exactly as they would in a container."""
    assert argv, "an empty command"
    assert argv[0] == "pena", f"not a pena command: {argv}"
    seen: list[argparse.Namespace] = []
    for name in dir(cli):
        if name.startswith("_cmd_"):
            monkeypatch.setattr(cli, name, lambda args, _seen=seen: _seen.append(args) or 0)
    try:
        assert cli.main(argv[1:]) == 0
    except SystemExit as exc:  # argparse refuses the arguments
        pytest.fail(f"`{' '.join(argv)}` is not a valid pena command (exit {exc.code})")
    assert len(seen) == 1
    return seen[0]


# the kernel's settings and the services' own (same PENA_ variables)
SETTINGS_CLASSES = (Settings, MonevSettings, GraduationSettings)


def assert_setting(name: str, where: str) -> None:
    assert name.startswith("PENA_"), f"{where}: {name}"
    field = name.removeprefix("PENA_").lower()
    known = any(field in k.model_fields for k in SETTINGS_CLASSES)
    assert known, f"{where}: {name} is not a field of pena.settings.Settings or a service's settings"


def service_ports(service_def: dict[str, Any]) -> list[tuple[int, int]]:
    pairs = []
    for spec in service_def.get("ports", []):
        host, _, container = str(spec).rpartition(":")
        pairs.append((int(host), int(container)))
    return pairs


# ------------------------------------------------------------------ docker-compose.yml


def test_compose_parses_with_the_expected_services() -> None:
    services = compose()["services"]
    assert {"kafka", "postgres", "migrate", "topics", *cli.SERVICE_MODULES} <= set(services)


def test_every_depends_on_target_exists() -> None:
    services = compose()["services"]
    for name, spec in services.items():
        deps = spec.get("depends_on", {})
        for dep in deps if isinstance(deps, list) else deps.keys():
            assert dep in services, f"{name} depends on unknown service {dep}"


def test_pena_services_start_after_migrate_and_topics_succeed() -> None:
    services = compose()["services"]
    for name in cli.SERVICE_MODULES:
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["topics"]["condition"] == "service_completed_successfully"
        assert "healthcheck" in services[name], name
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "healthcheck" in services["kafka"]


def test_every_service_using_the_image_runs_a_real_pena_command(monkeypatch: pytest.MonkeyPatch) -> None:
    data = compose()
    image = data["x-pena-image"]
    users = {n: s for n, s in data["services"].items() if s.get("image") == image["image"]}
    assert set(users) == {"migrate", "topics", *cli.SERVICE_MODULES}
    for name, spec in users.items():
        assert spec["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (ROOT / spec["build"]["context"] / spec["build"]["dockerfile"]).is_file()
        args = parse_pena_command(spec["command"], monkeypatch)
        if name in cli.SERVICE_MODULES:
            assert args.command == "serve"
            assert args.service == name
            assert args.host == "0.0.0.0", f"{name} must listen on all interfaces in a container"
        else:
            assert args.command == name


def test_compose_ports_match_the_cli_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    services = compose()["services"]
    for name, default_port in cli.DEFAULT_PORTS.items():
        spec = services[name]
        args = parse_pena_command(spec["command"], monkeypatch)
        assert (args.port or default_port) == default_port
        assert service_ports(spec) == [(default_port, default_port)]
        assert f":{default_port}/healthz" in " ".join(spec["healthcheck"]["test"])


def test_compose_env_names_are_settings() -> None:
    data = compose()
    env = data["x-pena-env"]
    for name in env:
        assert_setting(name, "docker-compose x-pena-env")
    for name, spec in data["services"].items():
        extra = spec.get("environment", {})
        for var in extra if isinstance(extra, dict) else [e.split("=", 1)[0] for e in extra]:
            if var.startswith("PENA_"):
                assert_setting(var, f"docker-compose service {name}")
    assert env["PENA_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert env["PENA_DATABASE_URL"].endswith("@postgres:5432/pena_{service}")
    assert env["PENA_ENVIRONMENT"] == "${PENA_ENVIRONMENT:-dev}"


def test_compose_dev_secret_defaults_are_refused_in_production() -> None:
    """The compose fallbacks for secrets are the code's public dev values, so a production stack that
    forgets to set them fails at start instead of running with a known key."""
    env = compose()["x-pena-env"]
    defaults: dict[str, Any] = {}
    for name in ("PENA_NIK_HMAC_KEY", "PENA_FIELD_ENCRYPTION_KEY", "PENA_JWKS_URL"):
        match = re.fullmatch(r"\$\{" + name + r":-(.*)\}", env[name])
        assert match, f"{name} should be `${{{name}:-<dev default>}}`"
        defaults[name.removeprefix("PENA_").lower()] = match.group(1)
    assert defaults["nik_hmac_key"] == Settings.model_fields["nik_hmac_key"].default
    assert defaults["field_encryption_key"] == Settings.model_fields["field_encryption_key"].default
    with pytest.raises(ValueError, match="production settings refused"):
        Settings(environment="production", **defaults)
    Settings(environment="dev", **defaults)  # and the dev stack accepts them


def test_kafka_is_single_node_kraft_without_topic_auto_creation() -> None:
    kafka = compose()["services"]["kafka"]
    assert kafka["image"] == "apache/kafka:3.9.1"
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_NODE_ID"] == "1"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert "PLAINTEXT://:9092" in env["KAFKA_LISTENERS"]
    assert "CONTROLLER://:9093" in env["KAFKA_LISTENERS"]
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"] == "0"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", env["CLUSTER_ID"]), "CLUSTER_ID must be a base64url UUID"


def test_postgres_user_may_create_databases() -> None:
    pg = compose()["services"]["postgres"]
    assert pg["image"] == "postgres:18"
    # POSTGRES_USER is created as superuser by the image: `pena migrate` creates pena_<service>
    assert pg["environment"]["POSTGRES_USER"] == "pena"
    assert "pena:${POSTGRES_PASSWORD:-pena}@" in compose()["x-pena-env"]["PENA_DATABASE_URL"]
    assert "postgres-data:/var/lib/postgresql" in pg["volumes"]  # 18+ keeps PGDATA below this


# ------------------------------------------------------------------ Dockerfile and .dockerignore


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_dockerfile_runs_as_non_root_with_a_healthcheck() -> None:
    instructions = dockerfile_instructions()
    froms = [rest for kw, rest in instructions if kw == "FROM"]
    assert len(froms) >= 2, "multi-stage build expected"
    # the base is a build argument (registry builds pin it by digest, local builds use the mmdebstrap one)
    assert any(kw == "ARG" and rest.startswith("BASE_IMAGE=") for kw, rest in instructions)
    assert all(rest.split()[0] == "${BASE_IMAGE}" for rest in froms)
    users = [rest for kw, rest in instructions if kw == "USER"]
    assert users, "no USER line"
    assert users[-1].split(":")[0] not in ("root", "0"), "the final user must not be root"
    health = [rest for kw, rest in instructions if kw == "HEALTHCHECK"]
    assert health
    assert "/healthz" in health[-1]
    assert "python" in health[-1]
    code = json.loads(health[-1][health[-1].index("CMD") + 3 :].strip())
    assert code[:2] == ["python", "-c"]
    compile(code[2], "healthcheck", "exec")  # the inline script is valid Python
    exposed = {int(p) for kw, rest in instructions if kw == "EXPOSE" for p in rest.split()}
    assert set(cli.DEFAULT_PORTS.values()) | {8000} <= exposed


def test_dockerfile_installs_without_dev_extras_and_bakes_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    instructions = dockerfile_instructions()
    runs = " ".join(rest for kw, rest in instructions if kw == "RUN")
    assert "pip install --no-deps ." in runs
    assert "[" not in runs.replace("[ -z", ""), "no extras in the image"
    # the locked dependencies go in before any code, so a code change keeps their layer
    steps = [f"{kw} {rest}" for kw, rest in instructions]
    lock_install = next(i for i, step in enumerate(steps) if "--require-hashes -r requirements.lock" in step)
    assert steps[lock_install - 1] == "COPY requirements.lock ./"
    first_code = next(i for i, step in enumerate(steps) if step.startswith("COPY pena"))
    assert lock_install < first_code
    for kw, rest in instructions:
        if kw == "ENV":
            for name in re.findall(r"\b(PENA_[A-Z_]+)=", rest):
                if name not in NON_SETTINGS_ENV:
                    assert_setting(name, "Dockerfile ENV")
                assert "KEY" not in name or name == "PENA_DEV_KEY_DIR", f"secret-like {name} in the image"
    for name in NON_SETTINGS_ENV:  # still read somewhere, or the exception is stale
        assert any(name in p.read_text() for p in (ROOT / "pena").glob("*.py")), name
    cmd = json.loads(next(rest for kw, rest in reversed(instructions) if kw == "CMD"))
    args = parse_pena_command(cmd, monkeypatch)
    assert (args.command, args.service, args.host) == ("serve", "participants", "0.0.0.0")


def test_dockerignore_keeps_local_state_out() -> None:
    lines = {line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip()}
    assert "*" in lines, "allow-list expected"
    assert {"!pyproject.toml", "!pena/", "!services/"} <= lines
    assert {".venv", ".pena", "**/__pycache__", "**/.pytest_cache"} <= lines


# ------------------------------------------------------------------ Kubernetes manifests


def test_k8s_manifests_parse_and_kustomization_lists_existing_files() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file(), f"kustomization lists missing {resource}"
    listed = set(kustomization["resources"])
    for path in K8S.glob("*.yaml"):
        if path.name not in ("kustomization.yaml", "secret.template.yaml"):
            assert path.name in listed, f"{path.name} is not in kustomization.yaml"
    # the Secret template must never be applied as is: a placeholder key would pass the settings check
    assert "secret.template.yaml" not in listed
    assert all(doc.get("apiVersion") and doc.get("kind") for _, doc in k8s_docs())


def test_every_pena_service_has_deployment_service_and_pdb(monkeypatch: pytest.MonkeyPatch) -> None:
    deployments = {d["metadata"]["name"]: d for d in of_kind("Deployment")}
    services = {s["metadata"]["name"]: s for s in of_kind("Service")}
    pdbs = {p["metadata"]["name"]: p for p in of_kind("PodDisruptionBudget")}
    for name, port in cli.DEFAULT_PORTS.items():
        key = f"pena-{name}"
        deployment, service, pdb = deployments[key], services[key], pdbs[key]
        assert "replicas" not in deployment["spec"], "hpa.yaml scales it (tests/deploy/test_k8s_manifests.py)"
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert service["spec"]["selector"].items() <= labels.items()
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        args = parse_pena_command(container["command"], monkeypatch)
        assert (args.command, args.service, args.port, args.host) == ("serve", name, port, "0.0.0.0")
        assert args.no_migrate is True, "the release's migrate Job migrates, not the pods"
        assert container["ports"][0]["containerPort"] == port
        assert service["spec"]["ports"][0]["port"] == port


def test_every_deployment_has_probes_resources_and_runs_as_non_root() -> None:
    deployments = of_kind("Deployment")
    assert len(deployments) == len(cli.SERVICE_MODULES)
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        for container in pod["containers"]:
            name = f"{deployment['metadata']['name']}/{container['name']}"
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][part]), name
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
            refs = {next(iter(r)): next(iter(r.values()))["name"] for r in container["envFrom"]}
            assert refs == {"configMapRef": "pena-config", "secretRef": "pena-secrets"}, name


def test_jobs_run_migrate_and_topics(monkeypatch: pytest.MonkeyPatch) -> None:
    commands = set()
    for job in of_kind("Job"):
        pod = job["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        (container,) = pod["containers"]
        commands.add(parse_pena_command(container["command"], monkeypatch).command)
    assert commands == {"migrate", "topics"}


def test_configmap_and_secret_keys_are_settings() -> None:
    (configmap,) = of_kind("ConfigMap")
    secret, migrate_secret = of_kind("Secret")  # secret.template.yaml: pena-secrets, pena-migrate
    assert (secret["metadata"]["name"], migrate_secret["metadata"]["name"]) == ("pena-secrets", "pena-migrate")
    assert list(migrate_secret["stringData"]) == ["PENA_DATABASE_URL"]
    for name in configmap["data"]:
        assert_setting(name, "ConfigMap pena-config")
    for name in secret["stringData"]:
        assert_setting(name, "Secret pena-secrets")
    assert {"PENA_NIK_HMAC_KEY", "PENA_FIELD_ENCRYPTION_KEY", "PENA_DATABASE_URL"} <= set(secret["stringData"])
    assert not {"PENA_NIK_HMAC_KEY", "PENA_FIELD_ENCRYPTION_KEY"} & set(configmap["data"]), "secrets in a ConfigMap"
    assert configmap["data"]["PENA_ENVIRONMENT"] == "production"
    # the values load as Settings (types, list syntax); production refuses the template's placeholder
    # secrets and example identity provider (tests/unit/test_production_settings.py names each)
    env = {**configmap["data"], **secret["stringData"]}
    values = {k.removeprefix("PENA_").lower(): v for k, v in env.items() if k != "PENA_MONEV_DELAYS"}
    settings = Settings(**(values | {"environment": "dev"}))
    assert settings.topic_replication_factor == 3
    with pytest.raises(ValueError, match="production settings refused"):
        Settings(**values)
    assert json.loads(configmap["data"]["PENA_MONEV_DELAYS"]) == MonevSettings.model_fields["monev_delays"].default


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_renders() -> None:
    result = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    rendered = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    namespaced = [d for d in rendered if d["kind"] != "Namespace"]
    assert all(d["metadata"]["namespace"] == "pena" for d in namespaced)
    assert not any(d["kind"] == "Secret" for d in rendered)
    images = {
        c["image"]
        for d in rendered
        if d["kind"] in ("Deployment", "Job")
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert len(images) == 1
    assert images != {"pena"}


# ------------------------------------------------------------------ docs/operations.md


def test_operations_runbook_lists_every_setting() -> None:
    text = (ROOT / "docs" / "operations.md").read_text()
    documented = set(re.findall(r"^\| `(PENA_[A-Z_]+)` \|", text, flags=re.MULTILINE))
    expected = {f"PENA_{name.upper()}" for k in SETTINGS_CLASSES for name in k.model_fields}
    assert expected - documented == set(), "settings missing from the docs/operations.md table"
    assert documented - expected == set(), "docs/operations.md documents settings that do not exist"
