package tests

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestListModulesShowsWagi(t *testing.T) {
	out, err := exec.Command(world.caddy, "list-modules").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "http.handlers.wagi") {
		t.Fatalf("list-modules: %v\n%s", err, out)
	}
}

func TestAdaptProducesWagiHandler(t *testing.T) {
	out, err := exec.Command(world.caddy, "adapt", "--config", world.proc.config, "--adapter", "caddyfile").CombinedOutput()
	if err != nil {
		t.Fatalf("adapt: %v\n%s", err, out)
	}
	for _, want := range []string{`"handler":"wagi"`, `"index":"index.php"`, `"split_path":[".php"]`, `"module":"./probe.wasm"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("adapted JSON lacks %s:\n%s", want, out)
		}
	}
}

func TestUnknownSubdirectiveIsRejected(t *testing.T) {
	dir := t.TempDir()
	cf := filepath.Join(dir, "Caddyfile")
	writeFile(t, cf, "http://127.0.0.1:1 {\n\twagi {\n\t\tbogus 1\n\t}\n}\n")
	out, err := exec.Command(world.caddy, "adapt", "--config", cf, "--adapter", "caddyfile").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "unknown wagi subdirective") || !strings.Contains(string(out), "split") {
		t.Fatalf("adapt accepted a bad subdirective or gave an unhelpful error: %v\n%s", err, out)
	}
}

// Reloads share the engine: the module loaded before the reloads (compiled, or read from
// the disk cache when another site compiled the same bytes) is not loaded again, and every
// reload leaves Caddy serving.
func TestConfigReloadKeepsServing(t *testing.T) {
	seedModule := filepath.Join(world.work, "sites", "seed", "index.wasm")
	loaded := []string{"module ready from", `"module":"` + seedModule + `"`}
	if r := get(t, site("seed")+"/hello1"); string(r.body) != "hello1\n" {
		t.Fatalf("before reload: %d %q", r.status, r.body)
	}
	if !world.proc.logs.WaitFor(10*time.Second, loaded...) {
		t.Fatalf("no log line for loading %s", seedModule)
	}
	loads := world.proc.logs.Count(loaded...)
	for i := 0; i < 10; i++ {
		if err := world.proc.Reload(world.sitesCf); err != nil {
			t.Fatal(err)
		}
		if r := get(t, site("seed")+"/hello1"); string(r.body) != "hello1\n" {
			t.Fatalf("after reload %d: %d %q", i, r.status, r.body)
		}
	}
	if !world.proc.Alive() {
		t.Fatal("caddy died")
	}
	if n := world.proc.logs.Count(loaded...); n != loads {
		t.Errorf("module loaded %d more times across reloads", n-loads)
	}
}

func TestHeaderIsCurrent(t *testing.T) {
	cmd := exec.Command(filepath.Join(repoRoot, "scripts", "gen-header.sh"), "--check")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}
