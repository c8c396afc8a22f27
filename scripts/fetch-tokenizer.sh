#!/usr/bin/env bash
# Fetches the real Qwen3.5/3.6 tokenizer (llama.cpp's models/ggml-vocab-qwen35.gguf: vocabulary and merges only,
# no weights) and the family's chat template (models/templates/Qwen3.5-4B.jinja) from the pinned llama.cpp
# release's source, which node-llama-cpp ships as a git bundle. Checks the tarball and both files against
# natives/tokenizer.lock and places the files in .natives/tokenizer/. Prints that folder.
# Usage: scripts/fetch-tokenizer.sh   (idempotent: a verified folder is left alone)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
lock="$root/natives/tokenizer.lock"
dest="$root/.natives/tokenizer"
cache="$root/.natives/cache"

read -r _ package version integrity < <(awk '$1 == "package" { print; exit }' "$lock")
mapfile -t files < <(awk '$1 == "file" { print $2 " " $3 }' "$lock")

verified() {
  for entry in "${files[@]}"; do
    read -r path sha <<<"$entry"
    local file="$dest/$(basename "$path")"
    [[ -f "$file" ]] || return 1
    [[ "$(sha256sum "$file" | cut -d' ' -f1)" == "$sha" ]] || return 1
  done
}

if [[ -f "$dest/.verified" ]] && verified; then
  echo "$dest"
  exit 0
fi

tarball="$("$root/scripts/npm-pack-verified.sh" "$package" "$version" "$integrity" "$cache")"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tar xzf "$tarball" -C "$work" package/llama/gitRelease.bundle
git init -q --bare "$work/src.git"
git -C "$work/src.git" bundle unbundle "$work/package/llama/gitRelease.bundle" >/dev/null
head="$(git bundle list-heads "$work/package/llama/gitRelease.bundle" | head -n 1 | cut -d' ' -f1)"

rm -rf "$dest"
mkdir -p "$dest"
for entry in "${files[@]}"; do
  read -r path sha <<<"$entry"
  file="$dest/$(basename "$path")"
  git -C "$work/src.git" show "$head:$path" > "$file"
  if [[ "$(sha256sum "$file" | cut -d' ' -f1)" != "$sha" ]]; then
    echo "fetch-tokenizer: $path from $package@$version does not match natives/tokenizer.lock" >&2
    rm -rf "$dest"
    exit 1
  fi
done
touch "$dest/.verified"
echo "fetch-tokenizer: tokenizer ready in $dest" >&2
echo "$dest"
