#!/usr/bin/env bash
# Builds the Rust engine (target/release/libwagi.a), then a Caddy with the wagi handler
# (bin/caddy) using xcaddy. Extra arguments go to `xcaddy build` (e.g. more --with).
set -euo pipefail
cd "$(dirname "$0")"
source scripts/tools.sh
need_xcaddy

cargo build --release --locked -p wagi-ffi
mkdir -p bin
# Go skips the link when the output's build ID matches, and that ID does not cover the
# contents of libwagi.a: remove the old binary so a changed Rust library is always linked.
rm -f bin/caddy
# The library is passed the way a user outside this checkout passes it (see the README).
CGO_ENABLED=1 CGO_LDFLAGS="-L$PWD/target/release ${CGO_LDFLAGS:-}" xcaddy build "$CADDY_VERSION" \
    --output bin/caddy \
    --with "github.com/caddy-wagi/caddy-wagi/caddy-module@v0.0.0-00010101000000-000000000000=$PWD/caddy-module" "$@"
echo "built bin/caddy" >&2
