#!/usr/bin/env bash
# Installs caddy-wagi the way a user outside this checkout does (README, "Other ways to
# install"): a copy of caddy-module/ alone, built with xcaddy, finding libwagi.a only through
# CGO_LDFLAGS. Then the Caddy it built serves the bundled example once, on loopback.
# Needs target/release/libwagi.a (./xcaddy.sh builds it).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
need_xcaddy

lib="$PWD/target/release"
[[ -f "$lib/libwagi.a" ]] || { echo "no $lib/libwagi.a: run ./xcaddy.sh first" >&2; exit 1; }
work=$(mktemp -d)
pid=
cleanup() {
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

cp -r caddy-module "$work/caddy-module"
# Until the module is on the module proxy, xcaddy needs a version to pin the copy to (it
# would `go get` a bare path from the proxy); once published, `--with <path>` alone works.
(cd "$work" && CGO_ENABLED=1 CGO_LDFLAGS="-L$lib" xcaddy build "$CADDY_VERSION" \
    --output "$work/caddy" \
    --with "github.com/caddy-wagi/caddy-wagi/caddy-module@v0.0.0-00010101000000-000000000000=$work/caddy-module")
"$work/caddy" list-modules | grep -qx http.handlers.wagi

mkdir -p "$work/site"
(cd examples && GOOS=wasip1 GOARCH=wasm go build -o "$work/site/index.wasm" ./hello)
port=$((20000 + RANDOM % 20000))
cat >"$work/Caddyfile" <<CADDY
{
	admin off
	storage file_system $work/data
}
http://127.0.0.1:$port {
	root * $work/site
	wagi
}
CADDY
"$work/caddy" run --config "$work/Caddyfile" --adapter caddyfile >"$work/log" 2>&1 &
pid=$!
# Bounded wait for the listener, then one request with a raw socket.
for _ in $(seq 100); do
    if { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then break; fi
    kill -0 "$pid" || { cat "$work/log" >&2; exit 1; }
    sleep 0.1
done
printf 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
answer=$(timeout 60 cat <&3)
exec 3<&-
if [[ "$answer" != "HTTP/1.1 200"* ]]; then
    echo "the installed Caddy did not serve the example:" >&2
    echo "$answer" >&2
    cat "$work/log" >&2
    exit 1
fi
echo "installed from a copy of caddy-module/ with CGO_LDFLAGS only: serves the example" >&2
