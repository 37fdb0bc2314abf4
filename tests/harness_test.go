package tests

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// repoRoot is the repository's top directory (tests/ lives directly in it).
var repoRoot = func() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return filepath.Dir(wd)
}()

// caddyBinary returns the Caddy under test: $WAGI_CADDY, or one built now by xcaddy.sh.
func caddyBinary() (string, error) {
	if bin := os.Getenv("WAGI_CADDY"); bin != "" {
		return filepath.Abs(bin)
	}
	cmd := exec.Command(filepath.Join(repoRoot, "xcaddy.sh"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("xcaddy.sh: %w", err)
	}
	return filepath.Join(repoRoot, "bin", "caddy"), nil
}

// buildGuest compiles a Go package to a wasip1 module.
func buildGuest(moduleDir, pkg, out string, flags ...string) error {
	cmd := exec.Command("go", append(append([]string{"build"}, flags...), "-o", out, pkg)...)
	cmd.Dir = moduleDir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// handedOut holds the ports freePort has returned: the OS may offer a port again once its
// probe listener is closed, and two sites on one port make Caddy refuse the config.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// freePort returns a loopback port that was free a moment ago and that it has not returned
// before.
func freePort() (int, error) {
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		handedOut.Lock()
		fresh := !handedOut.ports[port]
		handedOut.ports[port] = true
		handedOut.Unlock()
		if fresh {
			return port, nil
		}
	}
}

// logBuffer collects a process's output and lets tests wait for a line.
type logBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newLogBuffer() *logBuffer { return &logBuffer{changed: make(chan struct{})} }

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Count returns how many log lines contain all of the given substrings.
func (l *logBuffer) Count(subs ...string) int {
	n := 0
	for _, line := range strings.Split(l.String(), "\n") {
		if containsAll(line, subs) {
			n++
		}
	}
	return n
}

// WaitFor waits until a log line contains all substrings, or the timeout passes.
func (l *logBuffer) WaitFor(timeout time.Duration, subs ...string) bool {
	return l.WaitForCount(timeout, 1, subs...)
}

// WaitForCount waits until at least n log lines contain all substrings, or the timeout
// passes. Counting from a number taken before an action tells its line from older ones.
func (l *logBuffer) WaitForCount(timeout time.Duration, n int, subs ...string) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		changed := l.changed
		l.mu.Unlock()
		if l.Count(subs...) >= n {
			return true
		}
		select {
		case <-changed:
		case <-deadline.C:
			return false
		}
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// filewide holds the Caddies a test file shares between its tests (started on first use);
// TestMain stops them when the tests are done, so none outlives `go test`.
var filewide struct {
	sync.Mutex
	procs []*caddyProc
}

// stopAfterTests registers p to be stopped when all tests have run.
func stopAfterTests(p *caddyProc) {
	filewide.Lock()
	filewide.procs = append(filewide.procs, p)
	filewide.Unlock()
}

// stopFilewide stops the Caddies registered with stopAfterTests.
func stopFilewide() {
	filewide.Lock()
	defer filewide.Unlock()
	for _, p := range filewide.procs {
		p.Stop()
	}
}

// caddyProc is a running Caddy.
type caddyProc struct {
	cmd       *exec.Cmd
	logs      *logBuffer
	adminAddr string
	config    string
	done      chan error
}

// startCaddy runs `caddy run` with the given Caddyfile and waits until its admin endpoint
// answers. extraEnv is added to Caddy's environment.
func startCaddy(bin, dir, caddyfile, adminAddr string, extraEnv ...string) (*caddyProc, error) {
	config := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(config, []byte(caddyfile), 0o644); err != nil {
		return nil, err
	}
	p := &caddyProc{logs: newLogBuffer(), adminAddr: adminAddr, config: config, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, "run", "--config", config, "--adapter", "caddyfile")
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(),
		"XDG_DATA_HOME="+filepath.Join(dir, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	p.cmd.Env = append(p.cmd.Env, extraEnv...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.done <- p.cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			return nil, fmt.Errorf("caddy exited: %v\n%s", err, p.logs)
		default:
		}
		resp, err := http.Get("http://" + adminAddr + "/config/")
		if err == nil {
			resp.Body.Close()
			return p, nil
		}
		time.Sleep(50 * time.Millisecond) // polling the admin endpoint, bounded by deadline
	}
	p.Stop()
	return nil, fmt.Errorf("caddy did not start in 30s:\n%s", p.logs)
}

// Alive reports whether the process is still running.
func (p *caddyProc) Alive() bool {
	select {
	case err := <-p.done:
		p.done <- err
		return false
	default:
		return true
	}
}

// Stop ends Caddy and waits for it.
func (p *caddyProc) Stop() {
	if p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Reload loads a new Caddyfile through the admin API, as `caddy reload` does.
func (p *caddyProc) Reload(caddyfile string) error {
	req, err := http.NewRequest(http.MethodPost, "http://"+p.adminAddr+"/load", strings.NewReader(caddyfile))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/caddyfile")
	req.Header.Set("Cache-Control", "must-revalidate") // reload even if unchanged
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("reload: %s: %s", resp.Status, b)
	}
	return nil
}

// client has a generous timeout: a first request may compile a multi-megabyte Go module.
var client = &http.Client{
	Timeout: 120 * time.Second,
	// The `tls` site uses Caddy's internal CA; its certificate is not what is tested.
	Transport: &http.Transport{
		TLSClientConfig:       &tls.Config{InsecureSkipVerify: true},
		ForceAttemptHTTP2:     true,
		ExpectContinueTimeout: time.Second,
		MaxIdleConnsPerHost:   64,
	},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func do(t testing.TB, method, url string, body io.Reader, hdr http.Header) response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range hdr {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func get(t testing.TB, url string) response { return do(t, http.MethodGet, url, nil, nil) }

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// loadRun is a background load started by startLoad.
type loadRun struct {
	done     atomic.Bool
	wg       sync.WaitGroup
	served   atomic.Int64
	failures atomic.Int64
	first    atomic.Value
}

// startLoad has `workers` clients GET url in a loop until stop, counting the responses
// that ok rejects (and transport errors) as failures.
func startLoad(url string, workers int, ok func(status int, body string) bool) *loadRun {
	l := &loadRun{}
	for w := 0; w < workers; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for !l.done.Load() {
				resp, err := client.Get(url)
				var body []byte
				status := 0
				if err == nil {
					status = resp.StatusCode
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				l.served.Add(1)
				if err != nil || !ok(status, string(body)) {
					l.failures.Add(1)
					l.first.CompareAndSwap(nil, fmt.Sprintf("status=%d err=%v body=%q", status, err, body))
				}
			}
		}()
	}
	return l
}

// stop ends the load and reports requests served, failures and the first failure.
func (l *loadRun) stop() (served, failures int64, first string) {
	l.done.Store(true)
	l.wg.Wait()
	if f, ok := l.first.Load().(string); ok {
		first = f
	}
	return l.served.Load(), l.failures.Load(), first
}

// rawGET sends a hand-written GET with extra header lines (each ending in CRLF) over a
// fresh connection and returns every byte the server sent until it closed it. A client
// library would hide what such tests look at: it skips interim (1xx) responses, and
// merges or drops repeated headers.
func rawGET(t testing.TB, host, target, extraHeaders string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", host, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A first request compiles the module: allow for it.
	if err := conn.SetDeadline(time.Now().Add(120 * time.Second)); err != nil {
		t.Fatal(err)
	}
	req := "GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\n" + extraHeaders + "Connection: close\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(io.LimitReader(conn, 1<<20))
	if err != nil {
		t.Fatalf("GET %s: reading the raw response: %v (after %q)", target, err, raw)
	}
	return string(raw)
}

// expectEnv checks that env (a guest's environment) has each variable of want.
func expectEnv(t testing.TB, env, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
}

// ownCaddy is a Caddy of one test's own, serving one site per name from <dir>/<name>.
type ownCaddy struct {
	proc *caddyProc
	dir  string
	urls map[string]string // site name -> base URL
	// config is the Caddyfile it runs, for reloads.
	config string
	stop   func()
}

// startOwnCaddy starts Caddy with global (more lines for the global options block, or "")
// and one site per entry of sites (name -> directives, where $DIR stands for dir); each
// site's root is <dir>/<name>. It stops with the test, or earlier through stop.
func startOwnCaddy(t *testing.T, dir, global string, sites map[string]string) *ownCaddy {
	t.Helper()
	admin, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	c := &ownCaddy{dir: dir, urls: map[string]string{}}
	var cf strings.Builder
	fmt.Fprintf(&cf, "{\n\tadmin 127.0.0.1:%d\n\tauto_https off\n%s}\n", admin, global)
	names := make([]string, 0, len(sites))
	for name := range sites {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		c.urls[name] = fmt.Sprintf("http://127.0.0.1:%d", port)
		body := strings.ReplaceAll(sites[name], "$DIR", dir)
		fmt.Fprintf(&cf, "\n%s {\n\troot * %s\n%s\n}\n", c.urls[name], filepath.Join(dir, name), body)
	}
	c.config = cf.String()
	c.proc, err = startCaddy(world.caddy, dir, c.config, fmt.Sprintf("127.0.0.1:%d", admin))
	if err != nil {
		t.Fatal(err)
	}
	// caddyProc.Stop may run only once: it consumes the exit status.
	c.stop = sync.OnceFunc(c.proc.Stop)
	t.Cleanup(func() {
		c.stop()
		if t.Failed() {
			t.Logf("--- caddy log (%s) ---\n%s", dir, c.proc.logs)
		}
	})
	return c
}
