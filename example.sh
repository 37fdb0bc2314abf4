#!/usr/bin/env bash
# Builds everything and serves the bundled example (examples/hello) on http://127.0.0.1:7070
set -euo pipefail
cd "$(dirname "$0")"
./xcaddy.sh
(cd examples && GOOS=wasip1 GOARCH=wasm go build -o hello/site/index.wasm ./hello)
cd examples/hello
echo "serving http://127.0.0.1:7070 (try /, /hello1, /hello2); Ctrl-C stops" >&2
exec ../../bin/caddy run --config Caddyfile --adapter caddyfile
