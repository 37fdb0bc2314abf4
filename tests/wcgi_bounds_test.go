package tests

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// boundsCaddy is a Caddy of its own for the hostile-WCGI-guest tests: each site has its
// own copy of the wcgi guest, so a wedged or flooding instance disturbs nothing else.
var boundsCaddy struct {
	once  sync.Once
	err   error
	proc  *caddyProc
	sites map[string]string
	dir   string
}

// boundsSites: name -> wagi block.
var boundsSites = map[string]string{
	"deny":  "wagi",
	"spin":  "wagi {\n\t\ttimeout 1s\n\t}",
	"flood": "wagi {\n\t\ttimeout 5s\n\t}",
	"noisy": "wagi",
	"park":  "wagi",
	// Shorter than /raw's linger: a request sent on a stream the guest hijacked times out.
	"keep": "wagi {\n\t\ttimeout 1s\n\t}",
}

func startBoundsCaddy(t *testing.T) {
	t.Helper()
	boundsCaddy.once.Do(func() {
		boundsCaddy.dir, boundsCaddy.err = os.MkdirTemp(world.work, "bounds-")
		if boundsCaddy.err != nil {
			return
		}
		admin, err := freePort()
		if err != nil {
			boundsCaddy.err = err
			return
		}
		boundsCaddy.sites = map[string]string{}
		var cf strings.Builder
		fmt.Fprintf(&cf, "{\n\tadmin 127.0.0.1:%d\n}\n", admin)
		for name, block := range boundsSites {
			port, err := freePort()
			if err != nil {
				boundsCaddy.err = err
				return
			}
			root := filepath.Join(boundsCaddy.dir, name)
			copyFile(t, world.wcgi, filepath.Join(root, "index.wasm"))
			boundsCaddy.sites[name] = fmt.Sprintf("127.0.0.1:%d", port)
			fmt.Fprintf(&cf, "\nhttp://127.0.0.1:%d {\n\troot * %s\n\t%s\n}\n", port, root, block)
		}
		boundsCaddy.proc, boundsCaddy.err = startCaddy(world.caddy, boundsCaddy.dir, cf.String(), fmt.Sprintf("127.0.0.1:%d", admin))
		if boundsCaddy.err == nil {
			stopAfterTests(boundsCaddy.proc)
		}
	})
	if boundsCaddy.err != nil {
		t.Fatal(boundsCaddy.err)
	}
}

func boundsURL(name string) string { return "http://" + boundsCaddy.sites[name] }

// caddyRSS is Caddy's resident memory in KiB.
func caddyRSS(t *testing.T, p *caddyProc) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kib, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			if err != nil {
				t.Fatal(err)
			}
			return kib
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// A WCGI guest that answers before reading a large upload: the answer reaches the client
// while the upload is still stalled on the guest's window, long before any time limit.
func TestWCGIAnswerGoesOutWhileUploadIsStalled(t *testing.T) {
	startBoundsCaddy(t)
	conn, err := net.Dial("tcp", boundsCaddy.sites["deny"])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const size = 8 << 20
	fmt.Fprintf(conn, "POST /deny HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n", boundsCaddy.sites["deny"], size)
	go func() {
		// Keeps uploading until Caddy stops reading or closes; errors end it.
		chunk := bytes.Repeat([]byte("u"), 64<<10)
		for sent := 0; sent < size; sent += len(chunk) {
			if _, err := conn.Write(chunk); err != nil {
				return
			}
		}
	}()
	// Well under the site's 30 s default time limit.
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("no answer while the upload was stalled: %v", err)
	}
	if !strings.Contains(status, " 403 ") {
		t.Fatalf("status line %q, want 403", status)
	}
}

// A WCGI guest busy in a loop that never yields wedges its instance; after its request
// times out, the instance is replaced and the site serves again.
func TestWCGIWedgedInstanceIsReplacedAfterATimeout(t *testing.T) {
	startBoundsCaddy(t)
	base := boundsURL("spin")
	if r := get(t, base+"/mode"); r.status != 200 {
		t.Fatalf("before: %d %q", r.status, r.body)
	}
	if r := get(t, base+"/spin"); r.status != 504 {
		t.Fatalf("spin: %d %q, want 504", r.status, r.body)
	}
	module := filepath.Join(boundsCaddy.dir, "spin", "index.wasm")
	if !boundsCaddy.proc.logs.WaitFor(10*time.Second, "stayed busy after a request timed out", module) {
		t.Fatalf("wedged instance not noticed:\n%s", boundsCaddy.proc.logs)
	}
	if r := get(t, base+"/hello1"); r.status != 200 || string(r.body) != "hello1\n" {
		t.Fatalf("after the wedge: %d %q", r.status, r.body)
	}
}

// A guest flooding yamux pings while never reading its stdin makes the host buffer a
// bounded amount, is stopped, and its site keeps serving on a new instance.
func TestWCGIPingFloodIsBoundedAndStopped(t *testing.T) {
	startBoundsCaddy(t)
	base := boundsURL("flood")
	if r := get(t, base+"/mode"); r.status != 200 {
		t.Fatalf("before: %d %q", r.status, r.body)
	}
	before := caddyRSS(t, boundsCaddy.proc)
	module := filepath.Join(boundsCaddy.dir, "flood", "index.wasm")
	done := make(chan response, 1)
	go func() { done <- get(t, base+"/pingflood") }()
	if !boundsCaddy.proc.logs.WaitFor(20*time.Second, "WCGI instance ended", `"module":"`+module+`"`, "bytes to stdout that its host had not read") {
		t.Fatalf("flooding instance not stopped:\n%s", boundsCaddy.proc.logs)
	}
	<-done
	// Host-side buffers are 1 MiB (stdin) + 8 MiB (stdout) per instance; the rest is
	// allocator slack. Unbounded, this flood grew Caddy by gigabytes.
	if grew := caddyRSS(t, boundsCaddy.proc) - before; grew > 128<<10 {
		t.Errorf("Caddy grew by %d MiB during the flood", grew>>10)
	}
	if r := get(t, base+"/hello2"); r.status != 200 || string(r.body) != "hello2\n" {
		t.Fatalf("after the flood: %d %q", r.status, r.body)
	}
}

