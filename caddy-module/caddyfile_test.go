package wagi

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	d := caddyfile.NewTestDispenser(`wagi ./api.wasm {
		root /srv/site
		index index.php
		split .php .wasm
		env APP_MODE prod
		env CLIENT {http.request.remote.host}
		timeout 2s
		memory 64MiB
		max_wait 250ms
		mode wcgi
		instances 3
		mount /srv/data /data rw
		mount /srv/ro
		argv python /app/main.py {http.request.uri.query.q}
		entrypoint serve
	}`)
	var h Handler
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if h.Module != "./api.wasm" || h.Root != "/srv/site" || h.Index != "index.php" {
		t.Errorf("module/root/index = %q %q %q", h.Module, h.Root, h.Index)
	}
	if strings.Join(h.SplitPath, " ") != ".php .wasm" {
		t.Errorf("split = %q", h.SplitPath)
	}
	if h.Env["APP_MODE"] != "prod" || h.Env["CLIENT"] != "{http.request.remote.host}" {
		t.Errorf("env = %v", h.Env)
	}
	if h.Timeout != caddy.Duration(2*time.Second) || h.MaxWait != caddy.Duration(250*time.Millisecond) {
		t.Errorf("timeout %v max_wait %v", h.Timeout, h.MaxWait)
	}
	if h.MemoryBytes != 64<<20 {
		t.Errorf("memory = %d", h.MemoryBytes)
	}
	if h.Mode != "wcgi" || h.Instances != 3 {
		t.Errorf("mode %q instances %d", h.Mode, h.Instances)
	}
	if strings.Join(h.Argv, " ") != "python /app/main.py {http.request.uri.query.q}" || h.Entrypoint != "serve" {
		t.Errorf("argv %q entrypoint %q", h.Argv, h.Entrypoint)
	}
	want := []Mount{{Host: "/srv/data", Guest: "/data", Writable: true}, {Host: "/srv/ro"}}
	if len(h.Mounts) != 2 || h.Mounts[0] != want[0] || h.Mounts[1] != want[1] {
		t.Errorf("mounts = %+v", h.Mounts)
	}
}

func TestUnmarshalCaddyfileErrors(t *testing.T) {
	for input, want := range map[string]string{
		"wagi {\nbogus\n}":          "allowed: root, index, split",
		"wagi {\nmemory lots\n}":    "bad memory size",
		"wagi {\ntimeout soon\n}":   "bad timeout",
		"wagi a.wasm b.wasm":        "wrong argument count",
		"wagi {\nenv ONLY_A_KEY\n}": "wrong argument count",
		"wagi {\nsplit\n}":          "wrong argument count",
		"wagi {\nmode fast\n}":      "bad mode",
		"wagi {\ninstances 0\n}":    "bad instances",
		"wagi {\nmount a b c d\n}":  "wrong argument count",
		"wagi {\nargv\n}":           "wrong argument count",
		"wagi {\nentrypoint a b\n}": "wrong argument count",
		"wagi {\nstderr maybe\n}":   "bad stderr",
	} {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one containing %q", input, err, want)
		}
	}
}

func TestModeHTTPParsesAndValidates(t *testing.T) {
	var h Handler
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("wagi {\nmode http\n}")); err != nil {
		t.Fatal(err)
	}
	if h.Mode != "http" {
		t.Fatalf("mode = %q, want http", h.Mode)
	}
	h.Mode = "fast"
	if err := h.Validate(); err == nil || !strings.Contains(err.Error(), "auto, cgi, wcgi or http") {
		t.Errorf("Validate with mode fast: %v", err)
	}
}
