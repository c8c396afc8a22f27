#!/usr/bin/env bash
# Installs the system packages the benchmarks use, when missing (Debian/Ubuntu, as root):
#   nginx         the reference reverse proxy of the gateway benchmark (bench/GpuFleet.Bench gateway)
#   redis-server  the gateway's shared state (affinity, limits) in benchmarks that run with --redis
set -euo pipefail

missing=()
command -v nginx >/dev/null || missing+=(nginx)
command -v redis-server >/dev/null || missing+=(redis-server)
if ((${#missing[@]} == 0)); then
  echo "setup.sh: nginx and redis-server are installed"
  exit 0
fi

echo "setup.sh: installing ${missing[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
# The benchmarks start their own nginx (own config and prefix, 127.0.0.1 only), beside any system one.
echo "setup.sh: installed ${missing[*]}"
