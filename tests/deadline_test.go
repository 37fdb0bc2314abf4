package tests

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// deadlineCaddy serves the probe with `timeout 1s` and one guest slot, so a request that
// outlives its deadline shows as 503s for everyone else.
var deadlineCaddy struct {
	once sync.Once
	err  error
	proc *caddyProc
	// short: timeout 1s; long: timeout 30s (for a client that leaves).
	short, long string
}

func startDeadlineCaddy(t *testing.T) {
	t.Helper()
	deadlineCaddy.once.Do(func() {
		dir, err := os.MkdirTemp(world.work, "deadline-")
		if err != nil {
			deadlineCaddy.err = err
			return
		}
		ports := make([]int, 3)
		for i := range ports {
			if ports[i], err = freePort(); err != nil {
				deadlineCaddy.err = err
				return
			}
		}
		copyFile(t, world.probe, filepath.Join(dir, "site", "index.wasm"))
		cf := fmt.Sprintf(`{
	admin 127.0.0.1:%[1]d
}
http://127.0.0.1:%[2]d {
	root * %[4]s
	wagi {
		timeout 1s
		max_instances 1
		max_wait 500ms
	}
}
http://127.0.0.1:%[3]d {
	root * %[4]s
	wagi {
		timeout 30s
		max_instances 1
		max_wait 500ms
	}
}
`, ports[0], ports[1], ports[2], filepath.Join(dir, "site"))
		deadlineCaddy.short = fmt.Sprintf("127.0.0.1:%d", ports[1])
		deadlineCaddy.long = fmt.Sprintf("127.0.0.1:%d", ports[2])
		deadlineCaddy.proc, deadlineCaddy.err = startCaddy(world.caddy, dir, cf, fmt.Sprintf("127.0.0.1:%d", ports[0]))
		if deadlineCaddy.err == nil {
			stopAfterTests(deadlineCaddy.proc)
			// Compiles the probe once, outside any measured request.
			get(t, "http://"+deadlineCaddy.short+"/?do=sleep&ms=1")
		}
	})
	if deadlineCaddy.err != nil {
		t.Fatal(deadlineCaddy.err)
	}
}

// servedRightAfter checks that the site's one guest slot is free again: a normal request
// (max_wait 500ms) is served, not answered 503.
func servedRightAfter(t *testing.T, addr string) {
	t.Helper()
	if r := get(t, "http://"+addr+"/?do=sleep&ms=1"); r.status != http.StatusOK {
		t.Errorf("the next request got %d %q: the slot was still held", r.status, r.body)
	}
}

// Bounds below are generous (the limit is 1 s): each case took 6 s, forever, or until the
// client gave up before requests had one deadline.
const deadlineSlack = 4 * time.Second

func TestDeadlineStopsASleepingGuest(t *testing.T) {
	startDeadlineCaddy(t)
	for _, ms := range []string{"6000", "100000000"} {
		started := time.Now()
		r := get(t, "http://"+deadlineCaddy.short+"/?do=sleep&ms="+ms)
		if took := time.Since(started); r.status != http.StatusGatewayTimeout || took > deadlineSlack {
			t.Errorf("sleep %s ms: %d after %s, want 504 after about 1s", ms, r.status, took)
		}
		servedRightAfter(t, deadlineCaddy.short)
	}
}

// trickle sends head to addr, then piece every 200 ms (the client's own pace) until the
// test ends, and returns the status line Caddy answered, when, or why none came.
func trickle(t *testing.T, addr, head, piece string) (string, time.Duration, error) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	io.WriteString(conn, head)
	go func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for range tick.C {
			if _, err := io.WriteString(conn, piece); err != nil {
				return // closed by Caddy or by the test's end
			}
		}
	}()
	started := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	return line, time.Since(started), err
}

func TestDeadlineEndsATricklingUpload(t *testing.T) {
	startDeadlineCaddy(t)
	head := fmt.Sprintf("POST /?do=sha HTTP/1.1\r\nHost: %s\r\nContent-Length: 100\r\n\r\n", deadlineCaddy.short)
	line, took, err := trickle(t, deadlineCaddy.short, head, "x")
	if took > deadlineSlack {
		t.Errorf("trickling upload held its guest for %s", took)
	}
	if err == nil && !strings.Contains(line, " 504 ") {
		t.Errorf("trickling upload answered %q, want 504 or a closed connection", line)
	}
	servedRightAfter(t, deadlineCaddy.short)
}

func TestDeadlineEndsAClientThatStopsReading(t *testing.T) {
	startDeadlineCaddy(t)
	conn, err := net.Dial("tcp", deadlineCaddy.short)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// 100 MiB: far more than the socket buffers hold, so the guest blocks writing.
	fmt.Fprintf(conn, "GET /?do=big&n=%d HTTP/1.1\r\nHost: %s\r\n\r\n", 100<<20, deadlineCaddy.short)
	if _, err := bufio.NewReader(conn).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	// ... and read nothing more. The guest must be stopped at its deadline.
	module := filepath.Join(filepath.Dir(deadlineCaddy.proc.config), "site", "index.wasm")
	if !deadlineCaddy.proc.logs.WaitFor(deadlineSlack, `"guest failed after sending its response head"`, module, `"kind":"timeout"`) {
		t.Errorf("guest writing to a client that stopped reading was not stopped at its deadline")
	}
	servedRightAfter(t, deadlineCaddy.short)
}

func TestClientLeavingFreesTheSlotOfASleepingGuest(t *testing.T) {
	startDeadlineCaddy(t)
	conn, err := net.Dial("tcp", deadlineCaddy.long)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /?do=announce-sleep&ms=20000&id=leaver HTTP/1.1\r\nHost: %s\r\n\r\n", deadlineCaddy.long)
	if !deadlineCaddy.proc.logs.WaitFor(10*time.Second, "probe sleeping leaver") {
		t.Fatal("the guest never started")
	}
	conn.Close()
	if !deadlineCaddy.proc.logs.WaitFor(deadlineSlack, "client went away; guest stopped") {
		t.Error("the guest sleeping for a client that left was not stopped")
	}
	servedRightAfter(t, deadlineCaddy.long)
}

// A chunked upload is read before the guest runs (it needs CONTENT_LENGTH); a client
// trickling it is cut off at the request's deadline too, with 408.
func TestDeadlineEndsATricklingChunkedUpload(t *testing.T) {
	startDeadlineCaddy(t)
	head := fmt.Sprintf("POST /?do=sha HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n\r\n", deadlineCaddy.short)
	// One-byte chunks, never the last one.
	line, took, err := trickle(t, deadlineCaddy.short, head, "1\r\nx\r\n")
	if took > deadlineSlack {
		t.Errorf("trickling chunked upload was read for %s", took)
	}
	if err != nil || !strings.Contains(line, " 408 ") {
		t.Errorf("trickling chunked upload answered %q (%v), want 408", line, err)
	}
	servedRightAfter(t, deadlineCaddy.short)
}
