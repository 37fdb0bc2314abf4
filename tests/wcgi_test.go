package tests

import (
	"bytes"
	"crypto/rand"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// instanceOf asks a WCGI guest which mode it runs in and which instance answered.
func instanceOf(t *testing.T, base string) (mode, id string) {
	t.Helper()
	r := get(t, base+"/mode")
	if r.status != 200 {
		t.Fatalf("GET /mode: %d %q", r.status, r.body)
	}
	mode, id, _ = strings.Cut(strings.TrimSpace(string(r.body)), " ")
	return mode, id
}

func TestWCGISeedRoutesOnLongLivedInstances(t *testing.T) {
	for path, want := range map[string]string{"/": "index\n", "/hello1": "hello1\n", "/hello2": "hello2\n"} {
		if r := get(t, site("wcgi")+path); r.status != 200 || string(r.body) != want {
			t.Errorf("GET %s = %d %q, want %q", path, r.status, r.body, want)
		}
	}
	ids := map[string]bool{}
	for i := 0; i < 10; i++ {
		mode, id := instanceOf(t, site("wcgi"))
		if mode != "wcgi" {
			t.Fatalf("mode %q, want wcgi", mode)
		}
		ids[id] = true
	}
	// `instances 2`: requests are spread over two long-lived instances.
	if len(ids) != 2 {
		t.Errorf("10 requests saw %d instances, want 2", len(ids))
	}
}

func TestWCGIModeCgiForcesCGI(t *testing.T) {
	if mode, _ := instanceOf(t, site("wcgicgi")); mode != "cgi" {
		t.Errorf("mode %q, want cgi", mode)
	}
}

func TestWCGIRequestArrivesIntact(t *testing.T) {
	hdr := http.Header{"X-Probe": {"abc"}, "X-Forwarded-For": {"10.9.8.7"}}
	r := do(t, http.MethodPatch, site("wcgi")+"/request?a=1&b=2", strings.NewReader("x"), hdr)
	want := []string{"PATCH /request a=1&b=2", "Host: " + strings.TrimPrefix(site("wcgi"), "http://"),
		// The client is no trusted proxy: its X-Forwarded-For is replaced (guest_env_test.go).
		"X-Forwarded-For: 127.0.0.1\n", "X-Forwarded-Proto: http", "X-Probe: abc"}
	for _, w := range want {
		if !strings.Contains(string(r.body), w) {
			t.Errorf("guest saw:\n%s\nmissing %q", r.body, w)
		}
	}
}

// The instance's environment is the CGI one of the request that started it, without that
// visitor's headers or address, and never Caddy's own.
func TestWCGIInstanceEnvironment(t *testing.T) {
	r := do(t, http.MethodGet, site("wcgishort")+"/env", nil, http.Header{"Cookie": {"secret=1"}})
	env := string(r.body)
	for _, want := range []string{"WAGI_WCGI=true", "GATEWAY_INTERFACE=CGI/1.1", "DOCUMENT_ROOT="} {
		if !strings.Contains(env, want) {
			t.Errorf("instance env lacks %s:\n%s", want, env)
		}
	}
	// Every request sends User-Agent, so whichever request started the instance, a kept
	// header would show as HTTP_USER_AGENT.
	key, _, _ := strings.Cut(hostSecret, "=")
	for _, line := range strings.Split(env, "\n") {
		for _, unwanted := range []string{"HTTP_", "REMOTE_", key + "=", "PATH="} {
			if strings.HasPrefix(line, unwanted) {
				t.Errorf("instance env has %s", line)
			}
		}
	}
}

func TestWCGIConcurrentLoad(t *testing.T) {
	var wg sync.WaitGroup
	var failures atomic.Int64
	jobs := make(chan int)
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				resp, err := client.Get(site("wcgi") + "/hello1")
				if err != nil {
					failures.Add(1)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(b) != "hello1\n" {
					failures.Add(1)
				}
			}
		}()
	}
	for i := 0; i < 200; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Errorf("%d of 200 requests failed", n)
	}
}

func TestWCGIStreams8MiBBothWays(t *testing.T) {
	body := make([]byte, 8<<20)
	rand.Read(body)
	r := do(t, http.MethodPost, site("wcgi")+"/echo", bytes.NewReader(body), nil)
	if r.status != 200 || !bytes.Equal(r.body, body) {
		t.Errorf("8 MiB echo: %d, %d bytes, equal=%v", r.status, len(r.body), bytes.Equal(r.body, body))
	}
	r = get(t, site("wcgi")+"/big?n=8388608")
	if r.status != 200 || len(r.body) != 8<<20 {
		t.Errorf("8 MiB download: %d, %d bytes", r.status, len(r.body))
	}
}

