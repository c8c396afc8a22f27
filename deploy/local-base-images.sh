#!/usr/bin/env bash
# Builds local stand-ins for the public base images from Debian packages, for machines that reach no image registry
# (deploy/build-images.sh calls it when needed; each image is built once and kept):
#   gpufleet-base/dotnet-runtime-deps:10.0  Debian bookworm minbase with what .NET needs (mmdebstrap, ~40 s)
#   gpufleet-base/dotnet-sdk:10.0           that base plus this machine's .NET SDK and CA bundle
#   gpufleet-base/redis:7                   that base plus Debian's redis-server
#   gpufleet-base/prometheus:2              that base plus Debian's prometheus
# The Debian mirror is the one this machine's apt uses.
set -euo pipefail

have() { docker image inspect "$1" >/dev/null 2>&1; }
mirror="$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
mirror="${mirror:-$(awk '/^deb / { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)}"
[[ -n "$mirror" ]] || { echo "local-base-images: no Debian mirror found in this machine's apt sources" >&2; exit 1; }

if ! have gpufleet-base/dotnet-runtime-deps:10.0; then
  command -v mmdebstrap >/dev/null || { echo "local-base-images: needs mmdebstrap (apt-get install mmdebstrap)" >&2; exit 1; }
  echo "local-base-images: gpufleet-base/dotnet-runtime-deps:10.0 (mmdebstrap)" >&2
  # libstdc++6 for llama.cpp, libssl3 and ca-certificates for TLS (Redis), tzdata for logs; .NET runs with invariant
  # globalization (both projects set it), so no ICU.
  mmdebstrap --quiet --variant=minbase --include=ca-certificates,libssl3,libstdc++6,tzdata bookworm - "$mirror" \
    | docker import -c 'ENV LANG=C.UTF-8' - gpufleet-base/dotnet-runtime-deps:10.0 >/dev/null
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if ! have gpufleet-base/dotnet-sdk:10.0; then
  echo "local-base-images: gpufleet-base/dotnet-sdk:10.0 (this machine's .NET SDK)" >&2
  dotnet_root="$(dirname "$(readlink -f "$(command -v dotnet)")")"
  mkdir -p "$work/sdk"
  cp -a "$dotnet_root" "$work/sdk/dotnet"
  # The machine's CA bundle: package restores go through whatever TLS inspection this network has.
  cp /etc/ssl/certs/ca-certificates.crt "$work/sdk/"
  cat > "$work/sdk/Dockerfile" <<'DOCKERFILE'
FROM gpufleet-base/dotnet-runtime-deps:10.0
# The SDK itself needs ICU (the apps it builds run without).
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libicu72 && rm -rf /var/lib/apt/lists/*
COPY dotnet /usr/share/dotnet
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
RUN ln -s /usr/share/dotnet/dotnet /usr/bin/dotnet
ENV DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 NUGET_CERT_REVOCATION_MODE=offline
DOCKERFILE
  docker build -q --force-rm --network host -t gpufleet-base/dotnet-sdk:10.0 "$work/sdk" >/dev/null
fi

debian_image() { # name packages [entrypoint]
  local name="$1" packages="$2"
  shift 2
  have "$name" && return 0
  echo "local-base-images: $name (Debian $packages)" >&2
  mkdir -p "$work/$packages"
  {
    echo "FROM gpufleet-base/dotnet-runtime-deps:10.0"
    echo "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $packages && rm -rf /var/lib/apt/lists/*"
    # Like the official images: redis takes its whole command line, prometheus's entrypoint is the server.
    if (($#)); then printf 'ENTRYPOINT ["%s"]\n' "$1"; fi
  } > "$work/$packages/Dockerfile"
  docker build -q --force-rm --network host -t "$name" "$work/$packages" >/dev/null
}
debian_image gpufleet-base/redis:7 redis-server
debian_image gpufleet-base/prometheus:2 prometheus prometheus
