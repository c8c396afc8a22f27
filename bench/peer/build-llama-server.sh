#!/usr/bin/env bash
# Builds llama.cpp's own llama-server and llama-batched-bench (CPU) from the pinned release's source: the git bundle
# that node-llama-cpp ships (natives/tokenizer.lock pins the package and its sha512), the same release whose prebuilt
# libraries the worker binds to. The `peer` benchmark runs them beside the worker. Benchmark only, never in CI.
# Cached: a finished build is reused (artifacts/llama-server/<commit>[-noomp]/bin); about 5 minutes on 2 cores.
# Usage: bench/peer/build-llama-server.sh [--no-openmp]    prints the bin folder
#   --no-openmp  ggml's own thread pool instead of OpenMP (the prebuilt libraries' choice is OpenMP)
# Needs cmake, g++ and git (Debian: apt-get install -y cmake g++ git).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
openmp=ON suffix=""
for arg in "$@"; do
  case "$arg" in
    --no-openmp) openmp=OFF suffix="-noomp" ;;
    *) echo "build-llama-server: unknown argument $arg" >&2; exit 2 ;;
  esac
done
for tool in cmake g++ git; do
  command -v "$tool" >/dev/null || { echo "build-llama-server: $tool is missing (apt-get install -y cmake g++ git)" >&2; exit 1; }
done

read -r _ package version integrity < <(awk '$1 == "package" { print; exit }' "$root/natives/tokenizer.lock")
tarball="$("$root/scripts/npm-pack-verified.sh" "$package" "$version" "$integrity" "$root/.natives/cache")"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tar xzf "$tarball" -C "$work" package/llama/gitRelease.bundle
bundle="$work/package/llama/gitRelease.bundle"
commit="$(git bundle list-heads "$bundle" | head -n 1 | cut -d' ' -f1)"

dest="$root/artifacts/llama-server/${commit:0:12}$suffix"
if [[ -x "$dest/bin/llama-server" && -x "$dest/bin/llama-batched-bench" ]]; then
  echo "$dest/bin"
  exit 0
fi

echo "build-llama-server: building llama.cpp ${commit:0:12} from $package@$version (OpenMP $openmp)" >&2
git -c advice.detachedHead=false clone -q --no-checkout "$bundle" "$work/src"
git -C "$work/src" -c advice.detachedHead=false checkout -q "$commit"
# Release build for this CPU (native instructions: the prebuilt CPU backend picks its best variant for the CPU too),
# static so the binaries need nothing beside them; no OpenSSL and no prebuilt web UI (nothing is downloaded).
cmake -S "$work/src" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_BUILD_APP=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON \
  -DGGML_NATIVE=ON -DGGML_OPENMP="$openmp" -DBUILD_SHARED_LIBS=OFF >"$work/cmake.log" 2>&1 \
  || { tail -n 30 "$work/cmake.log" >&2; exit 1; }
cmake --build "$work/build" --target llama-server llama-batched-bench -j "$(nproc)" >"$work/build.log" 2>&1 \
  || { tail -n 30 "$work/build.log" >&2; exit 1; }

rm -rf "$dest"
mkdir -p "$dest/bin"
cp "$work/build/bin/llama-server" "$work/build/bin/llama-batched-bench" "$dest/bin/"
echo "$commit" > "$dest/commit"
echo "build-llama-server: built into $dest/bin" >&2
echo "$dest/bin"
