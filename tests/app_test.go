package tests

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// startAppCaddy runs Caddy with the global `wagi { ... }` body given (empty: no block) and
// one site per name. Caddy stops when the test ends.
func startAppCaddy(t *testing.T, dir, wagiOptions string, sites map[string]string) *ownCaddy {
	t.Helper()
	global := ""
	if wagiOptions != "" {
		global = "\twagi {\n" + wagiOptions + "\n\t}\n"
	}
	return startOwnCaddy(t, dir, global, sites)
}

// appCache is where these tests' Caddies keep compiled modules, so each compiles the
// probe once.
func appCache() string { return filepath.Join(world.work, "app-cache") }

// modulePathIn is the path of a site's module as the engine logs it.
func modulePathIn(dir, site, file string) string { return filepath.Join(dir, site, file) }

// The global option block becomes the `wagi` app in JSON.
func TestAdaptGlobalWagiOptions(t *testing.T) {
	dir := t.TempDir()
	cf := filepath.Join(dir, "Caddyfile")
	writeFile(t, cf, "{\n\twagi {\n\t\tinstance_slots 8\n\t\twcgi_instances 2\n\t\tmemory_ceiling 1GiB\n\t\tcompile_concurrency 1\n\t}\n}\nhttp://127.0.0.1:1 {\n\twagi\n}\n")
	out, err := exec.Command(world.caddy, "adapt", "--config", cf, "--adapter", "caddyfile").CombinedOutput()
	if err != nil {
		t.Fatalf("adapt: %v\n%s", err, out)
	}
	want := `"wagi":{"instance_slots":8,"wcgi_instances":2,"memory_ceiling":1073741824,"compile_concurrency":1}`
	if !strings.Contains(string(out), want) {
		t.Errorf("adapted JSON lacks %s:\n%s", want, out)
	}
	writeFile(t, cf, "{\n\twagi {\n\t\tslots 8\n\t}\n}\nhttp://127.0.0.1:1 {\n\twagi\n}\n")
	out, err = exec.Command(world.caddy, "adapt", "--config", cf, "--adapter", "caddyfile").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "instance_slots") {
		t.Errorf("an unknown global wagi option was accepted or the error lists no allowed ones: %v\n%s", err, out)
	}
}

// A site asking for more guest memory than the process-wide ceiling is refused when the
// config loads, with an error that says so.
func TestSiteMemoryAboveCeilingIsRefused(t *testing.T) {
	dir := t.TempDir()
	cf := filepath.Join(dir, "Caddyfile")
	writeFile(t, cf, "{\n\twagi {\n\t\tmemory_ceiling 64MiB\n\t}\n}\nhttp://127.0.0.1:1 {\n\twagi {\n\t\tmemory 128MiB\n\t}\n}\n")
	out, err := exec.Command(world.caddy, "validate", "--config", cf, "--adapter", "caddyfile").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "memory_ceiling") {
		t.Fatalf("a site above the memory ceiling was accepted or the error does not name it: %v\n%s", err, out)
	}
}

