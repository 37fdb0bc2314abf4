#!/usr/bin/env bash
# Writes include/wagi.h from the FFI crate, and its copy caddy-module/engine/wagi.h (the Go
# module carries its own header so that it builds outside this checkout). With --check,
# fails if either committed header is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
outs=(include/wagi.h caddy-module/engine/wagi.h)
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
cbindgen --quiet --config rust-core/ffi/cbindgen.toml --crate wagi-ffi --output "$tmp" rust-core/ffi
if [[ "${1:-}" == "--check" ]]; then
    for out in "${outs[@]}"; do
        if ! diff -u "$out" "$tmp"; then
            echo "$out is stale: run scripts/gen-header.sh and commit it" >&2
            exit 1
        fi
    done
    exit 0
fi
for out in "${outs[@]}"; do
    cp "$tmp" "$out"
done
