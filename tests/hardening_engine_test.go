package tests

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// What a guest cannot do to the server: control the framing or the connection of its
// response, plant symlinks that lead out of the site, or have the server run native code
// from a cache file it did not write; and an in-place deploy that keeps size and mtime is
// still seen. Each test starts its own Caddy (ownCaddy) on its own directory.

// exitsWithin reports whether Caddy exits within d: after a failed exchange it may be on
// its way down.
func (c *ownCaddy) exitsWithin(d time.Duration) bool {
	select {
	case err := <-c.proc.done:
		c.proc.done <- err
		return true
	case <-time.After(d):
		return false
	}
}

// tryGet is get that reports a failed exchange instead of ending the test, for tests that
// must tell a dead Caddy from a wrong answer.
func tryGet(url string) (response, error) {
	resp, err := client.Get(url)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}, err
}

// rawResponse sends a hand-written GET to base and returns every byte the server sent.
func rawResponse(t *testing.T, base, target string) string {
	t.Helper()
	return rawGET(t, strings.TrimPrefix(base, "http://"), target, "")
}

// rawHead is the status line and header lines of a raw response, as sent.
type rawHead struct {
	status string
	lines  []string // "Name: value", in order
}

func parseRawHead(t *testing.T, raw string) rawHead {
	t.Helper()
	head, _, ok := strings.Cut(raw, "\r\n\r\n")
	if !ok {
		t.Fatalf("no complete response head in %q", raw)
	}
	lines := strings.Split(head, "\r\n")
	return rawHead{status: lines[0], lines: lines[1:]}
}

// values returns the values of every header line named name (any case), as sent.
func (h rawHead) values(name string) []string {
	var vs []string
	for _, l := range h.lines {
		if n, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(n, name) {
			vs = append(vs, strings.TrimSpace(v))
		}
	}
	return vs
}

// rawBody decodes the body of a raw response by the framing the server chose.
func rawBody(t *testing.T, raw string) string {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
	if err != nil {
		t.Fatalf("response does not parse: %v\n%q", err, raw)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("body does not decode: %v\n%q", err, raw)
	}
	return string(b)
}

// expectRefusedHead checks that a guest's response head was refused: the client got one
// 502 and nothing of the guest's head, and one log line names the module, the kind
// malformed_response and why.
func expectRefusedHead(t *testing.T, c *ownCaddy, base, target, module, why string) {
	t.Helper()
	raw := rawResponse(t, base, target)
	if !strings.HasPrefix(raw, "HTTP/1.1 502 ") || strings.Count(raw, "HTTP/1.") != 1 {
		t.Errorf("GET %s: want exactly one response, a 502; got %q", target, raw)
	}
	line := []string{`"guest failed"`, `"module":"` + module + `"`, `"kind":"malformed_response"`, why}
	if !c.proc.logs.WaitFor(10*time.Second, line...) {
		t.Errorf("GET %s: no log line with %q", target, line)
	} else if n := c.proc.logs.Count(line...); n != 1 {
		t.Errorf("GET %s: %d log lines with %q, want 1", target, n, line)
	}
}

// expectNoHopByHop checks a raw 200 response: none of the guest's connection or framing
// headers went out, its own X-Kept did, and the body arrived whole.
func expectNoHopByHop(t *testing.T, raw, wantBody string) {
	t.Helper()
	head := parseRawHead(t, raw)
	if !strings.HasPrefix(head.status, "HTTP/1.1 200 ") {
		t.Fatalf("want 200, got %q", raw)
	}
	for _, name := range []string{"Keep-Alive", "Upgrade", "Proxy-Connection", "Trailer", "X-Hop"} {
		if vs := head.values(name); len(vs) > 0 {
			t.Errorf("guest's %s reached the client: %q", name, vs)
		}
	}
	// Connection: close is the server's answer to the request's own.
	for _, v := range head.values("Connection") {
		if !strings.EqualFold(v, "close") {
			t.Errorf("Connection: %s reached the client", v)
		}
	}
	// The server frames the response: chunked, or one Content-Length, never both.
	te, cl := head.values("Transfer-Encoding"), head.values("Content-Length")
	if len(te)+len(cl) > 1 || (len(te) == 1 && te[0] != "chunked") {
		t.Errorf("framing headers Transfer-Encoding %q, Content-Length %q", te, cl)
	}
	if vs := head.values("X-Kept"); len(vs) != 1 || vs[0] != "yes" {
		t.Errorf("X-Kept = %q, want [yes]", vs)
	}
	if got := rawBody(t, raw); got != wantBody {
		t.Errorf("body %q, want %q", got, wantBody)
	}
}

