# Sourced by the build and test scripts: puts Go's and Cargo's install directories on PATH
# and installs the pinned build tools a fresh machine lacks (from the Go module proxy and
# crates.io).
export PATH="$(go env GOPATH)/bin:$HOME/.cargo/bin:$PATH"

XCADDY_VERSION=v0.4.5
CBINDGEN_VERSION=0.29.4
CADDY_VERSION=v2.11.9

need_xcaddy() {
    command -v xcaddy >/dev/null 2>&1 && return
    echo "installing xcaddy $XCADDY_VERSION" >&2
    GOFLAGS= go install "github.com/caddyserver/xcaddy/cmd/xcaddy@$XCADDY_VERSION"
}

need_cbindgen() {
    if command -v cbindgen >/dev/null 2>&1 && cbindgen --version | grep -q "$CBINDGEN_VERSION"; then
        return
    fi
    echo "installing cbindgen $CBINDGEN_VERSION" >&2
    cargo install --quiet --locked cbindgen --version "$CBINDGEN_VERSION"
}

WASM_TOOLS_VERSION=1.263.0

# wasm-tools, only its `component` subcommands: turns a core module into a component.
need_wasm_tools() {
    if command -v wasm-tools >/dev/null 2>&1 && wasm-tools --version | grep -q "$WASM_TOOLS_VERSION"; then
        return
    fi
    echo "installing wasm-tools $WASM_TOOLS_VERSION" >&2
    cargo install --quiet --locked wasm-tools --version "$WASM_TOOLS_VERSION" \
        --no-default-features --features component
}
