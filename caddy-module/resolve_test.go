package wagi

import (
	"os"
	"path/filepath"
	"testing"
)

func TestResolve(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{"index.wasm", "api.wasm", "sub/index.wasm", "style.css", "raw/thing.wasm", "app.php"} {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := &Handler{Index: defaultIndex, SplitPath: []string{".wasm"}}
	cases := []struct {
		path     string
		act      action
		name     string
		pathInfo string
	}{
		{"/", actRun, "/index.wasm", ""},
		{"/api.wasm", actRun, "/api.wasm", ""},
		{"/api.wasm/users/7", actRun, "/api.wasm", "/users/7"},
		// The split matches case-insensitively, but no file API.WASM exists: front controller.
		{"/API.WASM/x", actRun, "/index.wasm", ""},
		{"/sub/", actRun, "/sub/index.wasm", ""},
		{"/sub", actRedirect, "", ""},
		{"/style.css", actNext, "", ""},
		{"/missing/page", actRun, "/index.wasm", ""},
		{"/api.wasmx", actRun, "/index.wasm", ""},
		{"/../../etc/passwd", actRun, "/index.wasm", ""},
	}
	for _, c := range cases {
		s, act := h.resolve(root, c.path)
		if act != c.act || s.name != c.name || s.pathInfo != c.pathInfo {
			t.Errorf("%s: got %v %q %q, want %v %q %q", c.path, act, s.name, s.pathInfo, c.act, c.name, c.pathInfo)
		}
	}

	// With split .php, a .wasm file is neither run nor served.
	php := &Handler{Index: "index.php", SplitPath: []string{".php"}}
	if _, act := php.resolve(root, "/raw/thing.wasm"); act != actForbidRaw {
		t.Errorf("raw .wasm with split .php: %v", act)
	}
	if s, act := php.resolve(root, "/app.php/x"); act != actRun || s.pathInfo != "/x" {
		t.Errorf("/app.php/x: %v %q", act, s.pathInfo)
	}
	// No index file and index off: pass to the next handler.
	off := &Handler{Index: indexOff, SplitPath: []string{".wasm"}}
	if _, act := off.resolve(root, "/missing"); act != actNext {
		t.Errorf("index off: %v", act)
	}
}