// Item 5: the guest decides the status and end-to-end headers, never the framing or the
// connection; heads that cannot be made valid are a 502, for CGI and WCGI alike.
func TestGuestCannotControlFraming(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, world.probe, filepath.Join(dir, "cgi", "index.wasm"))
	copyFile(t, world.wcgi, filepath.Join(dir, "wcgi", "index.wasm"))
	c := startOwnCaddy(t, dir, "", map[string]string{"cgi": "\twagi", "wcgi": "\twagi"})
	cgiModule := filepath.Join(dir, "cgi", "index.wasm")
	wcgiModule := filepath.Join(dir, "wcgi", "index.wasm")

	t.Run("CGI interim and switching statuses are refused", func(t *testing.T) {
		for _, code := range []string{"100", "101", "103", "199"} {
			expectRefusedHead(t, c, c.urls["cgi"], "/?do=raw-status-"+code, cgiModule, "status "+code)
		}
	})
	t.Run("CGI conflicting Content-Length is refused", func(t *testing.T) {
		expectRefusedHead(t, c, c.urls["cgi"], "/?do=raw-length-conflict", cgiModule, "conflicting Content-Length")
	})
	t.Run("CGI agreeing Content-Lengths become one", func(t *testing.T) {
		raw := rawResponse(t, c.urls["cgi"], "/?do=raw-length-agree")
		head := parseRawHead(t, raw)
		if cl := head.values("Content-Length"); !strings.HasPrefix(head.status, "HTTP/1.1 200 ") || len(cl) != 1 || cl[0] != "11" {
			t.Errorf("want 200 with one Content-Length: 11, got %q", raw)
		}
		if got := rawBody(t, raw); got != "hello world" {
			t.Errorf("body %q", got)
		}
	})
	t.Run("CGI hop-by-hop and Transfer-Encoding are dropped", func(t *testing.T) {
		expectNoHopByHop(t, rawResponse(t, c.urls["cgi"], "/?do=raw-hop-by-hop"), "intact body, not gzip")
	})

	t.Run("WCGI 101 is refused", func(t *testing.T) {
		expectRefusedHead(t, c, c.urls["wcgi"], "/raw?kind=switch", wcgiModule, "status 101")
	})
	t.Run("WCGI conflicting Content-Length is refused", func(t *testing.T) {
		expectRefusedHead(t, c, c.urls["wcgi"], "/raw?kind=length-conflict", wcgiModule, "conflicting Content-Length")
	})
	t.Run("WCGI Transfer-Encoding it cannot decode is refused", func(t *testing.T) {
		expectRefusedHead(t, c, c.urls["wcgi"], "/raw?kind=te-gzip", wcgiModule, "unsupported Transfer-Encoding")
	})
	t.Run("WCGI hop-by-hop headers are dropped", func(t *testing.T) {
		expectNoHopByHop(t, rawResponse(t, c.urls["wcgi"], "/raw?kind=hop-by-hop"), "intact body")
	})

	if r := get(t, c.urls["cgi"]+"/?do=x"); r.status != 200 || !c.proc.Alive() {
		t.Errorf("after the refused heads: %d %q, caddy alive %v", r.status, r.body, c.proc.Alive())
	}
}

