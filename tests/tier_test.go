package tests

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// A never-seen module is served first by the baseline tier (Winch) and then, for new
// requests and WCGI instances, by the optimised tier (Cranelift) compiled in the
// background; both tiers are cached on disk under their own names and reused after a
// restart; engines that go idle are renewed (their pools' memory given back) and the new
// ones keep time limits.

// tierWait bounds the optimised (Cranelift) compile of a Go guest on one niced thread of a
// busy 2-core machine.
const tierWait = 180 * time.Second

const tierSite = "\twagi {\n\t\tcache_dir $DIR/cache\n\t\ttimeout 2s\n\t}"

// tierCaddy starts a Caddy of its own serving dir/site (CGI probe as a.wasm, WCGI guest
// as w.wasm) with the disk cache in dir/cache.
func tierCaddy(t *testing.T, dir string) *ownCaddy {
	t.Helper()
	return startOwnCaddy(t, dir, "", map[string]string{"site": tierSite})
}

// tierFiles lists the disk cache files of one tier.
func tierFiles(t *testing.T, dir, tier string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "cache", "*-"+tier+".cwasm"))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// expectProbe checks that the probe answers at url.
func expectProbe(t *testing.T, url string) {
	t.Helper()
	if r := get(t, url); r.status != 200 || !strings.HasPrefix(string(r.body), "probe ") {
		t.Fatalf("GET %s: %d %q", url, r.status, r.body)
	}
}

func TestTiersReplaceAndPersist(t *testing.T) {
	dir := t.TempDir()
	aModule := filepath.Join(dir, "site", "a.wasm")
	copyFile(t, world.probe, aModule)
	c := tierCaddy(t, dir)
	a := c.urls["site"] + "/a.wasm"

	// Concurrent first requests share one baseline compile.
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); expectProbe(t, a) }()
	}
	wg.Wait()
	mod := `"module":"` + aModule + `"`
	if n := c.proc.logs.Count("module ready from compiled", "(tier=baseline)", mod); n != 1 {
		t.Fatalf("%d baseline loads for 4 concurrent first requests, want 1\n%s", n, c.proc.logs)
	}
	if !c.proc.logs.WaitFor(tierWait, "optimized tier ready from compiled", mod) {
		t.Fatal("the optimized tier was not compiled in the background")
	}
	expectProbe(t, a)
	if !c.proc.logs.WaitFor(5*time.Second, "module now runs tier=optimized", mod) {
		t.Fatal("the request after the background compile did not run the optimized tier")
	}
	if n := c.proc.logs.Count("module ready", mod); n != 1 {
		t.Errorf("module loaded %d times, want 1 (the tier-up is not a load)", n)
	}
	if b, o := tierFiles(t, dir, "baseline"), tierFiles(t, dir, "optimized"); len(b) != 1 || len(o) != 1 {
		t.Fatalf("cache files: baseline %q, optimized %q; want one of each", b, o)
	}
	c.stop()

	// After a restart the optimized code is loaded from disk: nothing is compiled.
	c = tierCaddy(t, dir)
	a = c.urls["site"] + "/a.wasm"
	expectProbe(t, a)
	if n := c.proc.logs.Count("module ready from disk cache", "(tier=optimized)", mod); n != 1 {
		t.Fatalf("not loaded from the optimized cache file after a restart:\n%s", c.proc.logs)
	}
	if n := c.proc.logs.Count("from compiled"); n != 0 {
		t.Errorf("%d compiles after a restart with both tiers cached", n)
	}
	c.stop()

	// Without the optimized file, the cached baseline serves, and the optimized tier is
	// compiled again in the background.
	for _, f := range tierFiles(t, dir, "optimized") {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	c = tierCaddy(t, dir)
	a = c.urls["site"] + "/a.wasm"
	expectProbe(t, a)
	if n := c.proc.logs.Count("module ready from disk cache", "(tier=baseline)", mod); n != 1 {
		t.Fatalf("not loaded from the baseline cache file:\n%s", c.proc.logs)
	}
	if !c.proc.logs.WaitFor(tierWait, "optimized tier ready from compiled", mod) {
		t.Fatal("the optimized tier was not compiled again")
	}
	expectProbe(t, a)
}

// A WCGI module's instances move to the optimised tier: the baseline ones drain.
func TestTierUpDrainsWCGIInstances(t *testing.T) {
	dir := t.TempDir()
	wModule := filepath.Join(dir, "site", "w.wasm")
	copyFile(t, world.wcgi, wModule)
	c := startOwnCaddy(t, dir, "", map[string]string{"site": "\twagi {\n\t\tcache_dir off\n\t}"})
	w := c.urls["site"] + "/w.wasm"
	expectIndex := func() {
		t.Helper()
		if r := get(t, w); r.status != 200 || string(r.body) != "index\n" {
			t.Fatalf("GET %s: %d %q", w, r.status, r.body)
		}
	}
	expectIndex()
	mod := `"module":"` + wModule + `"`
	if !c.proc.logs.WaitFor(5*time.Second, "module ready from compiled", "(tier=baseline)", mod) {
		t.Fatalf("not loaded at the baseline tier:\n%s", c.proc.logs)
	}
	if !c.proc.logs.WaitFor(tierWait, "optimized tier ready from compiled", mod) {
		t.Fatal("the optimized tier was not compiled in the background")
	}
	expectIndex()
	if !c.proc.logs.WaitFor(5*time.Second, "module changed; draining its WCGI instances", mod) {
		t.Errorf("the baseline instance was not drained:\n%s", c.proc.logs)
	}
	expectIndex()
}

// Once nothing runs on them, the engines are renewed (their warm pool memory given back),
// and the new ones serve and keep time limits: their epochs tick.
func TestIdleEnginesAreRenewed(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, world.probe, filepath.Join(dir, "site", "a.wasm"))
	c := startOwnCaddy(t, dir, "", map[string]string{
		"site": "\twagi {\n\t\tcache_dir off\n\t\tkeepalive 1s\n\t\ttimeout 1s\n\t}",
	})
	a := c.urls["site"] + "/a.wasm"
	expectProbe(t, a)
	if !c.proc.logs.WaitFor(15*time.Second, "released the idle memory of the baseline") {
		t.Fatalf("the idle baseline engine was not renewed:\n%s", c.proc.logs)
	}
	expectProbe(t, a)
	if r := get(t, a+"?do=loop"); r.status != http.StatusGatewayTimeout {
		t.Errorf("runaway loop on a renewed engine: %d, want 504", r.status)
	}
}
