package wagi

import (
	"context"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

func TestGlobalOption(t *testing.T) {
	d := caddyfile.NewTestDispenser(`wagi {
		instance_slots 32
		wcgi_instances 4
		memory_ceiling 1GiB
		compile_concurrency 2
	}`)
	v, err := parseGlobalOption(d, nil)
	if err != nil {
		t.Fatal(err)
	}
	app, ok := v.(httpcaddyfile.App)
	if !ok || app.Name != "wagi" {
		t.Fatalf("got %#v, want the wagi app", v)
	}
	want := `{"instance_slots":32,"wcgi_instances":4,"memory_ceiling":1073741824,"compile_concurrency":2}`
	if string(app.Value) != want {
		t.Errorf("JSON %s, want %s", app.Value, want)
	}
}

func TestGlobalOptionErrors(t *testing.T) {
	for input, want := range map[string]string{
		"wagi {\nslots 4\n}":                "allowed: instance_slots, wcgi_instances, memory_ceiling, compile_concurrency",
		"wagi {\ninstance_slots 0\n}":       "bad instance_slots",
		"wagi {\nwcgi_instances many\n}":    "bad wcgi_instances",
		"wagi {\nmemory_ceiling lots\n}":    "bad memory_ceiling",
		"wagi {\ncompile_concurrency\n}":    "wrong argument count",
		"wagi {\ninstance_slots 1 2\n}":     "wrong argument count",
		"wagi on":                           "wrong argument count",
		"wagi {\nmemory_ceiling 99EiB\n}":   "bad memory_ceiling",
		"wagi {\ncompile_concurrency -1\n}": "bad compile_concurrency",
	} {
		_, err := parseGlobalOption(caddyfile.NewTestDispenser(input), nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one containing %q", input, err, want)
		}
	}
}

func TestAppValidate(t *testing.T) {
	for _, a := range []App{{InstanceSlots: -1}, {WCGIInstances: -1}, {CompileConcurrency: -1}, {MemoryCeiling: -1}, {InstanceSlots: 1 << 40}} {
		if err := a.Validate(); err == nil {
			t.Errorf("%+v accepted", a)
		}
	}
}

func newTestContext(t *testing.T) caddy.Context {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	return ctx
}

// A reload with the same settings shares the engine (compiled modules survive it); other
// settings get an engine of their own; the engine lives while any app uses it.
func TestAppsShareTheEngineBySettings(t *testing.T) {
	provision := func(a *App) *App {
		t.Helper()
		if err := a.Provision(newTestContext(t)); err != nil {
			t.Fatal(err)
		}
		return a
	}
	small := App{InstanceSlots: 2, WCGIInstances: 1, MemoryCeiling: 64 << 20}
	oldCfg, newCfg := small, small
	a, b := provision(&oldCfg), provision(&newCfg)
	other := small
	other.InstanceSlots = 3
	c := provision(&other)
	if a.engine != b.engine {
		t.Error("same settings, different engines")
	}
	if c.engine == a.engine {
		t.Error("different settings, same engine")
	}
	for _, app := range []*App{a, c} {
		if err := app.Cleanup(); err != nil {
			t.Fatal(err)
		}
	}
	if _, used := engines.References(b.key); !used {
		t.Error("the engine was released while an app still uses it")
	}
	if err := b.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if n, _ := engines.References(b.key); n != 0 {
		t.Errorf("%d references left after the last app was cleaned up", n)
	}
}

// Defaults are filled in, and a site's memory above the ceiling is refused with an error
// naming the setting.
func TestAppDefaultsAndMemoryCeiling(t *testing.T) {
	a := App{MemoryCeiling: 64 << 20}
	if err := a.Provision(newTestContext(t)); err != nil {
		t.Fatal(err)
	}
	defer a.Cleanup()
	if a.InstanceSlots != defaultInstanceSlots || a.WCGIInstances != defaultWCGIInstances || a.CompileConcurrency != 0 {
		t.Errorf("defaults: %+v", a)
	}
	if err := a.checkMemory(64 << 20); err != nil {
		t.Errorf("memory at the ceiling refused: %v", err)
	}
	if err := a.checkMemory(65 << 20); err == nil || !strings.Contains(err.Error(), "memory_ceiling") {
		t.Errorf("memory above the ceiling: %v", err)
	}
}
