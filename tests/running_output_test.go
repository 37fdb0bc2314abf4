package tests

import (
	"bufio"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Output a guest flushed reaches the client while the guest keeps running (within an
// epoch tick, 10 ms), not when it next waits or ends.

// A WCGI guest's stdout is held back until it waits, so that the frames of one answer
// cross to the host together. Here the guest waits again 5 s later, after the bounded
// wait of 4 s has given up.
func TestWCGIOutputOfARunningGuestGoesOut(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, world.wcgi, filepath.Join(dir, "site", "index.wasm"))
	c := startOwnCaddy(t, dir, "", map[string]string{"site": "\twagi {\n\t\ttimeout 20s\n\t}"})

	// The instance runs first, so the bounded wait below covers only the request.
	if r := get(t, c.urls["site"]+"/hello1"); r.status != 200 {
		t.Fatalf("GET /hello1: %d %q", r.status, r.body)
	}
	br := expectLineWhileRunning(t, c.urls["site"], "/flushspin?ms=5000", "first\n", 4*time.Second)
	rest, err := br.ReadString(0)
	if !strings.Contains(rest, "done\n") {
		t.Fatalf("after the spin: %v %q", err, rest)
	}
}

// A component's response goes out from the thread it runs on, when it waits; one that
// computes without waiting (here until its 3 s timeout stops it) has it sent at the
// epoch tick.
func TestComponentOutputOfARunningGuestGoesOut(t *testing.T) {
	base, c := startRustComponent(t)
	expectRustHello(t, base)
	site := c.urls["site"]
	expectLineWhileRunning(t, site, strings.TrimPrefix(base, site)+"/flushspin", "first\n", 2*time.Second)
	if !c.proc.logs.WaitFor(5*time.Second, "guest ran past its time limit") {
		t.Errorf("the spinning guest was not stopped by its timeout")
	}
}

// expectLineWhileRunning sends GET target to the server at url over a raw connection and
// fails unless line arrives within the bounded wait. The reader returned goes on after it,
// with a 30 s deadline.
func expectLineWhileRunning(t *testing.T, url, target, line string, within time.Duration) *bufio.Reader {
	t.Helper()
	addr := strings.TrimPrefix(url, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", target, addr)
	_ = conn.SetReadDeadline(time.Now().Add(within))
	br := bufio.NewReader(conn)
	var seen strings.Builder
	for !strings.Contains(seen.String(), line) {
		got, err := br.ReadString('\n')
		seen.WriteString(got)
		if err != nil {
			t.Fatalf("%q did not arrive while the guest ran: %v\n%s", line, err, seen.String())
		}
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	return br
}
