package tests

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func modulePath(siteName, file string) string {
	return filepath.Join(world.work, "sites", siteName, file)
}

// expectFailure checks a failed request's status and its log line naming module and kind.
func expectFailure(t *testing.T, url string, status int, module, kind string) {
	t.Helper()
	line := []string{`"guest failed"`, module, `"kind":"` + kind + `"`}
	// Counted from before the request: an earlier failure's line must not stand in for it.
	before := world.proc.logs.Count(line...)
	r := get(t, url)
	if r.status != status {
		t.Errorf("GET %s: %d %q, want %d", url, r.status, r.body, status)
	}
	if !world.proc.logs.WaitForCount(10*time.Second, before+1, line...) {
		t.Errorf("GET %s: no log line naming %s with kind %s", url, module, kind)
	}
}

func TestRunawayLoopTimesOutWhileOthersAreServed(t *testing.T) {
	started := time.Now()
	loop := make(chan response, 1)
	go func() { loop <- get(t, site("limits")+"/?do=loop") }()
	// Served on the other core while the loop spins.
	if r := get(t, site("limits")+"/?do=sleep&ms=1"); r.status != 200 {
		t.Errorf("concurrent request: %d %q", r.status, r.body)
	}
	select {
	case r := <-loop:
		t.Errorf("loop answered %d before the concurrent request finished", r.status)
	default:
	}
	r := <-loop
	elapsed := time.Since(started)
	if r.status != http.StatusGatewayTimeout {
		t.Errorf("runaway loop: %d, want 504", r.status)
	}
	if elapsed > 2*time.Second+500*time.Millisecond {
		t.Errorf("runaway loop answered after %s; limit is 1s + 1s", elapsed)
	}
	if !world.proc.logs.WaitFor(5*time.Second, `"guest failed"`, modulePath("limits", "index.wasm"), `"kind":"timeout"`) {
		t.Error("no timeout log line naming the module")
	}
}

func rss(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", world.proc.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

func TestMemoryBombFailsAndIsReclaimed(t *testing.T) {
	// Warm up so the module's own pages are counted before.
	if r := get(t, site("limits")+"/?do=alloc&mb=1"); r.status != 200 {
		t.Fatalf("small allocation: %d %q", r.status, r.body)
	}
	before := rss(t)
	for i := 0; i < 5; i++ {
		expectFailure(t, site("limits")+"/?do=alloc&mb=512", 500, modulePath("limits", "index.wasm"), "memory_limit")
	}
	after := rss(t)
	if grown := after - before; grown > 64<<20 {
		t.Errorf("Caddy's RSS grew by %d MiB over 5 memory bombs (%d -> %d MiB)", grown>>20, before>>20, after>>20)
	}
	if r := get(t, site("limits")+"/?do=alloc&mb=1"); r.status != 200 {
		t.Errorf("after the bombs: %d %q", r.status, r.body)
	}
}

func TestOversizeBodyIs413(t *testing.T) {
	// Known length: refused unread. Expect: 100-continue lets the client learn that before
	// sending, as real clients do, instead of racing the server's close.
	body := bytes.Repeat([]byte("x"), 2<<20)
	r := do(t, http.MethodPost, site("limits")+"/?do=sha", bytes.NewReader(body), http.Header{"Expect": {"100-continue"}})
	if r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("known length: %d %q", r.status, r.body)
	}
	if !world.proc.logs.WaitFor(5*time.Second, "request body over max_body", modulePath("limits", "index.wasm")) {
		t.Error("no log line naming the module")
	}
	// Chunked: no length up front, counted as it streams and refused past the limit.
	// (io.MultiReader hides the length from net/http.)
	over := bytes.Repeat([]byte("x"), 1<<20+100<<10)
	r = do(t, http.MethodPost, site("limits")+"/?do=sha", io.MultiReader(bytes.NewReader(over)), nil)
	if r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked: %d %q", r.status, r.body)
	}
	// A chunked body under the limit reaches the guest whole.
	small := bytes.Repeat([]byte("y"), 1000)
	r = do(t, http.MethodPost, site("limits")+"/?do=sha", io.MultiReader(bytes.NewReader(small)), nil)
	if r.status != 200 || !strings.HasPrefix(string(r.body), "1000 ") {
		t.Errorf("small chunked body: %d %q", r.status, r.body)
	}
}

func TestFailureStatuses(t *testing.T) {
	expectFailure(t, site("broken")+"/notwasm.wasm", 500, modulePath("broken", "notwasm.wasm"), "bad_module")
	expectFailure(t, site("broken")+"/import.wasm", 500, modulePath("broken", "import.wasm"), "bad_module")
	expectFailure(t, site("broken")+"/?do=panic", 500, modulePath("broken", "index.wasm"), "exit")
	expectFailure(t, site("broken")+"/?do=raw-garbage", 502, modulePath("broken", "index.wasm"), "malformed_response")
	expectFailure(t, site("missing")+"/api/x", 404, modulePath("missing", "nothere.wasm"), "module_not_found")
	// Caddy is still serving everything else.
	if r := get(t, site("broken")+"/?do=env"); r.status != 200 {
		t.Errorf("after failures: %d", r.status)
	}
}

