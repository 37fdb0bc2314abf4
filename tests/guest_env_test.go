package tests

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// What a guest sees, checked against what Caddy's FastCGI transport and reverse_proxy
// would tell it: the CGI environment behind `rewrite` and `basic_auth`, the environment of
// a long-lived WCGI instance, and X-Forwarded-* with and without trusted proxies.

// envCaddy is one Caddy of this file's own; its sites by name: "cgi" (probe behind
// rewrite and basic_auth), "wcgienv" (WCGI with configured env, only for the instance
// environment test), "wcgiplain" (WCGI, untrusted peers) and "wcgitrusted" (WCGI on a
// server with trusted_proxies 127.0.0.1/8).
type envCaddy struct {
	proc  *caddyProc
	sites map[string]string
}

const (
	envUser     = "alice"
	envPassword = "correct horse"
	// envSiteValue is in Caddy's environment; the WCGI site's env reads it as {env.*}.
	envSiteValue = "WAGI_TEST_SITE_VALUE=from-caddy-env"
)

// startEnvCaddy starts the Caddy for the tests in this file; it stops with the test.
func startEnvCaddy(t *testing.T) *envCaddy {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"cgi/index.wasm":         world.probe,
		"cgi/api.wasm":           world.probe,
		"wcgienv/index.wasm":     world.wcgi,
		"wcgiplain/index.wasm":   world.wcgi,
		"wcgitrusted/index.wasm": world.wcgi,
	}
	for name, from := range files {
		copyFile(t, from, filepath.Join(dir, name))
	}
	hash, err := exec.Command(world.caddy, "hash-password", "--plaintext", envPassword).Output()
	if err != nil {
		t.Fatalf("caddy hash-password: %v", err)
	}
	ports := map[string]int{}
	for _, name := range []string{"admin", "cgi", "wcgienv", "wcgiplain", "wcgitrusted"} {
		if ports[name], err = freePort(); err != nil {
			t.Fatal(err)
		}
	}
	sites := map[string]string{}
	for name, port := range ports {
		sites[name] = fmt.Sprintf("http://127.0.0.1:%d", port)
	}
	caddyfile := strings.NewReplacer(
		"$ADMIN", strings.TrimPrefix(sites["admin"], "http://"),
		"$TRUSTED_PORT", fmt.Sprint(ports["wcgitrusted"]),
		"$CGI", sites["cgi"], "$WCGIENV", sites["wcgienv"], "$WCGIPLAIN", sites["wcgiplain"],
		"$WCGITRUSTED", sites["wcgitrusted"], "$DIR", dir,
		"$USER", envUser, "$HASH", strings.TrimSpace(string(hash)),
	).Replace(`{
	admin $ADMIN
	servers :$TRUSTED_PORT {
		trusted_proxies static 127.0.0.1/8
	}
}

$CGI {
	root * $DIR/cgi
	rewrite /before /index.wasm?do=env&rewritten=1
	basic_auth /private* {
		$USER $HASH
	}
	wagi
}

$WCGIENV {
	root * $DIR/wcgienv
	wagi {
		env SITE_NAME fixed
		env VISITOR {http.request.uri.query}
		env FROM_CADDY {env.WAGI_TEST_SITE_VALUE}
	}
}

$WCGIPLAIN {
	root * $DIR/wcgiplain
	wagi
}

$WCGITRUSTED {
	root * $DIR/wcgitrusted
	wagi
}
`)
	proc, err := startCaddy(world.caddy, dir, caddyfile, strings.TrimPrefix(sites["admin"], "http://"), envSiteValue)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		proc.Stop()
		if t.Failed() {
			t.Logf("--- caddy log ---\n%s", proc.logs)
		}
	})
	return &envCaddy{proc: proc, sites: sites}
}

// envLines splits a guest's printed environment into lines, keeping the order.
func envLines(body []byte) []string {
	return strings.Split(strings.TrimSpace(string(body)), "\n")
}