// Item 6: a guest with a writable mount inside the site root cannot plant a symlink that
// file_server follows out of the site; links that point downward still work.
func TestGuestSymlinksStayBelowTheirDirectory(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "links")
	uploads := filepath.Join(root, "uploads")
	// No index.wasm: a missing file under /uploads falls through to file_server's 404.
	copyFile(t, world.probe, filepath.Join(root, "app.wasm"))
	if err := os.MkdirAll(filepath.Join(uploads, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(uploads, "sub", "file.txt"), "downward\n")
	c := startOwnCaddy(t, dir, "", map[string]string{
		"links": "\twagi {\n\t\tmount $DIR/links/uploads /uploads rw\n\t}\n\tfile_server",
	})
	passwd, err := os.ReadFile("/etc/passwd")
	if err != nil || len(passwd) < 16 {
		t.Fatalf("this test needs a readable /etc/passwd: %v", err)
	}
	symlink := func(target, link string) response {
		q := url.Values{"do": {"symlink"}, "target": {target}, "link": {"/uploads/" + link}}
		return get(t, c.urls["links"]+"/app.wasm?"+q.Encode())
	}

	targets := []string{
		"../../../../etc/passwd",
		// Enough levels to reach / from any temporary directory: the link would work.
		strings.Repeat("../", 32) + "etc/passwd",
		"sub/../../../../../../../../../etc/passwd",
		"/etc/passwd",
	}
	for i, target := range targets {
		link := fmt.Sprintf("pw%d", i)
		if r := symlink(target, link); r.status != http.StatusForbidden || !strings.HasPrefix(string(r.body), "error:") {
			t.Errorf("symlink %s -> %s: %d %q, want the guest to get an error", link, target, r.status, r.body)
		}
		if dest, err := os.Readlink(filepath.Join(uploads, link)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a link %s -> %q is on disk (%v)", link, dest, err)
		}
		r := get(t, c.urls["links"]+"/uploads/"+link)
		if bytes.Contains(r.body, passwd[:16]) {
			t.Errorf("GET /uploads/%s served the host's /etc/passwd", link)
		} else if r.status != http.StatusNotFound {
			t.Errorf("GET /uploads/%s: %d %q, want 404", link, r.status, r.body)
		}
	}

	if r := symlink("sub/file.txt", "down"); r.status != 200 || string(r.body) != "linked\n" {
		t.Fatalf("downward symlink: %d %q", r.status, r.body)
	}
	if dest, err := os.Readlink(filepath.Join(uploads, "down")); err != nil || dest != "sub/file.txt" {
		t.Errorf("downward link on disk: %q %v", dest, err)
	}
	if r := get(t, c.urls["links"]+"/uploads/down"); r.status != 200 || string(r.body) != "downward\n" {
		t.Errorf("GET /uploads/down: %d %q", r.status, r.body)
	}
}

// uleb128 encodes n as WebAssembly's unsigned LEB128.
func uleb128(n int) []byte {
	var out []byte
	for {
		b := byte(n & 0x7f)
		n >>= 7
		if n == 0 {
			return append(out, b)
		}
		out = append(out, b|0x80)
	}
}

// withCustomSectionOfSize appends a custom section named name with filler bytes of
// content, of any length (withCustomSection in main_test.go takes under 128 bytes).
func withCustomSectionOfSize(module []byte, name string, filler int) []byte {
	payload := append(uleb128(len(name)), name...)
	payload = append(payload, make([]byte, filler)...)
	out := append([]byte{}, module...)
	out = append(out, 0x00)
	out = append(out, uleb128(len(payload))...)
	return append(out, payload...)
}

// paddedTo returns module grown to exactly size bytes by one custom section.
func paddedTo(t *testing.T, module []byte, size int) []byte {
	t.Helper()
	const name = "pad"
	grow := size - len(module)
	// The section is its id, the LEB128 length of its payload, and the payload.
	for lenBytes := 1; lenBytes <= 5; lenBytes++ {
		payload := grow - 1 - lenBytes
		filler := payload - 1 - len(name)
		if filler >= 0 && len(uleb128(payload)) == lenBytes {
			out := withCustomSectionOfSize(module, name, filler)
			if len(out) != size {
				t.Fatalf("padding to %d made %d bytes", size, len(out))
			}
			return out
		}
	}
	t.Fatalf("cannot pad a %d-byte module to %d bytes", len(module), size)
	return nil
}