func TestFailureAfterHeadAbortsTheResponse(t *testing.T) {
	resp, err := client.Get(site("broken") + "/?do=big-then-panic")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("head: %d", resp.StatusCode)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil {
		t.Errorf("body of %d bytes ended cleanly; want a truncated transfer", n)
	}
}

func TestClientDisconnectStopsTheGuest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, site("probe")+"/?do=loop", nil)
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("a runaway loop answered")
	}
	// The site's timeout is 30s; the guest must stop long before.
	if !world.proc.logs.WaitFor(5*time.Second, "client went away; guest stopped", modulePath("probe", "index.wasm")) {
		t.Error("guest not stopped within 5s of the client leaving")
	}
}

// The module file is replaced 50 times, alternately by atomic rename and by rewriting it
// in place, while four clients keep requesting it. Every response must come whole from
// one of the two versions, and each new version must take effect.
func TestHotReloadUnderLoad(t *testing.T) {
	versions := []struct {
		wasm []byte
		body string
	}{{mustRead(t, world.hello), "index\n"}, {mustRead(t, world.probe), "probe /\n"}}
	target := modulePath("reload", "index.wasm")
	url := site("reload") + "/"
	// Both versions are compiled (and in the disk cache) before the load starts: this test
	// is about switching versions, not about compile time.
	if r := get(t, site("reload")+"/v2.wasm"); r.status != 200 {
		t.Fatalf("warming v2: %d %q", r.status, r.body)
	}
	if r := get(t, url); r.body == nil || string(r.body) != versions[0].body {
		t.Fatalf("initial version: %d %q", r.status, r.body)
	}

	load := startLoad(url, 4, func(status int, body string) bool {
		return status == 200 && (body == versions[0].body || body == versions[1].body)
	})
	for i := 1; i <= 50; i++ {
		v := versions[i%2]
		if i%2 == 0 {
			tmp := target + ".tmp"
			writeFile(t, tmp, string(v.wasm))
			if err := os.Rename(tmp, target); err != nil {
				t.Fatal(err)
			}
		} else {
			writeFile(t, target, string(v.wasm))
		}
		deadline := time.Now().Add(60 * time.Second)
		for string(get(t, url).body) != v.body {
			if time.Now().After(deadline) {
				t.Fatalf("replacement %d never took effect", i)
			}
		}
	}
	served, failures, first := load.stop()
	if failures > 0 {
		t.Errorf("%d of %d requests failed during reloads; first: %s", failures, served, first)
	}
	t.Logf("%d requests served across 50 replacements", served)
}

// A deploy caught half-way (the file holds the first half of a new module) keeps the
// previous version serving, with a warning; the complete file then takes over.
func TestHalfWrittenModuleKeepsThePreviousVersion(t *testing.T) {
	url := site("halfwritten") + "/"
	if r := get(t, url); string(r.body) != "probe /\n" {
		t.Fatalf("before: %d %q", r.status, r.body)
	}
	target := modulePath("halfwritten", "index.wasm")
	next := mustRead(t, world.hello)
	writeFile(t, target, string(next[:len(next)/2]))
	if r := get(t, url); r.status != 200 || string(r.body) != "probe /\n" {
		t.Errorf("with a half-written file: %d %q, want the previous version", r.status, r.body)
	}
	if !world.proc.logs.WaitFor(5*time.Second, "serving the previous one", target) {
		t.Error("no warning naming the module")
	}
	writeFile(t, target, string(next))
	if r := get(t, url); string(r.body) != "index\n" {
		t.Errorf("after the write completed: %d %q", r.status, r.body)
	}
}

func TestConcurrentFirstRequestsCompileOnce(t *testing.T) {
	var wg sync.WaitGroup
	var bad atomic.Int64
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := get(t, site("single")+"/?do=x"); r.status != 200 {
				bad.Add(1)
			}
		}()
	}
	wg.Wait()
	if bad.Load() > 0 {
		t.Errorf("%d of 50 first requests failed", bad.Load())
	}
	module := modulePath("single", "index.wasm")
	if n := world.proc.logs.Count("module ready", module); n != 1 {
		t.Errorf("module loaded %d times for 50 concurrent first requests, want 1", n)
	}
	if n := world.proc.logs.Count("module ready from compiled", module); n != 1 {
		t.Errorf("module compiled %d times, want 1", n)
	}
}

func TestIdleModuleIsDropped(t *testing.T) {
	module := modulePath("idle", "index.wasm")
	if r := get(t, site("idle")+"/?do=x"); r.status != 200 {
		t.Fatalf("%d %q", r.status, r.body)
	}
	if !world.proc.logs.WaitFor(10*time.Second, "dropped idle module", `"module":"`+module+`"`) {
		t.Fatal("module with keepalive 1s not dropped within 10s")
	}
	// It comes back on the next request (from the disk cache).
	if r := get(t, site("idle")+"/?do=x"); r.status != 200 {
		t.Fatalf("after drop: %d %q", r.status, r.body)
	}
}