// A reload every 100 ms while `precompile` loads 20 modules: the warm-up of each old
// config stops with it, Caddy stays up and serving, and nothing panics. (Before the app
// owned the engine, the old warm-up kept running on a cleaned-up handler and crashed
// Caddy.)
func TestReloadWhilePrecompiling(t *testing.T) {
	dir := t.TempDir()
	probe, err := os.ReadFile(world.probe)
	if err != nil {
		t.Fatal(err)
	}
	const modules = 20
	if err := os.MkdirAll(filepath.Join(dir, "warm"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < modules; i++ {
		name := fmt.Sprintf("m%02d.wasm", i)
		mod := withCustomSection(probe, fmt.Sprintf("wagi-test-app-warm-%02d", i))
		if err := os.WriteFile(filepath.Join(dir, "warm", name), mod, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The root in the wagi block is known at config load, so each config's warm-up
	// starts then; no disk cache: every module is a real compile, so the warm-up is still
	// running while the reloads come.
	c := startAppCaddy(t, dir, "", map[string]string{
		"warm": "wagi {\n\t\troot " + filepath.Join(dir, "warm") + "\n\t\tprecompile\n\t\tcache_dir off\n\t}",
	})
	ready := func() int { return c.proc.logs.Count("module ready", filepath.Join(dir, "warm")) }

	// A reload returns once the old config's warm-up has stopped, which waits for the
	// module it is loading: so reloads come every 100 ms or as fast as that allows. They
	// go on at least until a module finished loading after the first reload: then an old
	// warm-up has gone on to its next module, where it used to crash Caddy.
	reloads, readyAtFirst := 0, ready()
	if readyAtFirst == modules {
		t.Fatal("the warm-up finished before the first reload: nothing was tested")
	}
	var slowest time.Duration
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	end, giveUp := time.Now().Add(3*time.Second), time.Now().Add(2*time.Minute)
	for reloads < 3 || time.Now().Before(end) || ready() == readyAtFirst {
		if time.Now().After(giveUp) {
			t.Fatalf("no module loaded in 2 minutes of reloads (%d)", reloads)
		}
		began := time.Now()
		if err := c.proc.Reload(c.config); err != nil {
			t.Fatalf("reload %d: %v", reloads, err)
		}
		slowest = max(slowest, time.Since(began))
		reloads++
		if !c.proc.Alive() {
			t.Fatalf("caddy died after %d reloads", reloads)
		}
		<-tick.C
	}
	t.Logf("%d reloads, the slowest %s; %d of %d modules ready meanwhile", reloads, slowest, ready(), modules)
	if r := get(t, c.urls["warm"]+"/m07.wasm?do=x"); r.status != http.StatusOK {
		t.Errorf("after the reloads: %d %q", r.status, r.body)
	}
	if !c.proc.Alive() {
		t.Fatal("caddy died")
	}
	if strings.Contains(c.proc.logs.String(), "panic") {
		t.Errorf("a panic in the log:\n%s", c.proc.logs)
	}
}

// `wcgi_instances 1` bounds long-lived instances over the whole process: the first WCGI
// module serves, a second one answers 503 with one log line naming it, and the first
// keeps serving.
func TestWCGIInstancesBoundTheProcess(t *testing.T) {
	dir := t.TempDir()
	wcgi, err := os.ReadFile(world.wcgi)
	if err != nil {
		t.Fatal(err)
	}
	copyFile(t, world.wcgi, filepath.Join(dir, "one", "index.wasm"))
	if err := os.MkdirAll(filepath.Join(dir, "two"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "two", "index.wasm"), string(withCustomSection(wcgi, "wagi-test-app-wcgi-two")))
	site := "wagi {\n\t\tcache_dir " + appCache() + "\n\t}"
	c := startAppCaddy(t, dir, "\t\twcgi_instances 1", map[string]string{"one": site, "two": site})

	if r := get(t, c.urls["one"]+"/hello1"); r.status != http.StatusOK || string(r.body) != "hello1\n" {
		t.Fatalf("first WCGI module: %d %q", r.status, r.body)
	}
	second := modulePathIn(dir, "two", "index.wasm")
	if r := get(t, c.urls["two"]+"/hello1"); r.status != http.StatusServiceUnavailable {
		t.Fatalf("second WCGI module: %d %q, want 503", r.status, r.body)
	}
	refused := []string{`"module":"` + second + `"`, "WCGI instance slots"}
	if !c.proc.logs.WaitFor(10*time.Second, refused...) {
		t.Fatalf("no log line naming %s", second)
	}
	if n := c.proc.logs.Count(refused...); n != 1 {
		t.Errorf("%d log lines for one refused request, want 1", n)
	}
	if r := get(t, c.urls["one"]+"/hello2"); r.status != http.StatusOK || string(r.body) != "hello2\n" {
		t.Fatalf("first WCGI module afterwards: %d %q", r.status, r.body)
	}
}

// `instance_slots 1`: a slow request on one site holds the process's only slot, so
// requests on other sites wait and get 503 after their max_wait, once: a request that
// first waited for its own handler's slot does not wait a whole max_wait again for the
// engine's.
func TestInstanceSlotsOneWaitPerRequest(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"slow", "other", "narrow"} {
		copyFile(t, world.probe, filepath.Join(dir, name, "index.wasm"))
	}
	const maxWait = 2 * time.Second
	cache := "\t\tcache_dir " + appCache() + "\n"
	c := startAppCaddy(t, dir, "\t\tinstance_slots 1", map[string]string{
		"slow":   "wagi {\n" + cache + "\t\tmax_instances 4\n\t}",
		"other":  "wagi {\n" + cache + "\t\tmax_instances 4\n\t\tmax_wait 2s\n\t}",
		"narrow": "wagi {\n" + cache + "\t\tmax_instances 1\n\t\tmax_wait 2s\n\t}",
	})
	// Loads every module before anything is timed.
	for _, name := range []string{"slow", "other", "narrow"} {
		if r := get(t, c.urls[name]+"/?do=x"); r.status != http.StatusOK {
			t.Fatalf("%s: %d %q", name, r.status, r.body)
		}
	}

	holder := make(chan response, 1)
	go func() { holder <- get(t, c.urls["slow"]+"/?do=announce-sleep&ms=8000&id=holder") }()
	if !c.proc.logs.WaitFor(30*time.Second, "probe sleeping holder") {
		t.Fatal("the slow request did not start")
	}
	// "other" has handler slots to spare and waits only for the process's slot. On
	// "narrow", the first request takes the one handler slot and waits for the process's;
	// the second, sent a little later, waits for the handler slot, gets it when the first
	// gives up, and then may wait only for what is left of its own max_wait.
	type result struct {
		name    string
		status  int
		elapsed time.Duration
	}
	results := make(chan result, 3)
	var wg sync.WaitGroup
	send := func(name string, after time.Duration) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(after) // staggers the send; nothing waits on it for a signal
			started := time.Now()
			r := get(t, c.urls[name]+"/?do=x")
			results <- result{name, r.status, time.Since(started)}
		}()
	}
	send("other", 0)
	send("narrow", 0)
	send("narrow", 500*time.Millisecond)
	wg.Wait()
	close(results)
	for r := range results {
		if r.status != http.StatusServiceUnavailable {
			t.Errorf("%s: %d, want 503 while the only slot is held", r.name, r.status)
		}
		// One wait is max_wait; waiting again at the process's slots made the second
		// request on "narrow" take 2 x max_wait - 500ms.
		if r.elapsed < maxWait*3/4 || r.elapsed > maxWait*7/5 {
			t.Errorf("%s: 503 after %s, want about max_wait (%s)", r.name, r.elapsed, maxWait)
		}
	}
	if r := <-holder; r.status != http.StatusOK {
		t.Errorf("slow request: %d %q", r.status, r.body)
	}
	if !c.proc.logs.WaitFor(10*time.Second, `"kind":"busy"`) {
		t.Error("no log line of kind busy for the refused requests")
	}
	if r := get(t, c.urls["other"]+"/?do=x"); r.status != http.StatusOK {
		t.Errorf("after the slot freed: %d %q", r.status, r.body)
	}
}
