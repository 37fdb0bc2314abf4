package tests

// The request path under hostile input (issue 9): request bodies a guest leaves unread,
// large chunked uploads, paths that are not UTF-8, symlinks leading out of the site root,
// module bytes reachable through file_server, and modules that do not exist. One Caddy of
// its own serves all of it; raw sockets are used where a client library would normalise
// the request or hide what happens on the connection.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// hardening is the Caddy the tests in this file share.
type hardening struct {
	proc *caddyProc
	dir  string            // parent of the sites and of `outside`
	tmp  string            // Caddy's TMPDIR, where request bodies are spooled
	url  map[string]string // site name -> base URL
	addr map[string]string // site name -> host:port
}

// The secret outside every site root; no response may carry it.
const outsideSecret = "outside secret 5150\n"

func TestRequestHardening(t *testing.T) {
	hs := startHardening(t)
	defer hs.proc.Stop()
	defer func() {
		if t.Failed() {
			t.Logf("--- hardening caddy log ---\n%s", hs.proc.logs)
		}
	}()
	t.Run("UnreadBodyNeverRunsAsARequest", hs.unreadBodyNeverRunsAsARequest)
	t.Run("UnreadBodyKeepsTheConnectionUsable", hs.unreadBodyKeepsTheConnectionUsable)
	t.Run("StalledUnreadBodyClosesTheConnection", hs.stalledUnreadBodyClosesTheConnection)
	t.Run("EchoStreamsAndKeepsTheConnection", hs.echoStreamsAndKeepsTheConnection)
	t.Run("ChunkedUploadsAreSpooledNotHeld", hs.chunkedUploadsAreSpooledNotHeld)
	t.Run("PathSplitIsASCIIOnOriginalBytes", hs.pathSplitIsASCIIOnOriginalBytes)
	t.Run("SymlinksOutOfTheRootNeitherRunNorServe", hs.symlinksOutOfTheRootNeitherRunNorServe)
	t.Run("ModuleNamedByAbsolutePathIsHidden", hs.moduleNamedByAbsolutePathIsHidden)
	t.Run("MissingModuleIs404", hs.missingModuleIs404)
}