func TestGuestEnvironment(t *testing.T) {
	c := startEnvCaddy(t)

	// REQUEST_URI is what the client asked for, as php_fastcgi passes it; the rest of the
	// request facts are the rewritten ones.
	t.Run("REQUEST_URI before rewrite", func(t *testing.T) {
		env := guestEnv(t, c.sites["cgi"]+"/before?do=env", nil)
		want := map[string]string{
			"REQUEST_URI":  "/before?do=env",
			"QUERY_STRING": "do=env&rewritten=1",
			"SCRIPT_NAME":  "/index.wasm",
			"DOCUMENT_URI": "/index.wasm",
		}
		expectEnv(t, env, want)
	})

	t.Run("REMOTE_USER and AUTH_TYPE from basic_auth", func(t *testing.T) {
		hdr := http.Header{"Authorization": {basicAuth(envUser, envPassword)}}
		env := guestEnv(t, c.sites["cgi"]+"/private?do=env", hdr)
		if env["REMOTE_USER"] != envUser || env["AUTH_TYPE"] != "Basic" {
			t.Errorf("REMOTE_USER=%q AUTH_TYPE=%q, want %q Basic", env["REMOTE_USER"], env["AUTH_TYPE"], envUser)
		}
		if r := get(t, c.sites["cgi"]+"/private?do=env"); r.status != http.StatusUnauthorized {
			t.Errorf("without credentials: %d, want 401", r.status)
		}
		// Credentials nobody checked name nobody.
		env = guestEnv(t, c.sites["cgi"]+"/open?do=env", hdr)
		if env["REMOTE_USER"] != "" || env["AUTH_TYPE"] != "" {
			t.Errorf("unchecked credentials: REMOTE_USER=%q AUTH_TYPE=%q, want empty", env["REMOTE_USER"], env["AUTH_TYPE"])
		}
	})

	t.Run("SERVER_ADDR DOCUMENT_URI REMOTE_IDENT", func(t *testing.T) {
		env := guestEnv(t, c.sites["cgi"]+"/api.wasm/users/7?do=env", nil)
		want := map[string]string{"SERVER_ADDR": "127.0.0.1", "DOCUMENT_URI": "/api.wasm", "PATH_INFO": "/users/7"}
		expectEnv(t, env, want)
		// Set and empty, as Caddy sets them, so a guest never reads them from elsewhere.
		for _, k := range []string{"REMOTE_IDENT", "REMOTE_USER", "AUTH_TYPE"} {
			if v, ok := env[k]; !ok || v != "" {
				t.Errorf("%s = %q (set: %v), want set and empty", k, v, ok)
			}
		}
	})

	// A long-lived instance serves every visitor: nothing of the request that started it
	// may stay in its environment, including through a placeholder in the configured env.
	t.Run("WCGI instance environment has no visitor", func(t *testing.T) {
		hdr := http.Header{"Cookie": {"session=COOKIE-SECRET"}, "Authorization": {"Bearer BEARER-SECRET"}}
		r := do(t, http.MethodGet, c.sites["wcgienv"]+"/env?token=SECRET", nil, hdr)
		if r.status != 200 {
			t.Fatalf("GET /env: %d %s", r.status, r.body)
		}
		if n := c.proc.logs.Count("started a WCGI instance", "wcgienv"); n != 1 {
			t.Fatalf("%d instances started for wcgienv, want 1 (this request's)", n)
		}
		lines := envLines(r.body)
		for _, want := range []string{"WAGI_WCGI=true", "SITE_NAME=fixed", "VISITOR=",
			"FROM_CADDY=from-caddy-env", "GATEWAY_INTERFACE=CGI/1.1", "SCRIPT_NAME=/index.wasm"} {
			if !containsLine(lines, want) {
				t.Errorf("instance env lacks %s:\n%s", want, r.body)
			}
		}
		for _, line := range lines {
			for _, unwanted := range []string{"QUERY_STRING=", "REQUEST_URI=", "HTTP_", "REMOTE_", "SERVER_NAME="} {
				if strings.HasPrefix(line, unwanted) {
					t.Errorf("instance env has %s", line)
				}
			}
			if strings.Contains(line, "SECRET") {
				t.Errorf("instance env carries a visitor's value: %s", line)
			}
		}
	})

	// A client must not be able to tell a WCGI guest it is someone else; a proxy the server
	// trusts may. Raw requests: two X-Forwarded-For lines, as a client library would merge.
	forged := "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 7.7.7.7\r\n" +
		"X-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\n"
	t.Run("X-Forwarded-* from an untrusted client are replaced", func(t *testing.T) {
		host := strings.TrimPrefix(c.sites["wcgiplain"], "http://")
		got := rawGet(t, host, "/forwarded", forged)
		want := fmt.Sprintf("X-Forwarded-For: %q\nX-Forwarded-Proto: %q\nX-Forwarded-Host: %q\n", "127.0.0.1", "http", host)
		if got != want {
			t.Errorf("guest saw:\n%s\nwant:\n%s", got, want)
		}
	})
	t.Run("X-Forwarded-* from a trusted proxy are kept", func(t *testing.T) {
		host := strings.TrimPrefix(c.sites["wcgitrusted"], "http://")
		got := rawGet(t, host, "/forwarded", forged)
		want := fmt.Sprintf("X-Forwarded-For: %q\nX-Forwarded-Proto: %q\nX-Forwarded-Host: %q\n",
			"6.6.6.6, 7.7.7.7, 127.0.0.1", "https", "evil.example")
		if got != want {
			t.Errorf("guest saw:\n%s\nwant:\n%s", got, want)
		}
	})
}

// Over TLS the guest learns the cipher suite, named as Caddy's FastCGI transport names it.
func TestGuestEnvironmentTLSCipher(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, site("tls")+"/?do=env", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.TLS == nil {
		t.Fatalf("GET over TLS: %v, TLS state %v", err, resp.TLS)
	}
	want := "SSL_CIPHER=" + tls.CipherSuiteName(resp.TLS.CipherSuite)
	if !containsLine(envLines(body), want) {
		t.Errorf("guest env lacks %s:\n%s", want, body)
	}
}

func containsLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

func basicAuth(user, password string) string {
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	r.SetBasicAuth(user, password)
	return r.Header.Get("Authorization")
}

// rawGet sends a hand-written GET with extra header lines (each ending in CRLF), so
// nothing merges or drops them, and returns the 200 response's body.
func rawGet(t *testing.T, host, path, extraHeaders string) string {
	t.Helper()
	raw := rawGET(t, host, path, extraHeaders)
	if !strings.HasPrefix(raw, "HTTP/1.1 200 ") {
		t.Fatalf("GET %s: %q", path, raw)
	}
	return rawBody(t, raw)
}
