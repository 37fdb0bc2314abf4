package tests

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// wasi:http components: a `.wasm` that is a wasi:http/proxy component is served by the
// same `wagi` directive as CGI modules. The guest is one JavaScript component
// (tests/guests/httpjs, built with componentize-js from npm by
// scripts/build-js-component.sh, which caches node_modules and the build under target/);
// its routes are picked by the last path segment. The same routes in Rust are tested in
// component_rust_test.go.

// componentSite is the site block of the component tests: a short timeout and a memory
// cap the JS engine fits under, the disk cache in $DIR/cache.
const componentSite = "\twagi {\n\t\tcache_dir $DIR/cache\n\t\ttimeout 3s\n\t\tmemory 256MiB\n" +
	"\t\tenv GREETING hello-from-site\n\t\tenv VISITOR {http.request.uri.query.who}\n\t}"

var componentCaddy struct {
	once sync.Once
	c    *ownCaddy
	base string
}

// sharedComponent is one Caddy serving the component as <site>/c.wasm for the tests that
// do not restart or reload it. It stops with the first test that started it, so tests
// using it must not run in parallel with others (they do not).
func sharedComponent(t *testing.T) (base string, c *ownCaddy) {
	t.Helper()
	wasm := jsComponent.wasm(t)
	dir := t.TempDir()
	copyFile(t, wasm, filepath.Join(dir, "site", "c.wasm"))
	c = startOwnCaddy(t, dir, "", map[string]string{"site": componentSite})
	return c.urls["site"] + "/c.wasm", c
}

func expectComponentHello(t *testing.T, base string) {
	t.Helper()
	expectHello(t, base, "hello from a component\n")
}

