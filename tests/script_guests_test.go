package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// scriptGuest is a guest that a script under scripts/ builds or fetches from a registry
// (npm, PyPI) and caches under target/guests/. test.sh runs the script in set-up and
// passes its output in env, so that the tests themselves only talk to loopback; a
// developer running `go test` alone gets the script run once per test binary.
type scriptGuest struct {
	// what names the guest in failures.
	what, env, script string

	once sync.Once
	path string
	err  error
	// stderr is the script's, kept for the failure message.
	stderr string
}

// wasm is the path of the guest's .wasm.
func (g *scriptGuest) wasm(t *testing.T) string {
	t.Helper()
	g.once.Do(func() {
		if p := os.Getenv(g.env); p != "" {
			g.path = p
			return
		}
		var stderr bytes.Buffer
		cmd := exec.Command(filepath.Join(repoRoot, "scripts", g.script))
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		g.path, g.err, g.stderr = strings.TrimSpace(string(out)), err, stderr.String()
	})
	if g.err != nil {
		t.Fatalf("building %s (scripts/%s): %v\n%s", g.what, g.script, g.err, g.stderr)
	}
	return g.path
}

var (
	// jsComponent is tests/guests/httpjs, built with componentize-js from npm.
	jsComponent = &scriptGuest{what: "the JavaScript component", env: "WAGI_HTTP_COMPONENT", script: "build-js-component.sh"}
	// rustComponent is tests/guests/httprust, built with rustup's wasm32-wasip2 target or
	// Debian's Rust (crates.io for the rest).
	rustComponent = &scriptGuest{what: "the Rust component", env: "WAGI_RUST_COMPONENT", script: "build-rust-component.sh"}
	// pyComponent is tests/guests/httppy, built with componentize-py from PyPI.
	pyComponent = &scriptGuest{what: "the Python component", env: "WAGI_PY_COMPONENT", script: "build-py-component.sh"}
	// pythonInterpreter is CPython 3.12 built for WASI, from PyPI.
	pythonInterpreter = &scriptGuest{what: "the CPython interpreter", env: "WAGI_PYTHON_WASM", script: "fetch-python-wasm.sh"}
)