// A WCGI instance logs at most 64 KiB of stderr per second, and says when it drops more.
func TestWCGIStderrIsCapped(t *testing.T) {
	startBoundsCaddy(t)
	module := filepath.Join(boundsCaddy.dir, "noisy", "index.wasm")
	started := time.Now()
	if r := get(t, boundsURL("noisy")+"/noisy?n="+strconv.Itoa(4<<20)); r.status != 200 {
		t.Fatalf("noisy: %d %q", r.status, r.body)
	}
	if !boundsCaddy.proc.logs.WaitFor(10*time.Second, "guest stderr over 65536 bytes per second") {
		t.Fatal("no line saying stderr was dropped")
	}
	seconds := int(time.Since(started)/time.Second) + 1
	logged := 0
	for _, line := range strings.Split(boundsCaddy.proc.logs.String(), "\n") {
		if !containsAll(line, []string{`"msg":"guest stderr"`, `"module":"` + module + `"`}) {
			continue
		}
		if _, text, ok := strings.Cut(line, `"line":"`); ok {
			logged += strings.Count(text, "x")
		}
	}
	if logged == 0 || logged > seconds*(64<<10) {
		t.Errorf("logged %d bytes of stderr in about %d s; cap is 64 KiB/s", logged, seconds)
	}
}

// Requests waiting for a long-lived instance's answer are goroutines in Caddy, not OS
// threads blocked in the engine: a hundred of them parked in the guest leave Caddy's
// thread count about where it was (it grew by one thread per request before).
func TestWCGIWaitingRequestsHoldNoThreads(t *testing.T) {
	startBoundsCaddy(t)
	base := boundsURL("park")
	module := filepath.Join(boundsCaddy.dir, "park", "index.wasm")
	pid := boundsCaddy.proc.cmd.Process.Pid
	get(t, base+"/hello1") // the instance runs
	before := procField(t, pid, "status", "Threads:")

	const n = 100
	type result struct {
		status int
		body   string
		err    error
	}
	results := make(chan result, n)
	for i := range n {
		go func() {
			resp, err := client.Get(fmt.Sprintf("%s/wait?key=park%d", base, i))
			if err != nil {
				results <- result{err: err}
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			results <- result{status: resp.StatusCode, body: string(body), err: err}
		}()
	}
	inflight := func() int {
		total := 0
		for _, i := range procModules(t, boundsCaddy.proc)[module].Instances {
			total += i.Inflight
		}
		return total
	}
	if !pollUntil(20*time.Second, func() bool { return inflight() == n }) {
		t.Fatalf("%d of %d requests reached the instance", inflight(), n)
	}
	during := procField(t, pid, "status", "Threads:")

	for i := range n {
		// /signal succeeds once its /wait is parked in the guest (bounded retries).
		ok := pollUntil(10*time.Second, func() bool {
			return get(t, fmt.Sprintf("%s/signal?key=park%d&value=v%d", base, i, i)).status == http.StatusOK
		})
		if !ok {
			t.Fatalf("could not signal /wait %d", i)
		}
	}
	for range n {
		r := <-results
		if r.err != nil || r.status != http.StatusOK || !strings.HasPrefix(r.body, "got v") {
			t.Errorf("waiting request: %d %q %v", r.status, r.body, r.err)
		}
	}
	if grew := during - before; grew > n/4 {
		t.Errorf("Caddy's threads grew from %d to %d with %d requests waiting on a WCGI instance", before, during, n)
	}
	t.Logf("threads: %d before, %d with %d requests waiting", before, during, n)
}

// Requests reach a WCGI guest on streams kept from earlier requests (HTTP/1.1 keep-alive,
// as reverse_proxy keeps its backend connections), and never on one whose exchange did not
// end cleanly: what a guest writes after its response is no other request's answer.
func TestWCGIStreamsAreKeptOnlyAfterCleanExchanges(t *testing.T) {
	startBoundsCaddy(t)
	base := boundsURL("keep")
	expect := func(path, want string) {
		t.Helper()
		if r := get(t, base+path); r.status != http.StatusOK || string(r.body) != want {
			t.Errorf("GET %s = %d %q, want %q", path, r.status, r.body, want)
		}
	}
	conn := func() string {
		t.Helper()
		r := get(t, base+"/conn")
		if r.status != http.StatusOK {
			t.Fatalf("GET /conn = %d %q", r.status, r.body)
		}
		return string(r.body)
	}
	first := conn()
	if again := conn(); again != first {
		t.Errorf("the next request came on a new stream (%q, then %q): streams are not kept", first, again)
	}
	// The guest asks to close the stream it answered on: it is not used again.
	expect("/close", "closing\n")
	if after := conn(); after == first {
		t.Errorf("a request came on the stream the guest closed (%q)", after)
	}
	for range 5 {
		// A second, unasked-for response after the first, on a stream the guest keeps open
		// (for longer than the site's timeout: a request sent on it would time out).
		expect("/raw?kind=extra&linger=1", "ok\n")
		expect("/hello1", "hello1\n")
		// A stream the guest closes after a whole response, without saying so.
		expect("/raw?kind=hop-by-hop", "intact body")
		expect("/hello1", "hello1\n")
	}
}
