#!/usr/bin/env bash
# The local Kafka broker runs on Java 17 with jars resolved by Maven. Install them when missing
# (Debian packages; needs root, as on the project's machines). Idempotent.
set -euo pipefail
need=()
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != "0" ]; then
  echo "missing: ${need[*]}; install them (apt-get install ${need[*]}) and rerun" >&2
  exit 1
fi
echo "installing ${need[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
