package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A wasi:http component written in Rust (tests/guests/httprust, built by
// scripts/build-rust-component.sh with rustup's wasm32-wasip2 target or Debian's Rust;
// test.sh builds it in set-up and passes WAGI_RUST_COMPONENT). Its routes are the JS
// guest's, picked by the last path segment, plus `file` (wasi:filesystem) and `trap`.

// rustComponentSite: a short timeout, a memory cap well above what the guest needs, the
// site's env, and $DIR/data mounted at /data.
const rustComponentSite = "\twagi {\n\t\tcache_dir $DIR/cache\n\t\ttimeout 3s\n\t\tmemory 32MiB\n" +
	"\t\tenv GREETING hello-from-site\n\t\tenv VISITOR {http.request.uri.query.who}\n" +
	"\t\tmount $DIR/data /data\n\t}"

// startRustComponent starts a Caddy serving the Rust component as <site>/r.wasm (and the
// same site without the mount as <nomount>/r.wasm), with a file in the mount and one
// beside it, outside.
func startRustComponent(t *testing.T) (base string, c *ownCaddy) {
	t.Helper()
	wasm := rustComponent.wasm(t)
	dir := t.TempDir()
	copyFile(t, wasm, filepath.Join(dir, "site", "r.wasm"))
	copyFile(t, wasm, filepath.Join(dir, "nomount", "r.wasm"))
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "data", "greeting.txt"), "hi from the mount\n")
	writeFile(t, filepath.Join(dir, "secret.txt"), "outside the mount\n")
	c = startOwnCaddy(t, dir, "", map[string]string{
		"site":    rustComponentSite,
		"nomount": strings.Replace(rustComponentSite, "\t\tmount $DIR/data /data\n", "", 1),
	})
	return c.urls["site"] + "/r.wasm", c
}

func expectRustHello(t *testing.T, base string) {
	t.Helper()
	expectHello(t, base, "hello from rust\n")
}

func TestRustComponentServesRequests(t *testing.T) {
	base, c := startRustComponent(t)
	expectRustHello(t, base)

	t.Run("request", func(t *testing.T) {
		expectRequestFacts(t, base, "method=PUT\n", "path=/r.wasm/request\n", "query=a=1&b=%20x\n", "scheme=http\n",
			"authority="+strings.TrimPrefix(c.urls["site"], "http://")+"\n", "header x-single=s\n",
			"header x-rep=one\nheader x-rep=two\n")
	})

	t.Run("env", func(t *testing.T) { expectSiteEnv(t, base) })

	t.Run("status and repeated headers", func(t *testing.T) { expectStatuses(t, base) })

	t.Run("4 MiB each way", func(t *testing.T) { expectFourMiBEachWay(t, base) })

	t.Run("echo streams", func(t *testing.T) { expectEchoStreams(t, base+"/echo") })

	t.Run("mount through wasi:filesystem", func(t *testing.T) {
		r := get(t, base+"/file?name=/data/greeting.txt")
		if r.status != 200 || string(r.body) != "hi from the mount\n" {
			t.Errorf("file in the mount: %d %q", r.status, r.body)
		}
		// The same site without the mount: the guest finds no such directory.
		r = get(t, c.urls["nomount"]+"/r.wasm/file?name=/data/greeting.txt")
		if r.status != 404 {
			t.Errorf("file in a mount the site does not have: %d %q", r.status, r.body)
		}
		// Outside the mount: `..` is refused by WASI under the mount's handle, and the
		// host path of the file beside it is no directory the guest was given.
		r = get(t, base+"/file?name=/data/../secret.txt")
		if r.status != 403 || strings.Contains(string(r.body), "outside") {
			t.Errorf("/data/../secret.txt: %d %q, want 403", r.status, r.body)
		}
		r = get(t, base+"/file?name="+filepath.Join(c.dir, "secret.txt"))
		if r.status != 404 || strings.Contains(string(r.body), "outside") {
			t.Errorf("the host path beside the mount: %d %q, want 404", r.status, r.body)
		}
	})

	t.Run("failures", func(t *testing.T) {
		module := `"module":"` + filepath.Join(c.dir, "site", "r.wasm") + `"`
		for _, f := range []struct {
			route  string
			status int
			log    []string
		}{
			{"trap", 500, []string{`"kind":"trap"`, "unreachable"}},
			{"spin", 504, []string{"guest ran past its time limit"}},
			{"sleep", 504, []string{"guest ran past its time limit"}},
			{"grow", 500, []string{"guest hit its memory limit"}},
		} {
			start := time.Now()
			r := get(t, base+"/"+f.route)
			if r.status != f.status {
				t.Errorf("%s: status %d, want %d: %q", f.route, r.status, f.status, r.body)
			}
			if f.status == 504 && time.Since(start) > 3*time.Second+2*time.Second {
				t.Errorf("%s answered after %v, timeout is 3s", f.route, time.Since(start))
			}
			if !c.proc.logs.WaitFor(5*time.Second, append(f.log, module)...) {
				t.Errorf("%s: no log line %q naming the module", f.route, f.log)
			}
			expectRustHello(t, base)
		}
		// The panic's message went to the guest's stderr, which is logged.
		if !c.proc.logs.WaitFor(5*time.Second, "guest stderr", "the guest failed on purpose", module) {
			t.Errorf("the panic message is not in the log")
		}
	})
}

// A replaced component serves on the next request, whatever replaces it.
func TestRustComponentHotReload(t *testing.T) {
	base, c := startRustComponent(t)
	site := filepath.Join(c.dir, "site", "r.wasm")
	expectRustHello(t, base)
	copyFile(t, world.probe, site)
	if r := get(t, base); r.status != 200 || !strings.HasPrefix(string(r.body), "probe ") {
		t.Fatalf("after replacing the component with the probe: %d %q", r.status, r.body)
	}
	copyFile(t, rustComponent.wasm(t), site)
	expectRustHello(t, base)
}
