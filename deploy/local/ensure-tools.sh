#!/usr/bin/env bash
# Installs the system tools a part of the project needs, when missing (Debian packages; needs root, as
# on the project's machines). Idempotent.
#   ensure-tools.sh [kafka] [podman] [wrk]
#     kafka  (default): Java 17 and Maven, for the local Kafka broker (jars resolved by Maven)
#     podman: podman, runc and mmdebstrap, to build and run the production image (tests/deploy/test_image.py)
#     wrk:    the HTTP load generator of the benchmarks (bench/server.py calls this when wrk is missing)
set -euo pipefail
need=()
for part in "${@:-kafka}"; do
  case "$part" in
    kafka)
      command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
      command -v mvn >/dev/null 2>&1 || need+=(maven)
      ;;
    podman)
      command -v podman >/dev/null 2>&1 || need+=(podman)
      command -v runc >/dev/null 2>&1 || need+=(runc)
      command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
      # rootless podman needs newuidmap; overlay storage without kernel overlay needs fuse-overlayfs
      command -v newuidmap >/dev/null 2>&1 || need+=(uidmap)
      command -v fuse-overlayfs >/dev/null 2>&1 || need+=(fuse-overlayfs)
      ;;
    wrk)
      command -v wrk >/dev/null 2>&1 || need+=(wrk)
      ;;
    *)
      echo "unknown part: $part (kafka, podman, wrk)" >&2
      exit 2
      ;;
  esac
done
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != "0" ]; then
  echo "missing: ${need[*]}; install them (apt-get install ${need[*]}) and rerun" >&2
  exit 1
fi
echo "installing ${need[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
