#!/usr/bin/env bash
# Builds every GpuFleet image from the repository's Dockerfiles:
#   gpufleet/gateway, gpufleet/worker-cpu, gpufleet/worker-cuda (tag: $TAG, default "local")
# and, for the compose fleet, gpufleet/redis and gpufleet/prometheus when their public images are not at hand.
#   deploy/build-images.sh                 all images
#   deploy/build-images.sh gateway worker-cpu
# Base images: the public .NET and NVIDIA CUDA images by default. Where no image registry is reachable (or with
# GPUFLEET_LOCAL_BASE=1), deploy/local-base-images.sh first builds local stand-ins from Debian packages and they are
# passed as build arguments: the very same Dockerfiles are built either way.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

tag="${TAG:-local}"
images=("$@")
((${#images[@]})) || images=(gateway worker-cpu worker-cuda redis prometheus)

sdk_image="${SDK_IMAGE:-mcr.microsoft.com/dotnet/sdk:10.0}"
runtime_image="${RUNTIME_IMAGE:-mcr.microsoft.com/dotnet/runtime-deps:10.0}"
cuda_image="${CUDA_IMAGE:-nvidia/cuda:13.0.1-runtime-ubuntu24.04}"
redis_image="${REDIS_IMAGE:-redis:7}"
prometheus_image="${PROMETHEUS_IMAGE:-prom/prometheus:v2.53.0}"

registry_reachable() { timeout 20 docker pull -q "$1" >/dev/null 2>&1; }

if [[ "${GPUFLEET_LOCAL_BASE:-}" == 1 ]] || { ! docker image inspect "$runtime_image" >/dev/null 2>&1 && ! registry_reachable "$runtime_image"; }; then
  echo "build-images: no registry image $runtime_image; building local stand-ins (deploy/local-base-images.sh)" >&2
  deploy/local-base-images.sh
  sdk_image=gpufleet-base/dotnet-sdk:10.0
  runtime_image=gpufleet-base/dotnet-runtime-deps:10.0
  # No CUDA runtime can be installed without NVIDIA's registry: the CUDA worker is built on the plain base here
  # (its natives are fetched and verified all the same; it needs the real base to run on a GPU).
  cuda_image=$runtime_image
  redis_image=gpufleet-base/redis:7
  prometheus_image=gpufleet-base/prometheus:2
fi

have_or_pull() { docker image inspect "$1" >/dev/null 2>&1 || docker pull -q "$1" >/dev/null; }

build() { # name dockerfile build-args...
  local name="$1" file="$2"
  shift 2
  echo "build-images: gpufleet/$name:$tag" >&2
  # Host networking for the build steps (apt, npm, NuGet): works whether or not the engine has a default bridge.
  docker build -q --force-rm --network host -f "$file" -t "gpufleet/$name:$tag" "$@" . >/dev/null
}

for image in "${images[@]}"; do
  case "$image" in
    gateway) build gateway deploy/docker/gateway.Dockerfile --build-arg SDK_IMAGE="$sdk_image" --build-arg RUNTIME_IMAGE="$runtime_image" ;;
    worker-cpu) build worker-cpu deploy/docker/worker.Dockerfile --build-arg SDK_IMAGE="$sdk_image" --build-arg RUNTIME_IMAGE="$runtime_image" --build-arg NATIVES=cpu ;;
    worker-cuda) build worker-cuda deploy/docker/worker.Dockerfile --build-arg SDK_IMAGE="$sdk_image" --build-arg RUNTIME_IMAGE="$cuda_image" --build-arg NATIVES=cuda ;;
    # The compose fleet refers to gpufleet/redis and gpufleet/prometheus so that one name works with either source.
    redis | prometheus)
      source_image="${image}_image"
      have_or_pull "${!source_image}"
      docker tag "${!source_image}" "gpufleet/$image:$tag"
      ;;
    *) echo "build-images: unknown image '$image' (gateway, worker-cpu, worker-cuda, redis, prometheus)" >&2; exit 2 ;;
  esac
done
echo "build-images: done (tag $tag)" >&2