// Item 9: a deploy that rewrites the module in place and keeps its size and mtime (as
// `cp -p` or `rsync --inplace -t` do) is still picked up.
func TestInPlaceDeployKeepingSizeAndMtimeIsSeen(t *testing.T) {
	probe, hello := mustRead(t, world.probe), mustRead(t, world.hello)
	// Two modules that behave differently, of exactly the same size.
	size := max(len(probe), len(hello)) + 300
	versions := []struct {
		wasm []byte
		body string
	}{{paddedTo(t, probe, size), "probe /\n"}, {paddedTo(t, hello, size), "index\n"}}

	dir := t.TempDir()
	module := filepath.Join(dir, "deploy", "index.wasm")
	if err := os.MkdirAll(filepath.Dir(module), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(module, versions[0].wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(module)
	if err != nil {
		t.Fatal(err)
	}
	c := startOwnCaddy(t, dir, "", map[string]string{"deploy": "\twagi"})
	if r := get(t, c.urls["deploy"]+"/"); r.status != 200 || string(r.body) != versions[0].body {
		t.Fatalf("first version: %d %q", r.status, r.body)
	}

	f, err := os.OpenFile(module, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(versions[1].wasm); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(module, before.ModTime(), before.ModTime()); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(module)
	if err != nil {
		t.Fatal(err)
	}
	// What this test is about: the same file, size and mtime as before the deploy.
	if !os.SameFile(before, after) || after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) {
		t.Fatalf("the deploy changed more than the contents: %v %d %v", os.SameFile(before, after), after.Size(), after.ModTime())
	}
	if r := get(t, c.urls["deploy"]+"/"); r.status != 200 || string(r.body) != versions[1].body {
		t.Errorf("after the in-place deploy: %d %q, want %q", r.status, r.body, versions[1].body)
	}
}

// cacheFiles lists the precompiled files in a cache directory.
func cacheFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.cwasm"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	return names
}

// newCacheFile is the one file in after but not in before.
func newCacheFile(t *testing.T, before, after []string) string {
	t.Helper()
	var added []string
	for _, a := range after {
		found := false
		for _, b := range before {
			found = found || a == b
		}
		if !found {
			added = append(added, a)
		}
	}
	if len(added) != 1 {
		t.Fatalf("loading one module added %d cache files: %q", len(added), added)
	}
	return filepath.Base(added[0])
}

// copyTree copies the regular files under from to to, keeping modes and mtimes.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, info os.FileInfo, err error) error {
		if err != nil || !info.Mode().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(from, p)
		if err != nil {
			return err
		}
		dest := filepath.Join(to, rel)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dest, b, info.Mode().Perm()); err != nil {
			return err
		}
		return os.Chtimes(dest, info.ModTime(), info.ModTime())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Item 8: a disk cache file runs as native code inside Caddy, so it is used only when
