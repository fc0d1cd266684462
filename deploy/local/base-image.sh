#!/usr/bin/env bash
# The Debian base image for local builds without a registry: bookworm (Python 3.11) made by mmdebstrap
# from the Debian mirror and imported into podman's store as localhost/pena-base:bookworm.
# Skipped when the image is already there (podman keeps it between runs). Needs root, mmdebstrap, podman.
#   deploy/local/base-image.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/../.."
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/deploy/local/podman.conf}"
IMAGE="${PENA_BASE_IMAGE:-localhost/pena-base:bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
if [ "${1:-}" != "--force" ] && podman image exists "$IMAGE"; then
  echo "$IMAGE exists"
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "building $IMAGE with mmdebstrap from $MIRROR"
mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
  bookworm "$tmp/base.tar" "$MIRROR"
podman import --quiet "$tmp/base.tar" "$IMAGE" >/dev/null
echo "$IMAGE imported"
