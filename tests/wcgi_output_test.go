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

// A WCGI guest's stdout is held back until it waits, so that the frames of one answer
// cross to the host together. One that keeps running after flushing must still have its
// output reach the client while it runs (within an epoch tick, 10 ms), not when it next
// waits: here, 5 s later, after a bounded wait of 4 s has given up.
func TestWCGIOutputOfARunningGuestGoesOut(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, world.wcgi, filepath.Join(dir, "site", "index.wasm"))
	c := startOwnCaddy(t, dir, "", map[string]string{"site": "\twagi {\n\t\ttimeout 20s\n\t}"})

	// The instance runs first, so the bounded wait below covers only the request.
	if r := get(t, c.urls["site"]+"/hello1"); r.status != 200 {
		t.Fatalf("GET /hello1: %d %q", r.status, r.body)
	}
	addr := strings.TrimPrefix(c.urls["site"], "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /flushspin?ms=5000 HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", addr)
	_ = conn.SetReadDeadline(time.Now().Add(4 * time.Second))
	br := bufio.NewReader(conn)
	var seen strings.Builder
	for !strings.Contains(seen.String(), "first\n") {
		line, err := br.ReadString('\n')
		seen.WriteString(line)
		if err != nil {
			t.Fatalf("the flushed line did not arrive while the guest ran: %v\n%s", err, seen.String())
		}
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	rest, err := bufio.NewReader(br).ReadString(0)
	if !strings.Contains(rest, "done\n") {
		t.Fatalf("after the spin: %v %q", err, rest)
	}
}
