"""The Kubernetes manifests give every Kafka-using pod its own SASL_SSL principal, with the password and
the CA as mounted files (deploy/k8s/kafka-sasl-ssl, docs/operations.md section 7a)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pena.kafka import connection_options
from pena.settings import Settings
from tests.kernel.secure_kafka import make_ca

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
MOUNT = "/etc/pena/kafka"

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")


def rendered() -> dict[str, dict[str, Any]]:
    result = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in yaml.safe_load_all(result.stdout) if d}


def test_each_kafka_client_pod_mounts_only_its_own_credentials(tmp_path: Path) -> None:
    docs = rendered()
    configmap = docs["ConfigMap/pena-config"]["data"]
    secret = next(yaml.safe_load_all((K8S / "secret.template.yaml").read_text()))["stringData"]  # pena-secrets
    ca = make_ca(tmp_path, "ca")
    clients = {f"Deployment/pena-{s}": f"pena-{s}" for s in ("participants", "training", "monev", "graduation")}
    (topics,) = [key for key in docs if key.startswith("Job/pena-topics-")]  # named per release
    clients[topics] = "pena-admin"
    for key, principal in clients.items():
        pod = docs[key]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["PENA_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert env["PENA_KAFKA_SASL_USERNAME"] == principal
        assert "PENA_KAFKA_SASL_PASSWORD" not in env, "the password belongs in a file, not the environment"
        mount = next(m for m in container["volumeMounts"] if m["mountPath"] == MOUNT)
        assert mount.get("readOnly") is True
        volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
        secrets = [s["secret"]["name"] for s in volume["projected"]["sources"] if "secret" in s]
        assert secrets == [f"pena-kafka-{principal.removeprefix('pena-')}"], key

        # what the pod loads: the ConfigMap, the Secret and its own env, with the mounted files present
        (tmp_path / "password").write_text(f"{principal}-password\n")
        shutil.copy(ca.cert, tmp_path / "ca.crt")
        values = {**configmap, **secret, **{k: v.replace(MOUNT, str(tmp_path)) for k, v in env.items()}}
        values = {k.removeprefix("PENA_").lower(): v for k, v in values.items() if k != "PENA_MONEV_DELAYS"}
        values |= {"environment": "test"}  # the Secret template holds placeholders, not production secrets
        options = connection_options(Settings(**values))
        assert options["security_protocol"] == "SASL_SSL"
        assert options["sasl_mechanism"] == "SCRAM-SHA-512"
        assert options["sasl_plain_username"] == principal
        assert options["sasl_plain_password"] == f"{principal}-password"


def test_the_migrate_job_gets_no_kafka_credentials() -> None:
    docs = rendered()
    (migrate,) = [key for key in docs if key.startswith("Job/pena-migrate-")]  # named per release
    pod = docs[migrate]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert not [e for e in container.get("env", []) if e["name"].startswith("PENA_KAFKA_")]
    assert not [m for m in container.get("volumeMounts", []) if m["mountPath"] == MOUNT]