// After a restart, the first request loads precompiled code from the disk cache instead
// of compiling again.
func TestRestartLoadsFromDiskCache(t *testing.T) {
	if r := get(t, site("probe")+"/?do=x"); r.status != 200 { // ensures probe is in the cache
		t.Fatalf("%d", r.status)
	}
	dir := t.TempDir()
	copyFile(t, world.probe, filepath.Join(dir, "site", "index.wasm"))
	admin, _ := freePort()
	port, _ := freePort()
	cf := fmt.Sprintf("{\n\tadmin 127.0.0.1:%d\n\tauto_https off\n}\nhttp://127.0.0.1:%d {\n\troot * %s\n\twagi\n}\n",
		admin, port, filepath.Join(dir, "site"))
	// Same data directory as the shared Caddy, as a restarted Caddy would have.
	p, err := startCaddy(world.caddy, dir, cf, fmt.Sprintf("127.0.0.1:%d", admin),
		"XDG_DATA_HOME="+filepath.Join(world.work, "data"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	started := time.Now()
	r := get(t, fmt.Sprintf("http://127.0.0.1:%d/?do=x", port))
	first := time.Since(started)
	if r.status != 200 {
		t.Fatalf("%d %q", r.status, r.body)
	}
	module := filepath.Join(dir, "site", "index.wasm")
	if p.logs.Count("module ready from disk cache", module) != 1 || p.logs.Count("module ready from compiled") != 0 {
		t.Errorf("not loaded from the disk cache:\n%s", p.logs)
	}
	t.Logf("first request after restart: %s", first)
}

func TestMountsAndSymlinkEscape(t *testing.T) {
	r := get(t, site("mounts")+"/?do=write&path=/data/out.txt&text=hello-mount")
	if r.status != 200 {
		t.Fatalf("write to rw mount: %d %q", r.status, r.body)
	}
	if got := string(mustRead(t, filepath.Join(world.work, "sites", "mountdata", "out.txt"))); got != "hello-mount" {
		t.Errorf("host sees %q", got)
	}
	root := filepath.Join(world.work, "sites", "mounts")
	r = get(t, site("mounts")+"/?do=write&path="+root+"/new.txt&text=x")
	if r.status != http.StatusForbidden {
		t.Errorf("write to the read-only root: %d %q", r.status, r.body)
	}
	for _, p := range []string{root + "/escape/passwd", root + "/../probe/hello.txt", "/data/../etc/passwd"} {
		if r := get(t, site("mounts")+"/?do=read&path="+p); r.status != http.StatusForbidden {
			t.Errorf("read %s: %d %q", p, r.status, r.body)
		}
	}
	// Files, not the directory: reading a directory fails whether or not it is reachable.
	cacheDir := filepath.Join(world.work, "data", "caddy", "wagi", "cache")
	files := append([]string{cacheDir + ".key"}, cacheFiles(t, cacheDir)...)
	if len(files) < 2 {
		t.Fatalf("no compiled module in %s to try", cacheDir)
	}
	for _, p := range files {
		if _, err := os.Stat(p); err != nil {
			t.Fatal(err)
		}
		if r := get(t, site("mounts")+"/?do=read&path="+p); r.status != http.StatusForbidden {
			t.Errorf("guest read the cache file %s: %d", p, r.status)
		}
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// `precompile` with a known root loads its modules when the config loads, before any
// request names them.
func TestPrecompileWarmsModulesWithoutRequests(t *testing.T) {
	module := modulePath("warm", filepath.Join("api", "other.wasm"))
	if !world.proc.logs.WaitFor(60*time.Second, "module ready from compiled", module) {
		t.Fatal("module under a precompile root was not loaded in the background")
	}
	if n := world.proc.logs.Count("module ready", module); n != 1 {
		t.Errorf("loaded %d times", n)
	}
	if r := get(t, site("warm")+"/api/other.wasm?do=x"); r.status != 200 {
		t.Fatalf("%d", r.status)
	}
	if n := world.proc.logs.Count("module ready", module); n != 1 {
		t.Errorf("the first request loaded it again (%d loads)", n)
	}
}

func TestBusyHandlerAnswers503AfterMaxWait(t *testing.T) {
	slow := make(chan response, 1)
	go func() { slow <- get(t, site("busy")+"/?do=sleep&ms=3000") }()
	// Once the sleeping request holds the only slot, the next is refused after max_wait;
	// retry until then, bounded by the length of the sleep.
	deadline := time.Now().Add(3 * time.Second)
	got503 := false
	for time.Now().Before(deadline) && !got503 {
		got503 = get(t, site("busy")+"/?do=x").status == http.StatusServiceUnavailable
	}
	if !got503 {
		t.Error("no 503 while the only slot was busy")
	}
	if r := <-slow; r.status != 200 {
		t.Errorf("slow request: %d", r.status)
	}
	if r := get(t, site("busy")+"/?do=x"); r.status != 200 {
		t.Errorf("after the slot freed: %d", r.status)
	}
}