// this server wrote it for this very module and it is unchanged; it is read into memory,
// so a file changed while in use cannot reach running code; unused files are pruned.
func TestDiskCacheIsVerified(t *testing.T) {
	// One cache with A (probe) and B (hello) compiled, copied by every subtest: site
	// "cache" holds a.wasm and b.wasm, its cache is $DIR/cache with the key beside it.
	// Each module gets a baseline file at once and an optimized one from the background;
	// the subtests work on the optimized files (tried first) and drop the baseline ones, so
	// that the file under test is a module's only cached code.
	primed := t.TempDir()
	copyFile(t, world.probe, filepath.Join(primed, "site", "a.wasm"))
	copyFile(t, world.hello, filepath.Join(primed, "site", "b.wasm"))
	site := "\twagi {\n\t\tcache_dir $DIR/cache\n\t}"
	c := startOwnCaddy(t, primed, "", map[string]string{"site": site})
	if r := get(t, c.urls["site"]+"/a.wasm"); r.status != 200 || !strings.HasPrefix(string(r.body), "probe ") {
		t.Fatalf("A: %d %q", r.status, r.body)
	}
	optimizedFile := func(module string, before []string) string {
		t.Helper()
		if !c.proc.logs.WaitFor(tierWait, "optimized tier ready", `"module":"`+filepath.Join(primed, "site", module)+`"`) {
			t.Fatalf("no optimized tier of %s", module)
		}
		return newCacheFile(t, before, tierFiles(t, primed, "optimized"))
	}
	cacheDir := filepath.Join(primed, "cache")
	aFile := optimizedFile("a.wasm", nil)
	if r := get(t, c.urls["site"]+"/b.wasm"); r.status != 200 || string(r.body) != "index\n" {
		t.Fatalf("B: %d %q", r.status, r.body)
	}
	bFile := optimizedFile("b.wasm", []string{filepath.Join(cacheDir, aFile)})
	c.stop()

	// fresh copies the primed site and cache (with its key) into a new directory.
	fresh := func(t *testing.T) (dir, aCache, bCache, aModule string) {
		dir = t.TempDir()
		copyTree(t, primed, dir)
		if err := os.RemoveAll(filepath.Join(dir, "data")); err != nil {
			t.Fatal(err)
		}
		for _, f := range tierFiles(t, dir, "baseline") {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
		return dir, filepath.Join(dir, "cache", aFile), filepath.Join(dir, "cache", bFile),
			filepath.Join(dir, "site", "a.wasm")
	}
	rejected := func(module string) []string {
		return []string{"module ready from compiled", "its disk cache file was not used", `"module":"` + module + `"`}
	}
	// serveA checks that A answers as A.
	serveA := func(t *testing.T, c *ownCaddy) {
		t.Helper()
		r, err := tryGet(c.urls["site"] + "/a.wasm")
		if err != nil {
			t.Fatalf("A: %v (caddy died: %v)", err, c.exitsWithin(5*time.Second))
		}
		if r.status != 200 || !strings.HasPrefix(string(r.body), "probe ") {
			t.Fatalf("A: %d %q, want the probe's answer", r.status, r.body)
		}
	}

	t.Run("another module's code under A's name is not run", func(t *testing.T) {
		dir, aCache, bCache, aModule := fresh(t)
		copyFile(t, bCache, aCache)
		c := startOwnCaddy(t, dir, "", map[string]string{"site": site})
		serveA(t, c)
		if !c.proc.logs.WaitFor(10*time.Second, rejected(aModule)...) {
			t.Error("no log line about the rejected cache file")
		}
	})

	t.Run("changed code is not run", func(t *testing.T) {
		dir, aCache, _, aModule := fresh(t)
		code := mustRead(t, aCache)
		for i := len(code) / 2; i < len(code)/2+4096; i++ {
			code[i] ^= 0xff
		}
		if err := os.WriteFile(aCache, code, 0o644); err != nil {
			t.Fatal(err)
		}
		c := startOwnCaddy(t, dir, "", map[string]string{"site": site})
		serveA(t, c)
		if !c.proc.logs.WaitFor(10*time.Second, rejected(aModule)...) {
			t.Error("no log line about the rejected cache file")
		}
		serveA(t, c)
	})

	t.Run("a cache file truncated while in use", func(t *testing.T) {
		dir, aCache, _, aModule := fresh(t)
		c := startOwnCaddy(t, dir, "", map[string]string{"site": site})
		serveA(t, c)
		fromCache := []string{"module ready from disk cache", `"module":"` + aModule + `"`}
		if !c.proc.logs.WaitFor(10*time.Second, fromCache...) {
			t.Fatal("A was not loaded from the disk cache")
		}
		info, err := os.Stat(aCache)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(aCache, info.Size()/2); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 20; i++ {
			serveA(t, c)
		}
		// A new version of the wasm (same bytes, new mtime) loads through the damaged file.
		later := time.Now().Add(time.Minute)
		if err := os.Chtimes(aModule, later, later); err != nil {
			t.Fatal(err)
		}
		serveA(t, c)
		if !c.proc.logs.WaitFor(10*time.Second, rejected(aModule)...) {
			t.Error("no log line about the rejected cache file")
		}
		serveA(t, c)
	})

	t.Run("unused files are pruned", func(t *testing.T) {
		dir, aCache, bCache, _ := fresh(t)
		longAgo := time.Now().Add(-2 * time.Hour)
		if err := os.Chtimes(bCache, longAgo, longAgo); err != nil {
			t.Fatal(err)
		}
		c := startOwnCaddy(t, dir, "", map[string]string{"site": "\twagi {\n\t\tcache_dir $DIR/cache\n\t\tcache_max_age 1h\n\t}"})
		serveA(t, c)
		// The housekeeper prunes a cache directory on its first sweep after first use.
		if !c.proc.logs.WaitFor(15*time.Second, "pruned 1 unused files from the module cache "+filepath.Join(dir, "cache")) {
			t.Error("no prune within 15s")
		}
		if _, err := os.Stat(bCache); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("B's file unused for 2h is still there (%v)", err)
		}
		if _, err := os.Stat(aCache); err != nil {
			t.Errorf("A's file, just used: %v", err)
		}
	})
}
