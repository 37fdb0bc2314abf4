#!/usr/bin/env bash
# Builds the wasi:http test component (tests/guests/httpjs) with componentize-js from npm.
# Its node_modules is installed once into target/guests/httpjs-node (from the committed
# package-lock.json); the component is built again only when its sources change.
# Prints the path of the .wasm.
set -euo pipefail
cd "$(dirname "$0")/.."
src="$PWD/tests/guests/httpjs"
dir="$PWD/target/guests"
node="$dir/httpjs-node"
mkdir -p "$node"
if [[ ! -x "$node/node_modules/.bin/componentize-js" ]] ||
    ! cmp -s "$src/package-lock.json" "$node/package-lock.json"; then
    cp "$src/package.json" "$src/package-lock.json" "$node/"
    (cd "$node" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
digest=$(cat "$src/guest.js" "$src/package-lock.json" $(find "$src/wit" -type f | sort) |
    sha256sum | cut -c1-16)
wasm="$dir/http-guest-$digest.wasm"
if [[ ! -f "$wasm" ]]; then
    "$node/node_modules/.bin/componentize-js" "$src/guest.js" --wit "$src/wit" \
        -n guest -o "$wasm.part" >&2
    mv "$wasm.part" "$wasm"
fi
echo "$wasm"
