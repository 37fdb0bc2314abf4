#!/usr/bin/env bash
# Writes include/wagi.h from the FFI crate. With --check, fails if the committed header is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
out=include/wagi.h
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
cbindgen --quiet --config rust-core/ffi/cbindgen.toml --crate wagi-ffi --output "$tmp" rust-core/ffi
if [[ "${1:-}" == "--check" ]]; then
    if ! diff -u "$out" "$tmp"; then
        echo "include/wagi.h is stale: run scripts/gen-header.sh and commit it" >&2
        exit 1
    fi
    exit 0
fi
cp "$tmp" "$out"