// A guest's goroutines keep running while one waits: sleeping handlers, a slowly
// streaming one and a hundred concurrent requests all complete, and a handler waiting
// on a channel is released by another request.
func TestWCGIGoroutinesNeverFreezeTheInstance(t *testing.T) {
	var wg sync.WaitGroup
	var bad atomic.Int64
	started := time.Now()
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			url := site("wcgi") + "/sleep?ms=500"
			if i%10 == 0 {
				url = site("wcgi") + "/stream?n=10"
			}
			if r := get(t, url); r.status != 200 {
				bad.Add(1)
			}
		}(i)
	}
	wg.Wait()
	if bad.Load() > 0 {
		t.Errorf("%d of 100 concurrent requests failed", bad.Load())
	}
	// Serially, 90 sleeps of 500 ms would take 45 s.
	if elapsed := time.Since(started); elapsed > 15*time.Second {
		t.Errorf("100 concurrent requests took %s: they did not overlap", elapsed)
	}

	r := get(t, site("wcgi")+"/stream?n=3")
	if string(r.body) != "tick 0\ntick 1\ntick 2\n" {
		t.Errorf("stream: %q", r.body)
	}

	waited := make(chan response, 1)
	go func() { waited <- get(t, site("wcgishort")+"/wait?key=k1") }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// /signal succeeds only while /wait is parked on its channel: the guest must keep
		// serving other requests while one goroutine waits. Retry until then (bounded).
		if r := get(t, site("wcgishort")+"/signal?key=k1&value=hello"); r.status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("could not signal")
		}
	}
	if r := <-waited; r.status != 200 || string(r.body) != "got hello\n" {
		t.Errorf("waiting handler: %d %q", r.status, r.body)
	}
}

func TestWCGITimeoutResetsTheStreamNotTheInstance(t *testing.T) {
	_, before := instanceOf(t, site("wcgishort"))
	started := time.Now()
	if r := get(t, site("wcgishort")+"/sleep?ms=3000"); r.status != http.StatusGatewayTimeout {
		t.Errorf("slow request: %d, want 504", r.status)
	}
	if elapsed := time.Since(started); elapsed > 2500*time.Millisecond {
		t.Errorf("timeout answered after %s", elapsed)
	}
	if _, after := instanceOf(t, site("wcgishort")); after != before {
		t.Errorf("instance replaced after a request timeout (%s -> %s)", before, after)
	}
}

func TestWCGICrashedInstanceIsReplaced(t *testing.T) {
	_, before := instanceOf(t, site("wcgishort"))
	if r := get(t, site("wcgishort")+"/crash"); r.status != http.StatusBadGateway {
		t.Errorf("request that crashed the instance: %d, want 502", r.status)
	}
	mode, after := instanceOf(t, site("wcgishort"))
	if mode != "wcgi" || after == before {
		t.Errorf("after a crash: mode %q, instance %s (was %s)", mode, after, before)
	}
	if !world.proc.logs.WaitFor(5*time.Second, "a WCGI instance ended; replacing it", modulePath("wcgishort", "index.wasm")) {
		t.Error("no log line about the replaced instance")
	}
}

func TestWCGIStderrIsLoggedWithModule(t *testing.T) {
	get(t, site("wcgi")+"/stderr?msg=marker-5512")
	if !world.proc.logs.WaitFor(10*time.Second, "guest stderr", `"module":"`+modulePath("wcgi", "index.wasm")+`"`, "wcgi says marker-5512") {
		t.Error("no attributed stderr line")
	}
}

func TestWCGIIdleInstancesStop(t *testing.T) {
	stopped := []string{"stopped idle WCGI instances", `"module":"` + modulePath("wcgishort", "index.wasm") + `"`}
	// Earlier tests stopped instances of this site too: only a stop logged after the
	// count was taken counts, and only a new instance answering proves ours was stopped
	// (the site runs one instance at a time).
	count := world.proc.logs.Count(stopped...)
	_, id := instanceOf(t, site("wcgishort"))
	deadline := time.Now().Add(15 * time.Second)
	for {
		if !world.proc.logs.WaitForCount(time.Until(deadline), count+1, stopped...) {
			t.Fatal("instances with keepalive 1s still running after 15s")
		}
		count = world.proc.logs.Count(stopped...)
		mode, now := instanceOf(t, site("wcgishort"))
		if mode != "wcgi" {
			t.Fatalf("after idle stop: mode %q", mode)
		}
		if now != id {
			return
		}
		// That stop was of an older instance; ours served again and is idle from now.
	}
}

// The module is replaced under load: old instances drain, new ones start, and no request
// fails.
func TestWCGIReloadUnderLoad(t *testing.T) {
	versions := [][]byte{mustRead(t, world.wcgi), mustRead(t, modulePath("wcgireload", "v2.wasm"))}
	target := modulePath("wcgireload", "index.wasm")
	// Both versions are compiled (and in the disk cache) before the load starts: this test
	// is about switching versions, not about compile time.
	if r := get(t, site("wcgireload")+"/v2.wasm/mode"); r.status != 200 {
		t.Fatalf("warming v2: %d %q", r.status, r.body)
	}
	_, id := instanceOf(t, site("wcgireload"))
	load := startLoad(site("wcgireload")+"/sleep?ms=20", 4, func(status int, body string) bool {
		return status == 200 && body == "slept 20\n"
	})
	for i := 1; i <= 6; i++ {
		tmp := target + ".tmp"
		if err := os.WriteFile(tmp, versions[i%2], 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, target); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			_, now := instanceOf(t, site("wcgireload"))
			if now != id {
				id = now
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replacement %d never took effect", i)
			}
		}
	}
	served, failures, first := load.stop()
	if failures > 0 {
		t.Errorf("%d of %d requests failed during reloads; first: %s", failures, served, first)
	}
}