// expectEchoStreams checks that an echo route streams: the first 64 KiB come back before
// the rest is sent, so neither side buffers the body whole. (A body of known length: a
// chunked one is spooled by the handler first, as for CGI.)
func expectEchoStreams(t *testing.T, url string) {
	t.Helper()
	pr, pw := io.Pipe()
	defer pw.Close()
	req, err := http.NewRequest(http.MethodPost, url, pr)
	if err != nil {
		t.Fatal(err)
	}
	first := bytes.Repeat([]byte("a"), 64<<10)
	req.ContentLength = int64(len(first) + len("end"))
	go func() { _, _ = pw.Write(first) }()
	type result struct {
		resp *http.Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := client.Do(req)
		done <- result{resp, err}
	}()
	var res result
	select {
	case res = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("no response head while the request body is still open")
	}
	if res.err != nil {
		t.Fatal(res.err)
	}
	defer res.resp.Body.Close()
	got := make([]byte, len(first))
	read := make(chan error, 1)
	go func() { _, err := io.ReadFull(res.resp.Body, got); read <- err }()
	select {
	case err := <-read:
		if err != nil || !bytes.Equal(got, first) {
			t.Fatalf("first chunk back: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the first 64 KiB did not come back before the rest was sent")
	}
	go func() { _, _ = pw.Write([]byte("end")); pw.Close() }()
	rest, err := io.ReadAll(res.resp.Body)
	if err != nil || string(rest) != "end" {
		t.Fatalf("rest %q, %v", rest, err)
	}
}

func TestComponentServesRequests(t *testing.T) {
	base, c := sharedComponent(t)
	expectComponentHello(t, base)

	t.Run("request", func(t *testing.T) {
		host := strings.TrimPrefix(c.urls["site"], "http://")
		expectRequestFacts(t, base, "method=PUT\n", "url=http://"+host+"/c.wasm/request?a=1&b=%20x\n",
			"path=/c.wasm/request\n", "query=?a=1&b=%20x\n", "header x-single=s\n", "header x-rep=one, two\n")
	})

	t.Run("env", func(t *testing.T) { expectSiteEnv(t, base) })

	t.Run("status and repeated headers", func(t *testing.T) { expectStatuses(t, base) })

	t.Run("4 MiB each way", func(t *testing.T) {
		expectFourMiBEachWay(t, base)
		const size = 4 << 20
		r := do(t, http.MethodPost, base+"/count", bytes.NewReader(bytes.Repeat([]byte("y"), size)), nil)
		if r.status != 200 || string(r.body) != "4194304\n" {
			t.Fatalf("POST count: %d %q", r.status, r.body)
		}
	})

	t.Run("echo streams", func(t *testing.T) { expectEchoStreams(t, base+"/echo") })

	t.Run("unread body does not wait for the client", func(t *testing.T) {
		// A guest that answers without reading its body answers at once, even while the
		// client still owes most of that body (timeout is 3s).
		conn, err := net.Dial("tcp", strings.TrimPrefix(c.urls["site"], "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		host := strings.TrimPrefix(c.urls["site"], "http://")
		fmt.Fprintf(conn, "POST /c.wasm/hello HTTP/1.1\r\nHost: %s\r\nContent-Length: 100000\r\n\r\npartial", host)
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no response within 2s while the body is unsent: %v", err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || err != nil || string(body) != "hello from a component\n" {
			t.Fatalf("%d %q %v", resp.StatusCode, body, err)
		}
	})

	t.Run("failures", func(t *testing.T) {
		module := `"module":"` + filepath.Join(c.dir, "site", "c.wasm") + `"`
		for _, f := range []struct {
			route  string
			status int
			log    string
		}{
			{"spin", 504, "guest ran past its time limit"},
			{"sleep", 504, "guest ran past its time limit"},
			{"grow", 500, "guest hit its memory limit"},
			{"fetch", 0, "outgoing wasi:http request to 127.0.0.1:9 refused"},
		} {
			start := time.Now()
			r := get(t, base+"/"+f.route)
			if f.status != 0 && r.status != f.status {
				t.Errorf("%s: status %d, want %d: %q", f.route, r.status, f.status, r.body)
			}
			if f.status == 504 && time.Since(start) > 3*time.Second+2*time.Second {
				t.Errorf("%s answered after %v, timeout is 3s", f.route, time.Since(start))
			}
			if !c.proc.logs.WaitFor(5*time.Second, f.log, module) {
				t.Errorf("%s: no log line %q naming the module", f.route, f.log)
			}
			expectComponentHello(t, base)
		}
	})
}

// A replaced component serves on the next request; a broken new version keeps the last
// good one; the compiled code comes from the disk cache after a restart.
func TestComponentReloadAndCache(t *testing.T) {
	wasm := jsComponent.wasm(t)
	dir := t.TempDir()
	site := filepath.Join(dir, "site")
	copyFile(t, wasm, filepath.Join(site, "c.wasm"))
	c := startOwnCaddy(t, dir, "", map[string]string{"site": componentSite})
	base := c.urls["site"] + "/c.wasm"
	expectComponentHello(t, base)
	module := `"module":"` + filepath.Join(site, "c.wasm") + `"`
	if !c.proc.logs.WaitFor(5*time.Second, "module ready from compiled", module) {
		t.Fatalf("no load line:\n%s", c.proc.logs)
	}

	// A core module put in its place is served as CGI at once.
	copyFile(t, world.probe, filepath.Join(site, "c.wasm"))
	if r := get(t, base); r.status != 200 || !strings.HasPrefix(string(r.body), "probe ") {
		t.Fatalf("after replacing the component with the probe: %d %q", r.status, r.body)
	}
	// And the component again; then a broken file keeps it.
	copyFile(t, wasm, filepath.Join(site, "c.wasm"))
	expectComponentHello(t, base)
	writeFile(t, filepath.Join(site, "c.wasm"), "\x00asm\x0d\x00\x01\x00garbage")
	expectComponentHello(t, base)
	if !c.proc.logs.WaitFor(5*time.Second, "serving the previous one", module) {
		t.Errorf("no warning about the broken version:\n%s", c.proc.logs)
	}
	copyFile(t, wasm, filepath.Join(site, "c.wasm"))
	expectComponentHello(t, base)
	c.stop()

	c = startOwnCaddy(t, dir, "", map[string]string{"site": componentSite})
	expectComponentHello(t, c.urls["site"]+"/c.wasm")
	if !c.proc.logs.WaitFor(5*time.Second, "module ready from disk cache", module) {
		t.Errorf("not loaded from the disk cache after a restart:\n%s", c.proc.logs)
	}
	if m, ok := listModules(t, c)[filepath.Join(site, "c.wasm")]; !ok || m.Mode != "http" {
		t.Errorf("admin listing: %+v (listed %v), want mode http", m, ok)
	}
}

// `mode http` serves components and refuses core modules with a clear 500; a component
// that is not a wasi:http/proxy fails to load with a 500 and a log line; `precompile`
// loads components too.
func TestComponentModeHTTP(t *testing.T) {
	wasm := jsComponent.wasm(t)
	dir := t.TempDir()
	copyFile(t, wasm, filepath.Join(dir, "site", "c.wasm"))
	copyFile(t, world.probe, filepath.Join(dir, "site", "p.wasm"))
	writeFile(t, filepath.Join(dir, "site", "e.wasm"), "\x00asm\x0d\x00\x01\x00")
	c := startOwnCaddy(t, dir, "", map[string]string{"site": "\twagi {\n\t\troot $DIR/site\n\t\tmode http\n\t\tcache_dir off\n\t\tprecompile\n\t}"})
	// precompile loads the component before any request.
	if !c.proc.logs.WaitFor(60*time.Second, "module ready from compiled", filepath.Join(dir, "site", "c.wasm")) {
		t.Fatalf("the component was not precompiled:\n%s", c.proc.logs)
	}
	expectComponentHello(t, c.urls["site"]+"/c.wasm")
	if r := get(t, c.urls["site"]+"/p.wasm"); r.status != 500 {
		t.Errorf("core module under mode http: %d %q", r.status, r.body)
	}
	if !c.proc.logs.WaitFor(5*time.Second, "mode http needs a wasi:http component", "p.wasm") {
		t.Errorf("no log line for the core module under mode http:\n%s", c.proc.logs)
	}
	if r := get(t, c.urls["site"]+"/e.wasm"); r.status != 500 {
		t.Errorf("empty component: %d %q", r.status, r.body)
	}
	if !c.proc.logs.WaitFor(5*time.Second, "not a wasi:http/proxy", "e.wasm") {
		t.Errorf("no log line for the component that is not a proxy:\n%s", c.proc.logs)
	}
}

// Outgoing wasi:http requests go where the site's network rules allow, and nowhere else.
func TestComponentOutgoingRequests(t *testing.T) {
	wasm := jsComponent.wasm(t)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hi from %s", r.URL.Path)
	}))
	defer upstream.Close()
	port := strings.TrimPrefix(upstream.URL, "http://127.0.0.1:")
	dir := t.TempDir()
	copyFile(t, wasm, filepath.Join(dir, "site", "c.wasm"))
	c := startOwnCaddy(t, dir, "", map[string]string{
		"site": "\twagi {\n\t\tcache_dir off\n\t\tnetwork {\n\t\t\tallow 127.0.0.1:" + port + "\n\t\t}\n\t}"})
	base := c.urls["site"] + "/c.wasm"
	r := get(t, base+"/fetch?url="+upstream.URL+"/there")
	if r.status != 200 || string(r.body) != "upstream 200: hi from /there" {
		t.Fatalf("allowed fetch: %d %q", r.status, r.body)
	}
	// Another port of the same address is not allowed: refused before any connection.
	if r := get(t, base+"/fetch?url=http://127.0.0.1:9/"); r.status == 200 {
		t.Errorf("fetch of a port the rules do not allow: %d %q", r.status, r.body)
	}
	if !c.proc.logs.WaitFor(5*time.Second, "outgoing wasi:http request to 127.0.0.1:9 refused: not allowed by the site's network rules") {
		t.Errorf("no log line for the refused request:\n%s", c.proc.logs)
	}
	expectComponentHello(t, base)
}