// startHardening lays out the sites and starts their Caddy. It shares the main Caddy's
// cache directory, so the probe is not compiled again.
func startHardening(t *testing.T) *hardening {
	hs := &hardening{dir: t.TempDir(), url: map[string]string{}, addr: map[string]string{}}
	hs.tmp = filepath.Join(hs.dir, "tmp")
	probe := mustRead(t, world.probe)
	files := map[string][]byte{
		"outside/secret.txt":              []byte(outsideSecret),
		"outside/other.wasm":              probe,
		"outside/dir/index.wasm":          probe,
		"plain/probe.wasm":                probe,
		"plain/hello.txt":                 []byte("static hello\n"),
		"plain/uploads/.keep":             nil,
		"plain/up/\u212a\u212a\u212a.png": []byte("not a module\n"),
		"bare/probe.wasm":                 probe,
		"front/index.wasm":                probe,
		"fixed/api.wasm":                  probe,
		"fixed/static.txt":                []byte("static fixed\n"),
	}
	for name, content := range files {
		p := filepath.Join(hs.dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(hs.tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(hs.dir, "outside")
	for link, target := range map[string]string{
		"plain/evil.wasm":  filepath.Join(outside, "other.wasm"),
		"plain/uploads/pw": filepath.Join(outside, "secret.txt"),
		"plain/link":       outside,
		"plain/alias.wasm": "probe.wasm",
		"front/pw":         filepath.Join(outside, "secret.txt"),
		"fixed/alias":      ".",
	} {
		if err := os.Symlink(target, filepath.Join(hs.dir, link)); err != nil {
			t.Fatal(err)
		}
	}

	cache := filepath.Join(world.work, "data", "caddy", "wagi", "cache")
	sites := []struct{ name, body string }{
		{"plain", "wagi {\n\t\tindex off\n\t\tmax_body 64MiB\n\t\tcache_dir $CACHE\n\t}\n\tfile_server"},
		{"bare", "wagi {\n\t\tindex off\n\t\tcache_dir $CACHE\n\t}"},
		{"front", "wagi {\n\t\tcache_dir $CACHE\n\t}\n\tfile_server"},
		{"fixed", "wagi /api/* $DIR/fixed/api.wasm {\n\t\tcache_dir $CACHE\n\t}\n" +
			"\twagi /gone/* ./gone.wasm {\n\t\tcache_dir $CACHE\n\t}\n\tfile_server"},
	}
	admin, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	var cf strings.Builder
	fmt.Fprintf(&cf, "{\n\tadmin 127.0.0.1:%d\n\tauto_https off\n}\n", admin)
	for _, s := range sites {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		hs.addr[s.name] = fmt.Sprintf("127.0.0.1:%d", port)
		hs.url[s.name] = "http://" + hs.addr[s.name]
		body := strings.NewReplacer("$CACHE", cache, "$DIR", hs.dir).Replace(s.body)
		fmt.Fprintf(&cf, "\n%s {\n\troot * %s\n\t%s\n}\n", hs.url[s.name], filepath.Join(hs.dir, s.name), body)
	}
	proc, err := startCaddy(world.caddy, hs.dir, cf.String(), fmt.Sprintf("127.0.0.1:%d", admin), "TMPDIR="+hs.tmp)
	if err != nil {
		t.Fatal(err)
	}
	hs.proc = proc
	// Every test starts with the probe loaded.
	if r := get(t, hs.url["bare"]+"/probe.wasm"); r.status != 200 {
		proc.Stop()
		t.Fatalf("warming the probe: %d %q\n%s", r.status, r.body, proc.logs)
	}
	return hs
}

// rawReply is one response read off a raw connection.
type rawReply struct {
	status int
	close  bool // the response said `Connection: close`
	body   []byte
}

// rawExchange sends payload on a new connection to addr and reads up to max responses,
// or until the connection ends or timeout passes. The payload is written from its own
// goroutine, as a client streaming an upload would, so a server that answers early cannot
// block the test. err says how reading ended (nil once max responses were read).
func rawExchange(t *testing.T, addr string, payload []byte, max int, timeout time.Duration) ([]rawReply, error) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	go func() { _, _ = conn.Write(payload) }()
	return readResponses(bufio.NewReader(conn), max)
}

func readResponses(br *bufio.Reader, max int) ([]rawReply, error) {
	var out []rawReply
	for len(out) < max {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return out, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return out, err
		}
		out = append(out, rawReply{status: resp.StatusCode, close: resp.Close, body: body})
	}
	return out, nil
}

// closedByServer reports whether a read error means the server closed the connection
// (rather than keeping it open until the test's deadline).
func closedByServer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// hiddenRequests is n complete GET requests for path, each exactly 512 bytes long, so
// that wherever a server resumes parsing on a 512-byte boundary of a body made of them,
// it finds one.
func hiddenRequests(path string, n int) []byte {
	head := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ", path)
	one := head + strings.Repeat("p", 512-len(head)-4) + "\r\n\r\n"
	return bytes.Repeat([]byte(one), n)
}

func post(path, host string, body []byte) []byte {
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n", path, host, len(body))
	return append([]byte(head), body...)
}

// A body the guest leaves unread, with requests hidden in it: 320 KiB, more than net/http
// drains. Whether the guest answers without reading, traps before its head or the module
// is missing, the server answers once and closes; nothing hidden runs.
func (hs *hardening) unreadBodyNeverRunsAsARequest(t *testing.T) {
	cases := []struct {
		name, site, path, hidden string
		status                   int
	}{
		{"guest ignores the body", "plain", "/probe.wasm?do=x", "/probe.wasm?do=stderr&msg=SMUGGLED-ignored", 200},
		{"guest traps before its head", "plain", "/probe.wasm?do=panic", "/probe.wasm?do=stderr&msg=SMUGGLED-trap", 500},
		{"module missing", "fixed", "/gone/x", "/api/x?do=stderr&msg=SMUGGLED-missing", 404},
	}
	for _, c := range cases {
		payload := post(c.path, hs.addr[c.site], hiddenRequests(c.hidden, 640))
		resps, err := rawExchange(t, hs.addr[c.site], payload, 1000, 60*time.Second)
		if len(resps) != 1 || resps[0].status != c.status || !closedByServer(err) {
			t.Errorf("%s: %d responses (first status %v), then %v; want one %d, then the connection closed",
				c.name, len(resps), statuses(resps), err, c.status)
		}
	}
	// The log is written in order: once a later request's line is there, a smuggled
	// request's line would be too.
	if r := get(t, hs.url["plain"]+"/probe.wasm?do=stderr&msg=CONTROL-unread"); r.status != 200 {
		t.Fatalf("control request: %d", r.status)
	}
	if !hs.proc.logs.WaitFor(10*time.Second, "probe says CONTROL-unread") {
		t.Fatal("control request not logged")
	}
	if n := hs.proc.logs.Count("SMUGGLED"); n != 0 {
		t.Errorf("%d requests hidden in unread bodies ran", n)
	}
}

func statuses(resps []rawReply) []int {
	var s []int
	for _, r := range resps {
		s = append(s, r.status)
	}
	if len(s) > 5 {
		s = s[:5]
	}
	return s
}

// A body the guest leaves unread, small enough to drain: the client's next request on
// the same connection gets its answer.
func (hs *hardening) unreadBodyKeepsTheConnectionUsable(t *testing.T) {
	addr := hs.addr["plain"]
	for _, c := range []struct {
		path   string
		size   int
		status int
	}{{"/probe.wasm?do=x", 1000, 200}, {"/probe.wasm?do=x", 200 << 10, 200}, {"/probe.wasm?do=panic", 1000, 500}} {
		name := fmt.Sprintf("%s with %d bytes", c.path, c.size)
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		br := bufio.NewReader(conn)
		go func() { _, _ = conn.Write(post(c.path, addr, bytes.Repeat([]byte("z"), c.size))) }()
		first, err := readResponses(br, 1)
		if len(first) != 1 || first[0].status != c.status {
			t.Errorf("%s: first response %v, %v", name, statuses(first), err)
			conn.Close()
			continue
		}
		// The next request goes out only now, as a keep-alive client sends it.
		if _, err := conn.Write([]byte("GET /probe.wasm/second HTTP/1.1\r\nHost: " + addr + "\r\n\r\n")); err != nil {
			t.Errorf("%s: writing the second request: %v", name, err)
		}
		second, err := readResponses(br, 1)
		if len(second) != 1 || second[0].status != 200 || string(second[0].body) != "probe /probe.wasm/second\n" {
			t.Errorf("%s: second request on the connection: %v %q, %v", name, statuses(second), bodyOf(second), err)
		}
		conn.Close()
	}
	if n := hs.proc.logs.Count("Body.Read"); n != 0 {
		t.Errorf("net/http reported %d concurrent body reads", n)
	}
}

func bodyOf(resps []rawReply) string {
	if len(resps) == 0 {
		return ""
	}
	return string(resps[0].body)
}

// A client that stops sending a body the guest left unread is cut off within the drain
// bound, rather than holding the connection until Caddy's idle timeout and then having
// whatever it sends next read as a request.
func (hs *hardening) stalledUnreadBodyClosesTheConnection(t *testing.T) {
	addr := hs.addr["plain"]
	head := fmt.Sprintf("POST /probe.wasm?do=x HTTP/1.1\r\nHost: %s\r\nContent-Length: 1000\r\n\r\n0123456789", addr)
	started := time.Now()
	resps, err := rawExchange(t, addr, []byte(head), 10, 15*time.Second)
	if !closedByServer(err) || time.Since(started) > 10*time.Second {
		t.Errorf("after %d responses the connection ended with %v after %s; want it closed within 10s",
			len(resps), err, time.Since(started).Round(time.Millisecond))
	}
	if !hs.proc.logs.WaitFor(5*time.Second, "client stopped sending", filepath.Join(hs.dir, "plain", "probe.wasm")) {
		t.Error("no log line naming the module")
	}
}

// A guest that answers while it reads (full duplex) still gets the whole body. When its
// head goes out with more than net/http's drain limit (256 KiB) unread, the head asks to
// close the connection; with less, reading the rest keeps the connection for the next
// request.
func (hs *hardening) echoStreamsAndKeepsTheConnection(t *testing.T) {
	addr := hs.addr["plain"]
	for _, size := range []int{1 << 20, 100 << 10} {
		body := make([]byte, size)
		rand.NewChaCha8([32]byte{1}).Read(body)
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
		br := bufio.NewReader(conn)
		go func() { _, _ = conn.Write(post("/probe.wasm?do=echo", addr, body)) }()
		resps, err := readResponses(br, 1)
		if len(resps) != 1 || resps[0].status != 200 || !bytes.Equal(resps[0].body, body) {
			t.Fatalf("echo of %d bytes: %v, %d bytes back, %v", size, statuses(resps), len(bodyOf(resps)), err)
		}
		if resps[0].close != (size > 256<<10) {
			t.Errorf("echo of %d bytes: Connection: close is %v", size, resps[0].close)
		}
		if size > 256<<10 {
			continue
		}
		if _, err := conn.Write([]byte("GET /probe.wasm/second HTTP/1.1\r\nHost: " + addr + "\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		if second, err := readResponses(br, 1); len(second) != 1 || bodyOf(second) != "probe /probe.wasm/second\n" {
			t.Errorf("second request after the echo: %v %q %v", statuses(second), bodyOf(second), err)
		}
	}
}

// Four 24 MiB chunked uploads held open at once: Caddy's memory must not grow with them
// (they wait in unlinked temporary files), each reaches the guest whole, and no
// temporary file outlives its request, also when the client breaks off.
func (hs *hardening) chunkedUploadsAreSpooledNotHeld(t *testing.T) {
	const uploads, size, held = 4, 24 << 20, 64 << 10
	pid := hs.proc.cmd.Process.Pid
	url := hs.url["plain"] + "/probe.wasm?do=sha"
	// A small chunked upload first, so that what is measured is the large ones.
	r := do(t, http.MethodPost, url, io.MultiReader(strings.NewReader("warm")), nil)
	if r.status != 200 || !strings.HasPrefix(string(r.body), "4 ") {
		t.Fatalf("small chunked upload: %d %q", r.status, r.body)
	}
	rssBefore, readBefore := procField(t, pid, "status", "VmRSS:")<<10, procField(t, pid, "io", "rchar:")

	type result struct {
		resp response
		err  error
	}
	results := make(chan result, uploads)
	writers := make([]*io.PipeWriter, uploads)
	data := make([][]byte, uploads)
	var sent sync.WaitGroup
	for i := range uploads {
		data[i] = make([]byte, size)
		rand.NewChaCha8([32]byte{byte(i + 2)}).Read(data[i])
		pr, pw := io.Pipe()
		writers[i] = pw
		go func() {
			req, _ := http.NewRequest(http.MethodPost, url, pr) // no length: chunked
			resp, err := client.Do(req)
			if err != nil {
				results <- result{err: err}
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			results <- result{resp: response{status: resp.StatusCode, body: b}, err: err}
		}()
		sent.Add(1)
		go func() {
			defer sent.Done()
			_, _ = pw.Write(data[i][:size-held])
		}()
	}
	sent.Wait()
	// Caddy has read what was sent once its read counter (every byte it read from any
	// file or socket) has grown by as much: a bounded wait on a number the kernel keeps.
	want := readBefore + uploads*(size-held)
	if !pollUntil(60*time.Second, func() bool { return procField(t, pid, "io", "rchar:") >= want }) {
		t.Fatalf("Caddy did not read the uploads within 60s")
	}
	grown := procField(t, pid, "status", "VmRSS:")<<10 - rssBefore
	inFlight := int64(uploads * (size - held))
	if grown > inFlight/2 {
		t.Errorf("RSS grew by %d MiB with %d MiB of uploads in flight", grown>>20, inFlight>>20)
	}
	if files := spoolFiles(t, pid, hs.tmp); len(files) != uploads {
		t.Errorf("%d spooled bodies open in %s, want %d", len(files), hs.tmp, uploads)
	}
	for i, pw := range writers {
		_, _ = pw.Write(data[i][size-held:])
		pw.Close()
	}
	want2 := map[string]bool{}
	for i := range uploads {
		sum := sha256.Sum256(data[i])
		want2[fmt.Sprintf("%d %s\n", size, hex.EncodeToString(sum[:]))] = true
	}
	for range uploads {
		res := <-results
		if res.err != nil || res.resp.status != 200 || !want2[string(res.resp.body)] {
			t.Errorf("upload: %v %d %q", res.err, res.resp.status, res.resp.body)
		}
	}
	hs.expectNoSpoolFiles(t, pid)

	// A client that breaks off in the middle of a chunked body.
	conn, err := net.Dial("tcp", hs.addr["plain"])
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("c"), 512<<10)
	fmt.Fprintf(conn, "POST /probe.wasm?do=sha HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n", hs.addr["plain"], len(chunk))
	_, _ = conn.Write(append(chunk, "\r\n"...))
	if !pollUntil(30*time.Second, func() bool { return len(spoolFiles(t, pid, hs.tmp)) == 1 }) {
		t.Error("the broken-off upload was never spooled")
	}
	conn.Close()
	hs.expectNoSpoolFiles(t, pid)
}

// expectNoSpoolFiles waits (bounded) until Caddy holds no spooled body open, and checks
// that none is left in its TMPDIR.
func (hs *hardening) expectNoSpoolFiles(t *testing.T, pid int) {
	t.Helper()
	if !pollUntil(10*time.Second, func() bool { return len(spoolFiles(t, pid, hs.tmp)) == 0 }) {
		t.Errorf("spooled bodies still open after their requests: %v", spoolFiles(t, pid, hs.tmp))
	}
	if entries, _ := os.ReadDir(hs.tmp); len(entries) != 0 {
		t.Errorf("left in TMPDIR: %v", entries)
	}
}

// procField reads a number from /proc/<pid>/<file>: the first field after key.
func procField(t *testing.T, pid int, file, key string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == key {
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/%s", key, pid, file)
	return 0
}

// spoolFiles lists the files under dir that the process holds open.
func spoolFiles(t *testing.T, pid int, dir string) []string {
	t.Helper()
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(fdDir)
	if err != nil {
		t.Fatal(err)
	}
	var open []string
	for _, e := range entries {
		if target, err := os.Readlink(filepath.Join(fdDir, e.Name())); err == nil && strings.HasPrefix(target, dir+"/") {
			open = append(open, target)
		}
	}
	return open
}

// pollUntil checks cond every 20 ms until it holds or timeout passes: for signals only
// the kernel reports (counters in /proc), which cannot be waited on.
func pollUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// Bytes that are not UTF-8 before `.wasm` (Unicode lower-casing makes each three bytes
// long), or KELVIN SIGNs (three bytes, lower-cased to the one-byte `k`) in front of it,
// neither panic the handler nor move the split onto another file.
func (hs *hardening) pathSplitIsASCIIOnOriginalBytes(t *testing.T) {
	for _, c := range []struct{ site, target string }{
		{"bare", "/%FF%FF.wasm"},
		{"plain", "/%FF%FF.wasm"},
		{"bare", "/%FF%FF.wasm/x"},
		{"plain", "/up/%E2%84%AA%E2%84%AA%E2%84%AA.png/.wasm"},
	} {
		req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", c.target, hs.addr[c.site])
		resps, err := rawExchange(t, hs.addr[c.site], []byte(req), 1, 30*time.Second)
		if len(resps) != 1 || resps[0].status != http.StatusNotFound {
			t.Errorf("%s %s: %v %q, %v; want 404", c.site, c.target, statuses(resps), bodyOf(resps), err)
		}
	}
	if n := hs.proc.logs.Count(`"kind":"bad_module"`); n != 0 {
		t.Errorf("a file without a split extension was loaded as a module (%d times)", n)
	}
}

// Symlinks inside a site root that lead out of it: a module behind one does not run, a
// file behind one is not served (index off, where file_server would get the request) and
// with a front controller the request goes to it, not to file_server.
func (hs *hardening) symlinksOutOfTheRootNeitherRunNorServe(t *testing.T) {
	for _, path := range []string{"/evil.wasm", "/evil.wasm/x", "/uploads/pw", "/link/secret.txt", "/link/other.wasm", "/link/dir/"} {
		r := get(t, hs.url["plain"]+path)
		if r.status != http.StatusNotFound || strings.Contains(string(r.body), "outside secret") || strings.Contains(string(r.body), "probe") {
			t.Errorf("GET %s: %d %q, want 404", path, r.status, r.body)
		}
	}
	if !hs.proc.logs.WaitFor(5*time.Second, "not following a symlink out of the site root", filepath.Join(hs.dir, "plain", "evil.wasm")) {
		t.Error("no log line naming the module")
	}
	if r := get(t, hs.url["front"]+"/pw"); r.status != 200 || string(r.body) != "probe /pw\n" {
		t.Errorf("front controller site, GET /pw: %d %q", r.status, r.body)
	}
	// A symlink that stays inside the root works as its target does.
	if r := get(t, hs.url["plain"]+"/alias.wasm"); r.status != 200 || string(r.body) != "probe /alias.wasm\n" {
		t.Errorf("GET /alias.wasm: %d %q", r.status, r.body)
	}
}

// A module configured by its absolute path inside the root is hidden from the
// file_server that serves the rest of the site, under any name that reaches its file.
func (hs *hardening) moduleNamedByAbsolutePathIsHidden(t *testing.T) {
	addr := hs.addr["fixed"]
	for _, target := range []string{"/api.wasm", "//api.wasm", "/./api.wasm", "/alias/api.wasm", "/alias/alias/api.wasm",
		"/%61pi.wasm", "/api.wasm/", "/API.WASM", "/sub/../api.wasm"} {
		req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", target, addr)
		resps, err := rawExchange(t, addr, []byte(req), 1, 30*time.Second)
		if len(resps) != 1 || bytes.HasPrefix(resps[0].body, []byte("\x00asm")) {
			t.Errorf("GET %s: %v, %v, %d bytes: module bytes served or no answer", target, statuses(resps), err, len(bodyOf(resps)))
		}
	}
	if r := get(t, hs.url["fixed"]+"/api.wasm"); r.status != http.StatusNotFound {
		t.Errorf("GET /api.wasm: %d, want 404", r.status)
	}
	if r := get(t, hs.url["fixed"]+"/api/x"); r.status != 200 || string(r.body) != "probe /api/x\n" {
		t.Errorf("the module itself: %d %q", r.status, r.body)
	}
	if r := get(t, hs.url["fixed"]+"/static.txt"); string(r.body) != "static fixed\n" {
		t.Errorf("the rest of the site: %d %q", r.status, r.body)
	}
}

// With `index off`, a path naming a module file that does not exist is a 404 with a log
// line, in a site without file_server too; static files still pass on.
func (hs *hardening) missingModuleIs404(t *testing.T) {
	for _, site := range []string{"bare", "plain"} {
		if r := get(t, hs.url[site]+"/missing.wasm"); r.status != http.StatusNotFound {
			t.Errorf("%s: GET /missing.wasm: %d %q, want 404", site, r.status, r.body)
		}
		if !hs.proc.logs.WaitFor(5*time.Second, "module file missing", filepath.Join(hs.dir, site, "missing.wasm")) {
			t.Errorf("%s: no log line naming the missing module", site)
		}
	}
	if r := get(t, hs.url["plain"]+"/hello.txt"); r.status != 200 || string(r.body) != "static hello\n" {
		t.Errorf("static file: %d %q", r.status, r.body)
	}
	if r := get(t, hs.url["bare"]+"/probe.wasm"); r.status != 200 {
		t.Errorf("existing module: %d", r.status)
	}
}
