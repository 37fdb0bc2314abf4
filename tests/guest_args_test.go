package tests

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Interpreter-style guests and configured module paths: `argv` (with placeholders, never
// one visitor's values in a WCGI instance), `entrypoint` (a WASI reactor run through a
// named export), and placeholders in the module path, which a client must not steer out
// of its directory.
func TestArgvEntrypointAndModulePlaceholders(t *testing.T) {
	dir := t.TempDir()
	reactor := filepath.Join(dir, "reactor.wasm")
	if err := buildGuest(filepath.Join(repoRoot, "tests"), "./guests/reactor", reactor, "-buildmode=c-shared"); err != nil {
		t.Fatal(err)
	}
	copyFile(t, world.probe, filepath.Join(dir, "args", "probe.wasm"))
	copyFile(t, world.wcgi, filepath.Join(dir, "wcgiargs", "wcgi.wasm"))
	copyFile(t, reactor, filepath.Join(dir, "reactor", "reactor.wasm"))
	copyFile(t, reactor, filepath.Join(dir, "noentry", "reactor.wasm"))
	copyFile(t, world.probe, filepath.Join(dir, "tenant", "tenants", "a.wasm"))
	copyFile(t, world.probe, filepath.Join(dir, "tenant", "b.wasm"))
	envModule := filepath.Join(dir, "elsewhere", "probe.wasm")
	copyFile(t, world.probe, envModule)
	if err := os.MkdirAll(filepath.Join(dir, "envmodule"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Caddy inherits the test's environment: {env.*} in a module path is the admin's.
	t.Setenv("WAGI_TEST_MODULE", envModule)
	c := startOwnCaddy(t, dir, "", map[string]string{
		"args":      "\twagi probe.wasm {\n\t\targv probe --x {http.request.uri.query.x}\n\t}",
		"wcgiargs":  "\twagi wcgi.wasm {\n\t\targv wcgi {http.request.uri.query.x} {system.os}\n\t}",
		"reactor":   "\twagi reactor.wasm {\n\t\tentrypoint serve\n\t}",
		"noentry":   "\twagi reactor.wasm",
		"tenant":    "\twagi tenants/{http.request.uri.query.t}.wasm",
		"envmodule": "\twagi {env.WAGI_TEST_MODULE}",
	})
	expect := func(url string, status int, body string) {
		t.Helper()
		r := get(t, url)
		if r.status != status || !strings.Contains(string(r.body), body) {
			t.Errorf("GET %s: %d %q; want %d containing %q", url, r.status, r.body, status, body)
		}
	}

	t.Run("ArgvWithPlaceholders", func(t *testing.T) {
		expect(c.urls["args"]+"/?do=args&x=hello", http.StatusOK, "probe|--x|hello\n")
		expect(c.urls["args"]+"/?do=args&x=again", http.StatusOK, "probe|--x|again\n")
	})
	t.Run("DefaultArgvIsTheModulePath", func(t *testing.T) {
		expect(c.urls["tenant"]+"/?t=a&do=args", http.StatusOK, filepath.Join(dir, "tenant", "tenants", "a.wasm")+"\n")
	})
	t.Run("WCGIInstanceArgvHasNoVisitorValues", func(t *testing.T) {
		// The first visitor starts the instance; its query must not become the argv
		// every later visitor's requests run under.
		expect(c.urls["wcgiargs"]+"/args?x=SECRET", http.StatusOK, "wcgi||linux\n")
		expect(c.urls["wcgiargs"]+"/args?x=other", http.StatusOK, "wcgi||linux\n")
	})
	t.Run("EntrypointRunsAReactorExport", func(t *testing.T) {
		expect(c.urls["reactor"]+"/?q=1", http.StatusOK, "served by serve() with QUERY_STRING=q=1")
	})
	t.Run("MissingEntrypointIs500AndLogged", func(t *testing.T) {
		expect(c.urls["noentry"]+"/", http.StatusInternalServerError, "")
		if !c.proc.logs.WaitFor(10*time.Second, `"module":"`+filepath.Join(dir, "noentry", "reactor.wasm"), "_start") {
			t.Error("no log line naming the module and its missing _start")
		}
	})
	t.Run("ModulePathPlaceholders", func(t *testing.T) {
		expect(c.urls["tenant"]+"/?t=a", http.StatusOK, "probe /")
		expect(c.urls["envmodule"]+"/?do=args", http.StatusOK, envModule+"\n")
		// A client steering the path out of tenants/ gets 404, and nothing runs.
		for _, t2 := range []string{"../b", "..%2Fb", "%2E%2E/b", "", "a%00"} {
			expect(c.urls["tenant"]+"/?t="+t2, http.StatusNotFound, "")
		}
		if !c.proc.logs.WaitForCount(10*time.Second, 4, "no module for this request") {
			t.Errorf("%d log lines about refused module paths, want 4", c.proc.logs.Count("no module for this request"))
		}
	})
}

// A real interpreter built for WASI (CPython 3.12) runs a script named by `argv`, mounted
// read-only, with the standard library and the CGI environment: the PHP-like way to run
// an interpreted guest. scripts/fetch-python-wasm.sh fetches the interpreter.
func TestInterpreterGuestRunsAScript(t *testing.T) {
	python := pythonInterpreter.wasm(t)
	dir := t.TempDir()
	copyFile(t, python, filepath.Join(dir, "py", "python.wasm"))
	script := "import json, os, sys\n" +
		"print('Content-Type: application/json')\nprint()\n" +
		"print(json.dumps({'argv': sys.argv, 'query': os.environ.get('QUERY_STRING', '')}))\n"
	if err := os.MkdirAll(filepath.Join(dir, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "app", "main.py"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	c := startOwnCaddy(t, dir, "", map[string]string{
		"py": "\twagi python.wasm {\n\t\targv python /app/main.py {http.request.uri.query.word}\n" +
			"\t\tmount $DIR/app /app ro\n\t\ttimeout 120s\n\t}",
	})
	r := get(t, c.urls["py"]+"/?word=hello")
	want := `{"argv": ["/app/main.py", "hello"], "query": "word=hello"}`
	if r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != want {
		t.Fatalf("GET: %d %q; want 200 %q", r.status, r.body, want)
	}
}
