package tests

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// guestEnv asks the probe for its environment.
func guestEnv(t *testing.T, url string, hdr http.Header) map[string]string {
	t.Helper()
	r := do(t, http.MethodGet, url, nil, hdr)
	if r.status != 200 {
		t.Fatalf("GET %s: %d %s", url, r.status, r.body)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(r.body), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	return env
}

func TestSeedExampleRoutes(t *testing.T) {
	for path, want := range map[string]string{"/": "index\n", "/hello1": "hello1\n", "/hello2": "hello2\n"} {
		r := get(t, site("seed")+path)
		if r.status != 200 || string(r.body) != want {
			t.Errorf("GET %s = %d %q, want 200 %q", path, r.status, r.body, want)
		}
	}
}

func TestGoWagiLayoutWithIndexPHP(t *testing.T) {
	for path, want := range map[string]string{"/": "index\n", "/hello1": "hello1\n", "/hello2": "hello2\n", "/index.php": "index\n"} {
		r := get(t, site("gowagi")+path)
		if r.status != 200 || string(r.body) != want {
			t.Errorf("GET %s = %d %q, want 200 %q", path, r.status, r.body, want)
		}
	}
	if r := get(t, site("gowagi")+"/style.css"); string(r.body) != "body{}\n" {
		t.Errorf("static file through file_server: %d %q", r.status, r.body)
	}
}

func TestCGIVariables(t *testing.T) {
	root := filepath.Join(world.work, "sites", "probe")
	env := guestEnv(t, site("probe")+"/api.wasm/users/7?do=env&x=1", nil)
	want := map[string]string{
		"GATEWAY_INTERFACE": "CGI/1.1",
		"REQUEST_METHOD":    "GET",
		"SCRIPT_NAME":       "/api.wasm",
		"SCRIPT_FILENAME":   filepath.Join(root, "api.wasm"),
		"PATH_INFO":         "/users/7",
		"QUERY_STRING":      "do=env&x=1",
		"REQUEST_URI":       "/api.wasm/users/7?do=env&x=1",
		"DOCUMENT_ROOT":     root,
		"SERVER_NAME":       "127.0.0.1",
		"SERVER_PROTOCOL":   "HTTP/1.1",
		"REMOTE_ADDR":       "127.0.0.1",
		"APP_MODE":          "test",
		"CLIENT_HOST":       "127.0.0.1",
	}
	expectEnv(t, env, want)
	for _, k := range []string{"SERVER_PORT", "REMOTE_PORT", "SERVER_SOFTWARE"} {
		if env[k] == "" {
			t.Errorf("%s is empty", k)
		}
	}
}

// Over TLS (and so HTTP/2) the guest learns it is HTTPS, as from Caddy's FastCGI transport.
func TestTLSVariables(t *testing.T) {
	env := guestEnv(t, site("tls")+"/?do=env", nil)
	port := site("tls")[strings.LastIndex(site("tls"), ":")+1:]
	want := map[string]string{"HTTPS": "on", "SSL_PROTOCOL": "TLSv1.3", "REQUEST_SCHEME": "https",
		"SERVER_PORT": port, "SERVER_PROTOCOL": "HTTP/2.0"}
	expectEnv(t, env, want)
	body := bytes.Repeat([]byte("z"), 300_000)
	r := do(t, http.MethodPost, site("tls")+"/?do=echo", bytes.NewReader(body), nil)
	if r.status != 200 || !bytes.Equal(r.body, body) {
		t.Errorf("echo over HTTP/2: %d, %d bytes", r.status, len(r.body))
	}
}

func TestFrontControllerAndDirectoryIndex(t *testing.T) {
	env := guestEnv(t, site("probe")+"/no/such/page?do=env", nil)
	if env["SCRIPT_NAME"] != "/index.wasm" || env["REQUEST_URI"] != "/no/such/page?do=env" {
		t.Errorf("front controller: SCRIPT_NAME=%q REQUEST_URI=%q", env["SCRIPT_NAME"], env["REQUEST_URI"])
	}
	env = guestEnv(t, site("probe")+"/sub/?do=env", nil)
	if env["SCRIPT_NAME"] != "/sub/index.wasm" {
		t.Errorf("directory index: SCRIPT_NAME=%q", env["SCRIPT_NAME"])
	}
	r := get(t, site("probe")+"/sub?do=env")
	if r.status != http.StatusPermanentRedirect || r.header.Get("Location") != "/sub/?do=env" {
		t.Errorf("directory without slash: %d Location=%q", r.status, r.header.Get("Location"))
	}
	if r := get(t, site("probe")+"/hello.txt"); string(r.body) != "static hello\n" {
		t.Errorf("static file: %d %q", r.status, r.body)
	}
}

func TestExplicitModuleWithMatcher(t *testing.T) {
	env := guestEnv(t, site("fixed")+"/api/items?do=env", nil)
	if env["PATH_INFO"] != "/api/items" || env["SCRIPT_NAME"] != "/probe.wasm" {
		t.Errorf("PATH_INFO=%q SCRIPT_NAME=%q", env["PATH_INFO"], env["SCRIPT_NAME"])
	}
	if r := get(t, site("fixed")+"/static.txt"); string(r.body) != "static fixed\n" {
		t.Errorf("outside the matcher: %d %q", r.status, r.body)
	}
}

func TestPostBodyEcho1MiB(t *testing.T) {
	body := make([]byte, 1<<20)
	if _, err := rand.Read(body); err != nil {
		t.Fatal(err)
	}
	r := do(t, http.MethodPost, site("probe")+"/?do=echo", bytes.NewReader(body), http.Header{"Content-Type": {"application/octet-stream"}})
	if r.status != 200 || !bytes.Equal(r.body, body) {
		t.Fatalf("echo: status %d, %d bytes back, equal=%v", r.status, len(r.body), bytes.Equal(r.body, body))
	}
}

// The guest reads the body while the client is still sending it: the client sends half,
// waits until the guest's stderr reports having read it, then sends the rest.
func TestRequestBodyIsStreamedToTheGuest(t *testing.T) {
	half := bytes.Repeat([]byte("a"), 100_000)
	pr, pw := io.Pipe()
	result := make(chan response, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, site("probe")+"/?do=sha", pr)
		req.ContentLength = int64(2 * len(half))
		resp, err := client.Do(req)
		if err != nil {
			result <- response{status: -1, body: []byte(err.Error())}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		result <- response{status: resp.StatusCode, body: b}
	}()
	if _, err := pw.Write(half); err != nil {
		t.Fatal(err)
	}
	if !world.proc.logs.WaitFor(60*time.Second, "probe read total=100000") {
		pw.CloseWithError(io.ErrUnexpectedEOF)
		t.Fatal("guest did not read the first half before the body was complete")
	}
	if _, err := pw.Write(half); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	r := <-result
	sum := sha256.Sum256(append(append([]byte{}, half...), half...))
	want := fmt.Sprintf("%d %s\n", 2*len(half), hex.EncodeToString(sum[:]))
	if r.status != 200 || string(r.body) != want {
		t.Fatalf("got %d %q, want %q", r.status, r.body, want)
	}
}

func TestLargeResponse16MiB(t *testing.T) {
	const n = 16 << 20
	r := get(t, site("probe")+fmt.Sprintf("/?do=big&n=%d", n))
	if r.status != 200 || len(r.body) != n {
		t.Fatalf("status %d, %d bytes, want %d", r.status, len(r.body), n)
	}
	for i := 0; i < n; i += 4099 {
		if want := byte((i % (64 << 10)) % 251); r.body[i] != want {
			t.Fatalf("byte %d = %d, want %d", i, r.body[i], want)
		}
	}
}

func TestStatusLocationAndRepeatedCookies(t *testing.T) {
	r := get(t, site("probe")+"/?do=status")
	if r.status != 201 || r.header.Get("Location") != "/created/1" {
		t.Errorf("status %d Location %q", r.status, r.header.Get("Location"))
	}
	if c := r.header.Values("Set-Cookie"); len(c) != 2 || c[0] != "a=1; Path=/" || c[1] != "b=2; Path=/" {
		t.Errorf("Set-Cookie = %q", c)
	}
	r = get(t, site("probe")+"/?do=raw-location")
	if r.status != 302 || r.header.Get("Location") != "/elsewhere" {
		t.Errorf("Location without Status: %d %q", r.status, r.header.Get("Location"))
	}
	r = get(t, site("probe")+"/?do=raw-lf")
	if r.status != 200 || r.header.Get("X-Raw") != "lf" || string(r.body) != "raw body" {
		t.Errorf("LF-only response: %d %q %q", r.status, r.header.Get("X-Raw"), r.body)
	}
}

func TestRequestHeadersReachTheGuest(t *testing.T) {
	hdr := http.Header{"X-Probe": {"one", "two"}, "Cookie": {"a=1", "b=2"}, "Proxy": {"http://evil"}}
	env := guestEnv(t, site("probe")+"/?do=env", hdr)
	if env["HTTP_X_PROBE"] != "one, two" {
		t.Errorf("HTTP_X_PROBE = %q", env["HTTP_X_PROBE"])
	}
	if env["HTTP_COOKIE"] != "a=1; b=2" {
		t.Errorf("HTTP_COOKIE = %q", env["HTTP_COOKIE"])
	}
	if v, ok := env["HTTP_PROXY"]; ok {
		t.Errorf("HTTP_PROXY reached the guest: %q", v)
	}
	r := do(t, http.MethodGet, site("probe")+"/?do=headers", nil, hdr)
	if !strings.Contains(string(r.body), "X-Probe: one, two") {
		t.Errorf("guest's r.Header lacks X-Probe:\n%s", r.body)
	}
}

func TestHostEnvironmentIsInvisible(t *testing.T) {
	env := guestEnv(t, site("probe")+"/?do=env", nil)
	key, _, _ := strings.Cut(hostSecret, "=")
	if _, ok := env[key]; ok {
		t.Errorf("guest sees Caddy's environment variable %s", key)
	}
	for _, k := range []string{"PATH", "HOME", "XDG_DATA_HOME"} {
		if _, ok := env[k]; ok {
			t.Errorf("guest sees host variable %s", k)
		}
	}
}

func TestGuestSeesOnlyTheSiteRoot(t *testing.T) {
	inside := filepath.Join(world.work, "sites", "probe", "data", "inside.txt")
	if r := get(t, site("probe")+"/?do=read&path="+inside); r.status != 200 || string(r.body) != "inside the root\n" {
		t.Fatalf("reading inside the root: %d %q", r.status, r.body)
	}
	outside := []string{"/etc/passwd", filepath.Join(world.work, "Caddyfile"),
		filepath.Join(world.work, "sites", "probe", "..", "seed", "index.wasm")}
	for _, p := range outside {
		r := get(t, site("probe")+"/?do=read&path="+p)
		if r.status != http.StatusForbidden {
			t.Errorf("reading %s: %d %q", p, r.status, r.body)
		}
	}
}

func TestWasmBytesAreNeverServed(t *testing.T) {
	cases := []string{
		site("probe") + "/api.wasm", site("probe") + "/index.wasm", site("probe") + "/API.WASM",
		site("gowagi") + "/other.wasm", site("gowagi") + "/index.php", site("fixed") + "/probe.wasm",
	}
	for _, url := range cases {
		r := get(t, url)
		if bytes.HasPrefix(r.body, []byte("\x00asm")) {
			t.Errorf("GET %s served wasm bytes", url)
		}
	}
	if r := get(t, site("gowagi")+"/other.wasm"); r.status != 404 {
		t.Errorf("a .wasm file outside the split extensions: %d, want 404", r.status)
	}
}

func TestGuestStderrIsLoggedWithModule(t *testing.T) {
	r := get(t, site("probe")+"/?do=stderr&msg=marker-7731")
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	module := filepath.Join(world.work, "sites", "probe", "index.wasm")
	if !world.proc.logs.WaitFor(10*time.Second, "guest stderr", "probe says marker-7731", module) {
		t.Errorf("no attributed stderr line in the log")
	}
}
