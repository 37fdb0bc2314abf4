package tests

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// Checks that hold for every test component (JavaScript, Rust, Python): their routes are
// the same, picked by the last path segment of base+"/<route>".

// expectHello checks that /hello answers want, as text/plain.
func expectHello(t *testing.T, base, want string) {
	t.Helper()
	r := get(t, base+"/hello")
	if r.status != 200 || string(r.body) != want {
		t.Fatalf("GET %s/hello: %d %q", base, r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "text/plain" {
		t.Errorf("GET %s/hello: Content-Type %q, want text/plain", base, ct)
	}
}

// expectRequestFacts sends a PUT with a query, a body and a repeated header to /request
// and checks that each of want is in what the guest says it saw.
func expectRequestFacts(t *testing.T, base string, want ...string) {
	t.Helper()
	hdr := http.Header{"X-Rep": {"one", "two"}, "X-Single": {"s"}}
	r := do(t, http.MethodPut, base+"/request?a=1&b=%20x", strings.NewReader("body"), hdr)
	if r.status != 200 {
		t.Fatalf("status %d: %q", r.status, r.body)
	}
	for _, w := range want {
		if !strings.Contains(string(r.body), w) {
			t.Errorf("guest did not see %q:\n%s", w, r.body)
		}
	}
}

// expectSiteEnv checks that the site's env (componentSite's, with a request placeholder
// evaluated for this request) reaches the component through wasi:cli/environment, and
// nothing of the host's environment does.
func expectSiteEnv(t *testing.T, base string) {
	t.Helper()
	r := get(t, base+"/env?who=ann")
	if r.status != 200 || string(r.body) != "GREETING=hello-from-site\nVISITOR=ann\n" {
		t.Errorf("GET env: %d %q", r.status, r.body)
	}
}

// expectStatuses checks /status?code= for a few codes, with the guest's repeated
// Set-Cookie and its other header.
func expectStatuses(t *testing.T, base string) {
	t.Helper()
	for _, code := range []int{201, 404, 503} {
		r := get(t, base+"/status?code="+strconv.Itoa(code))
		if r.status != code || string(r.body) != "status\n" {
			t.Errorf("status %d %q, want %d", r.status, r.body, code)
		}
		if got := r.header.Values("Set-Cookie"); len(got) != 2 || got[0] != "a=1" || got[1] != "b=2" {
			t.Errorf("Set-Cookie %q, want [a=1 b=2]", got)
		}
		if r.header.Get("X-Guest") != "status" {
			t.Errorf("X-Guest %q", r.header.Get("X-Guest"))
		}
	}
}

// expectFourMiBEachWay checks a 4 MiB generated answer (/big) and a 4 MiB body echoed
// back (/echo).
func expectFourMiBEachWay(t *testing.T, base string) {
	t.Helper()
	const size = 4 << 20
	r := get(t, base+"/big?n="+strconv.Itoa(size))
	if r.status != 200 || len(r.body) != size || bytes.Count(r.body, []byte("x")) != size {
		t.Fatalf("GET big: %d, %d bytes", r.status, len(r.body))
	}
	payload := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	r = do(t, http.MethodPost, base+"/echo", bytes.NewReader(payload), nil)
	if r.status != 200 || !bytes.Equal(r.body, payload) {
		t.Fatalf("POST echo: %d, %d bytes back of %d", r.status, len(r.body), size)
	}
}
