#!/usr/bin/env bash
# The production image from deploy/Dockerfile with podman, on a machine without a registry: the base is
# localhost/pena-base:bookworm (deploy/local/base-image.sh, made once). Same Dockerfile as registry builds.
#   deploy/local/build-image.sh [IMAGE]        (default localhost/pena:local)
set -euo pipefail
cd "$(dirname "$0")/../.."
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/deploy/local/podman.conf}"
IMAGE="${1:-localhost/pena:local}"
BASE="${PENA_BASE_IMAGE:-localhost/pena-base:bookworm}"
PENA_BASE_IMAGE="$BASE" deploy/local/base-image.sh
args=(--build-arg "BASE_IMAGE=$BASE")
# an intercepting proxy's CA is trusted by the host only: lend its bundle to pip during the build
ca=/etc/ssl/certs/ca-certificates.crt
if [ -f "$ca" ]; then
  args+=(-v "$ca:/host-ca.crt:ro" --build-arg PIP_CERT=/host-ca.crt)
fi
podman build --quiet --format docker -f deploy/Dockerfile "${args[@]}" -t "$IMAGE" . >/dev/null
echo "built $IMAGE"
