package wagi

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestModuleLabelIsRelativeToTheRoot(t *testing.T) {
	for _, c := range []struct{ root, file, want string }{
		{"/srv/site", "/srv/site/index.wasm", "index.wasm"},
		{"/srv/site", "/srv/site/api/v1.wasm", "api/v1.wasm"},
		{"/srv/site", "/opt/shared/app.wasm", "/opt/shared/app.wasm"},
	} {
		if got := moduleLabel(c.root, c.file); got != c.want {
			t.Errorf("moduleLabel(%q, %q) = %q, want %q", c.root, c.file, got, c.want)
		}
	}
}

// A config reload registers the collectors again, in the new registry or the same one:
// neither may fail.
func TestMetricsRegisterTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	for i := 0; i < 2; i++ {
		if err := registerMetrics(reg); err != nil {
			t.Fatalf("registration %d: %v", i+1, err)
		}
	}
	if err := registerMetrics(prometheus.NewRegistry()); err != nil {
		t.Fatalf("a second registry: %v", err)
	}
}

func TestStderrDefaultFollowsWasiDebug(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{nil, stderrLog},
		{map[string]string{"WASI_DEBUG": "true"}, stderrLog},
		{map[string]string{"WASI_DEBUG": "1"}, stderrLog},
		{map[string]string{"WASI_DEBUG": "false"}, stderrDiscard},
		{map[string]string{"WASI_DEBUG": ""}, stderrDiscard},
	} {
		if got := defaultStderr(c.env); got != c.want {
			t.Errorf("env %v: %q, want %q", c.env, got, c.want)
		}
	}
}
