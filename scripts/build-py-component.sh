#!/usr/bin/env bash
# Builds the Python wasi:http test component (tests/guests/httppy) with componentize-py
# from PyPI, pinned by version and digest, against the JavaScript guest's WIT (one world
# for both). The tool is installed once into a venv under target/guests/; the component is
# built again only when its sources change. Prints the path of the .wasm.
set -euo pipefail
cd "$(dirname "$0")/.."
src="$PWD/tests/guests/httppy"
wit="$PWD/tests/guests/httpjs/wit"
dir="$PWD/target/guests"
venv="$dir/httppy-venv"
version=0.25.1
wheel=componentize_py-$version-cp39-abi3-manylinux_2_28_x86_64.whl
want=8623cd8cab8453cb0cd8bf03f3c7103420d06f2f3d360186a280a70a1ca5e89f
if [[ ! -x "$venv/bin/componentize-py" ]] || [[ "$("$venv/bin/componentize-py" --version)" != "componentize-py $version" ]]; then
    mkdir -p "$dir"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    python3 -m pip download --quiet --no-deps --only-binary :all: "componentize-py==$version" -d "$tmp" >&2
    got=$(sha256sum "$tmp/$wheel" | cut -d' ' -f1)
    if [[ "$got" != "$want" ]]; then
        echo "$wheel has digest $got, want $want" >&2
        exit 1
    fi
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --no-deps "$tmp/$wheel" >&2
fi
digest=$(cat "$src/app.py" $(find "$wit" -type f | sort) | sha256sum | cut -c1-16)
wasm="$dir/http-py-guest-$digest.wasm"
if [[ ! -f "$wasm" ]]; then
    work=$(mktemp -d)
    "$venv/bin/componentize-py" -d "$wit" -w guest bindings "$work/bindings" >&2
    "$venv/bin/componentize-py" -d "$wit" -w guest componentize -p "$src" -p "$work/bindings" app \
        -o "$wasm.part" >&2
    rm -rf "$work"
    mv "$wasm.part" "$wasm"
fi
echo "$wasm"
