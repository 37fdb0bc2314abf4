package wagi

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestNetworkCaddyfile(t *testing.T) {
	d := caddyfile.NewTestDispenser(`wagi {
		network api.example.com {
			allow 10.0.0.0/8:5432 *.internal.test
			deny bad.internal.test
			max_connections 8
			connect_timeout 2s
			buffer 64KiB
			ca_file /etc/ca.pem
		}
	}`)
	var h Handler
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	n := h.Network
	if n == nil || strings.Join(n.Allow, " ") != "api.example.com 10.0.0.0/8:5432 *.internal.test" ||
		strings.Join(n.Deny, " ") != "bad.internal.test" {
		t.Fatalf("network = %+v", n)
	}
	if n.MaxConnections != 8 || n.ConnectTimeout != caddy.Duration(2*time.Second) || n.BufferBytes != 64<<10 || n.CAFile != "/etc/ca.pem" {
		t.Errorf("network settings = %+v", n)
	}
	for input, want := range map[string]string{
		"wagi {\nnetwork {\nallow\n}\n}":                "wrong argument count",
		"wagi {\nnetwork {\nmax_connections 0\n}\n}":    "bad max_connections",
		"wagi {\nnetwork {\nconnect_timeout soon\n}\n}": "bad connect_timeout",
		"wagi {\nnetwork {\nbogus 1\n}\n}":              "unknown network option",
		"wagi {\nnetwork {\nbuffer lots\n}\n}":          "bad buffer size",
		"wagi {\nnetwork {\nca_file a b\n}\n}":          "wrong argument count",
	} {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", input, err, want)
		}
	}
}

func TestNetworkValidate(t *testing.T) {
	both := &Network{Allow: []string{"127.0.0.1"}}
	if err := both.validate(map[string]string{"WASI_NET": "bypass=127.0.0.1"}); err == nil || !strings.Contains(err.Error(), "keep one") {
		t.Errorf("network lists and WASI_NET: %v", err)
	}
	limitsOnly := &Network{MaxConnections: 4}
	if err := limitsOnly.validate(map[string]string{"WASI_NET": "bypass=127.0.0.1"}); err != nil {
		t.Errorf("network limits with WASI_NET: %v", err)
	}
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := (&Network{CAFile: notPEM}).validate(nil); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("ca_file without a certificate: %v", err)
	}
	if err := (&Network{CAFile: notPEM + ".missing"}).validate(nil); err == nil {
		t.Errorf("missing ca_file accepted")
	}
}
