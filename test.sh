#!/usr/bin/env bash
# Installs everything the tests need and runs every test.
#   ./test.sh                 all tests
#   ./test.sh --filter X      passes extra arguments to dotnet test
# Ends with one line: "tests: N passed, N failed" (summed from the TRX result files).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
root="$(pwd)"

# System packages the build and tests use (openssl checks the fetched natives, node/npm fetch them, git reads the
# tokenizer out of llama.cpp's source bundle).
missing=()
command -v openssl >/dev/null || missing+=(openssl)
command -v git >/dev/null || missing+=(git)
command -v npm >/dev/null || missing+=(nodejs npm)
if ((${#missing[@]})); then
  echo "test.sh: installing ${missing[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Redis tests (tests/GpuFleet.Gateway.Tests/State and the other Redis users) start, kill and restart a real redis-server from Debian.
command -v redis-server >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null)

# Metrics tests check every process's /metrics with Prometheus' own promtool (Debian package prometheus); the
# observability tests also run its prometheus server against a fleet and promtool over the rules.
command -v promtool >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null)

# Deployment tests (tests/GpuFleet.Deploy.Tests): a Docker engine of their own (dockerd, started and stopped by the
# test), docker-compose 1.29 and mmdebstrap (local base images: no image registry is reachable), kubectl for kustomize.
deploy_missing=()
[[ -x /usr/sbin/dockerd ]] || deploy_missing+=(docker.io)
command -v docker-compose >/dev/null || deploy_missing+=(docker-compose)
command -v mmdebstrap >/dev/null || deploy_missing+=(mmdebstrap)
command -v iptables >/dev/null || deploy_missing+=(iptables)
command -v kubectl >/dev/null || deploy_missing+=(kubernetes-client)
if ((${#deploy_missing[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${deploy_missing[@]}" >/dev/null
fi

# The live fleet page test (tests/GpuFleet.Gateway.Tests/Observability) renders /fleet in headless Chromium.
command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# The pinned llama.cpp libraries (CPU), fetched from npm and verified against natives/natives.lock.
scripts/fetch-natives.sh cpu
# The real Qwen3.5 tokenizer and chat template for the demo models of the end-to-end tests, verified against natives/tokenizer.lock.
scripts/fetch-tokenizer.sh >/dev/null

# gRPC interop (tests/GpuFleet.Contracts.Tests): a real @grpc/grpc-js client and server are the reference our
# wire module is tested against; install the exact versions pinned in tests/interop/node/package-lock.json.
npm ci --prefix tests/interop/node --no-audit --no-fund --loglevel=error
# The Kubernetes API schemas the rendered manifests are validated against (kubernetes-models and friends).
npm ci --prefix tests/deploy/node --no-audit --no-fund --loglevel=error

results="$root/artifacts/test-results"
rm -rf "$results"
mkdir -p "$results"

dotnet build GpuFleet.sln -c Release --nologo -v quiet
status=0
run_tests() { dotnet test "$@" -c Release --no-build --nologo --logger "trx" --results-directory "$results" || status=$?; }
if (($#)); then
  run_tests GpuFleet.sln "$@"
else
  # The compose test builds images and runs a fleet of containers: it runs alone, after the rest, so that its CPU use
  # does not slow the timing-sensitive tests down.
  compose=GpuFleet.Deploy.Tests.Compose
  run_tests GpuFleet.sln --filter "FullyQualifiedName!~$compose"
  run_tests tests/GpuFleet.Deploy.Tests --filter "FullyQualifiedName~$compose"
fi

passed=0
failed=0
skipped=0
shopt -s nullglob
for trx in "$results"/*.trx; do
  counters="$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)"
  value() { sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p" <<<"$counters"; }
  passed=$((passed + $(value passed)))
  failed=$((failed + $(value failed)))
  skipped=$((skipped + $(value notExecuted)))
done
if ((status != 0 && failed == 0)); then
  # The test run itself failed (crash, build problem): never report that as green.
  failed=1
fi
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit "$status"
