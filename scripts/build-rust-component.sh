#!/usr/bin/env bash
# Builds the Rust wasi:http test component (tests/guests/httprust); prints the path of the
# .wasm, cached under target/guests/ by a digest of its sources.
#
# Toolchain: rustup's wasm32-wasip2 target when it is installed (`rustup target add
# wasm32-wasip2`); cargo then builds the component itself. Otherwise Debian's Rust 1.96
# (rustc-web, cargo-web, and rust-web-src, the library sources of that compiler): core and
# alloc are built from those sources for wasm32-unknown-unknown (-Zbuild-std), the guest
# is linked by Debian's wasm-ld-22 (lld-22) and made a component by wasm-tools (crates.io).
# The Debian packages are installed with apt-get when missing and running as root.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh

DEBIAN_RUST=1.96
DEBIAN_PACKAGES=(rustc-web cargo-web rust-web-src lld-22)

src="$PWD/tests/guests/httprust"
dir="$PWD/target/guests"
build="$dir/httprust-build"
# Every file of the crate, with its name.
digest=$(cd "$src" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
wasm="$dir/http-rust-$digest.wasm"
if [[ -f "$wasm" ]]; then
    echo "$wasm"
    exit 0
fi
mkdir -p "$dir"

debian_rust_ready() {
    [[ -x /usr/bin/cargo && -x /usr/bin/wasm-ld-22 && -d /usr/lib/rustlib/src/rust/library ]] &&
        /usr/bin/rustc --version 2>/dev/null | grep -q "^rustc $DEBIAN_RUST\."
}

need_debian_rust() {
    debian_rust_ready && return
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        echo "no Rust for wasm32-wasip2: run 'rustup target add wasm32-wasip2', or on Debian" \
            "bookworm install (as root) ${DEBIAN_PACKAGES[*]}" >&2
        exit 1
    fi
    echo "rustup has no wasm32-wasip2 target: installing Debian's Rust $DEBIAN_RUST" \
        "(${DEBIAN_PACKAGES[*]})" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${DEBIAN_PACKAGES[@]}" >/dev/null
    if ! debian_rust_ready; then
        echo "Debian's packages did not give rustc $DEBIAN_RUST with its library sources" \
            "and wasm-ld-22: $(/usr/bin/rustc --version 2>&1)" >&2
        exit 1
    fi
}

if rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    cargo build --manifest-path "$src/Cargo.toml" --release --locked \
        --target wasm32-wasip2 --target-dir "$build" >&2
    cp "$build/wasm32-wasip2/release/httprust.wasm" "$wasm.part"
else
    need_debian_rust
    need_wasm_tools
    # Debian's cargo and rustc, not rustup's (first on PATH); RUSTC_BOOTSTRAP allows
    # -Zbuild-std on this stable compiler.
    RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 /usr/bin/cargo build \
        --manifest-path "$src/Cargo.toml" --release --locked \
        --target wasm32-unknown-unknown -Zbuild-std=core,alloc \
        --config 'target.wasm32-unknown-unknown.linker="wasm-ld-22"' \
        --target-dir "$build" >&2
    wasm-tools component new "$build/wasm32-unknown-unknown/release/httprust.wasm" \
        -o "$wasm.part"
fi
mv "$wasm.part" "$wasm"
echo "$wasm"
