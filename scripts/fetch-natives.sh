#!/usr/bin/env bash
# Fetches the pinned prebuilt llama.cpp libraries from npm, checks the tarball against the integrity
# pinned in natives/natives.lock, and places the shared libraries in .natives/<flavour>/.
# Usage: scripts/fetch-natives.sh [cpu|cuda]   (idempotent: a verified folder is left alone)
set -euo pipefail

flavour="${1:-cpu}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
lock="$root/natives/natives.lock"
dest="$root/.natives/$flavour"
cache="$root/.natives/cache"

read -r _ package version integrity < <(awk -v f="$flavour" '$1 == f { print; exit }' "$lock") || true
if [[ -z "${integrity:-}" ]]; then
  echo "fetch-natives: unknown flavour '$flavour' (see natives/natives.lock)" >&2
  exit 2
fi

if [[ -f "$dest/.verified" && "$(cat "$dest/.verified")" == "$integrity" ]]; then
  exit 0
fi

tarball="$("$root/scripts/npm-pack-verified.sh" "$package" "$version" "$integrity" "$cache")"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tar xzf "$tarball" -C "$work"
bins="$(find "$work/package/bins" -mindepth 1 -maxdepth 1 -type d | head -n 1)"
if ! grep -q '"release":"v0.5.0"' "$bins/_nlcBuildMetadata.json"; then
  echo "fetch-natives: $package@$version is not llama.cpp v0.5.0" >&2
  exit 1
fi

rm -rf "$dest"
mkdir -p "$dest"
cp "$bins"/*.so "$bins/_nlcBuildMetadata.json" "$dest/"
if [[ "$flavour" != "cpu" ]] && ! compgen -G "$dest/libggml-cpu-*.so" >/dev/null; then
  # A GPU flavour still needs the CPU backend variants for host-side work.
  "$0" cpu
  cp "$root/.natives/cpu"/libggml-cpu-*.so "$dest/"
fi
echo "$integrity" > "$dest/.verified"
echo "fetch-natives: $flavour libraries ready in $dest" >&2
