#!/usr/bin/env bash
# The local Kafka broker runs on Java 17 with jars resolved by Maven; the benchmarks drive HTTP load
# with wrk. Install what is missing (Debian packages; needs root, as on the project's machines).
# Idempotent.   ensure-tools.sh         Java and Maven
#               ensure-tools.sh wrk     wrk only (bench/server.py calls this when wrk is missing)
set -euo pipefail
need=()
if [ "${1:-}" = "wrk" ]; then
  command -v wrk >/dev/null 2>&1 || need+=(wrk)
else
  command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null 2>&1 || need+=(maven)
fi
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != "0" ]; then
  echo "missing: ${need[*]}; install them (apt-get install ${need[*]}) and rerun" >&2
  exit 1
fi
echo "installing ${need[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
