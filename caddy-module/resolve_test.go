package wagi

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// kelvin is U+212A KELVIN SIGN: three bytes whose lower case is the one-byte `k`.
const kelvin = "\u212a"

// siteTree writes empty files (and the listed symlinks, name -> target) under a new root.
func siteTree(t testing.TB, files []string, links map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for _, f := range files {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

type resolveCase struct {
	path     string
	act      action
	name     string
	pathInfo string
}

func checkResolve(t *testing.T, h *Handler, root string, cases []resolveCase) {
	t.Helper()
	for _, c := range cases {
		s, act := h.resolve(root, h.Module, c.path)
		if act != c.act || s.name != c.name || s.pathInfo != c.pathInfo {
			t.Errorf("%q: got %v %q %q, want %v %q %q", c.path, act, s.name, s.pathInfo, c.act, c.name, c.pathInfo)
		}
	}
}

func TestResolve(t *testing.T) {
	root := siteTree(t, []string{"index.wasm", "api.wasm", "sub/index.wasm", "style.css", "raw/thing.wasm", "app.php",
		"up/" + kelvin + kelvin + kelvin + ".png"}, nil)
	h := &Handler{Index: defaultIndex, SplitPath: []string{".wasm"}}
	checkResolve(t, h, root, []resolveCase{
		{"/", actRun, "/index.wasm", ""},
		{"/api.wasm", actRun, "/api.wasm", ""},
		{"/api.wasm/users/7", actRun, "/api.wasm", "/users/7"},
		// The split matches case-insensitively, but no file API.WASM exists: front controller.
		{"/API.WASM/x", actRun, "/index.wasm", ""},
		{"/sub/", actRun, "/sub/index.wasm", ""},
		{"/sub", actRedirect, "", ""},
		{"/style.css", actNext, "", ""},
		{"/style.css/", actRun, "/index.wasm", ""},
		{"/missing/page", actRun, "/index.wasm", ""},
		{"/missing.wasm", actRun, "/index.wasm", ""},
		{"/api.wasmx", actRun, "/index.wasm", ""},
		{"/../../etc/passwd", actRun, "/index.wasm", ""},
		// Folding KELVIN SIGN to `k` shortens the path by six bytes, which moved the split
		// onto the `.png` file; and an invalid byte folds to a longer U+FFFD.
		{"/up/" + kelvin + kelvin + kelvin + ".png/.wasm", actRun, "/index.wasm", ""},
		{"/\xff\xff.wasm", actRun, "/index.wasm", ""},
		{"/\xff\xff.wasm/x", actRun, "/index.wasm", ""},
	})

	// With split .php, a .wasm file is neither run nor served.
	php := &Handler{Index: "index.php", SplitPath: []string{".php"}}
	if _, act := php.resolve(root, "", "/raw/thing.wasm"); act != actForbidRaw {
		t.Errorf("raw .wasm with split .php: %v", act)
	}
	if s, act := php.resolve(root, "", "/app.php/x"); act != actRun || s.pathInfo != "/x" {
		t.Errorf("/app.php/x: %v %q", act, s.pathInfo)
	}

	// Index off: a path naming a module that does not exist is a 404, not the end of the
	// route; other missing paths and static files pass on.
	off := &Handler{Index: indexOff, SplitPath: []string{".wasm"}}
	checkResolve(t, off, root, []resolveCase{
		{"/missing", actNext, "", ""},
		{"/style.css", actNext, "", ""},
		{"/missing.wasm", actMissing, "", ""},
		{"/MISSING.WASM/x", actMissing, "", ""},
		{"/up/" + kelvin + kelvin + kelvin + ".png/.wasm", actMissing, "", ""},
		{"/\xff\xff.wasm", actMissing, "", ""},
		{"/api.wasm", actRun, "/api.wasm", ""},
		{"/sub/", actNext, "", ""},
	})
	if s, _ := off.resolve(root, "", "/missing.wasm"); s.filename != filepath.Join(root, "missing.wasm") {
		t.Errorf("missing module logged as %q", s.filename)
	}
}

func TestResolveSymlinksLeavingTheRoot(t *testing.T) {
	outside := siteTree(t, []string{"secret.txt", "other.wasm", "dir/index.wasm"}, nil)
	root := siteTree(t, []string{"index.wasm", "api.wasm", "sub/index.wasm"}, map[string]string{
		"evil.wasm":  filepath.Join(outside, "other.wasm"),
		"pw":         filepath.Join(outside, "secret.txt"),
		"link":       outside,
		"outdir":     filepath.Join(outside, "dir"),
		"alias.wasm": "api.wasm",
		"sub2":       "sub",
		"raw.txt":    "index.wasm",
		"dangling":   filepath.Join(outside, "nothing"),
	})
	on := &Handler{Index: defaultIndex, SplitPath: []string{".wasm"}}
	checkResolve(t, on, root, []resolveCase{
		{"/evil.wasm", actOutside, "", ""},
		{"/evil.wasm/x", actOutside, "", ""},
		{"/link/other.wasm", actOutside, "", ""},
		// Not files of the site: the front controller takes them, never file_server.
		{"/outdir/", actRun, "/index.wasm", ""},
		{"/pw", actRun, "/index.wasm", ""},
		{"/link/secret.txt", actRun, "/index.wasm", ""},
		{"/dangling", actRun, "/index.wasm", ""},
		// Symlinks that stay inside the root work as their targets do.
		{"/alias.wasm/x", actRun, "/alias.wasm", "/x"},
		{"/sub2/", actRun, "/sub2/index.wasm", ""},
		{"/raw.txt", actForbidRaw, "", ""},
	})
	off := &Handler{Index: indexOff, SplitPath: []string{".wasm"}}
	checkResolve(t, off, root, []resolveCase{
		{"/pw", actOutside, "", ""},
		{"/link/secret.txt", actOutside, "", ""},
		{"/link/", actOutside, "", ""},
		{"/dangling", actNext, "", ""},
	})

	// A front controller that leads outside is not run either.
	escaping := siteTree(t, nil, map[string]string{"index.wasm": filepath.Join(outside, "other.wasm")})
	checkResolve(t, on, escaping, []resolveCase{{"/", actOutside, "", ""}, {"/anything", actOutside, "", ""}})

	// A fixed module named inside the root must stay inside; one configured outside runs.
	for module, want := range map[string]action{
		"evil.wasm":                          actOutside,
		filepath.Join(root, "evil.wasm"):     actOutside,
		"api.wasm":                           actRun,
		"nothere.wasm":                       actRun,
		filepath.Join(outside, "other.wasm"): actRun,
	} {
		h := &Handler{Module: module, Index: defaultIndex, SplitPath: []string{".wasm"}}
		if _, act := h.resolve(root, h.Module, "/x"); act != want {
			t.Errorf("module %q: %v, want %v", module, act, want)
		}
	}
}

func TestStatInRootWithASymlinkedRoot(t *testing.T) {
	// An atomic deploy swaps a symlink above the files: that is not leaving the root.
	real := siteTree(t, []string{"index.wasm"}, nil)
	root := filepath.Join(t.TempDir(), "current")
	if err := os.Symlink(real, root); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{root, filepath.Join(root, "index.wasm")} {
		if f, err := statInRoot(root, p); err != nil || !f.inside {
			t.Errorf("%s: %+v %v", p, f, err)
		}
	}
}

// FuzzResolve checks that no request path panics the resolver, and that every module it
// runs by splitting the path ends in a split extension at a segment end, with SCRIPT_NAME
// plus PATH_INFO giving back the path.
func FuzzResolve(f *testing.F) {
	for _, seed := range []string{"/", "/api.wasm/users/7", "/\xff\xff.wasm", "/up/" + kelvin + kelvin + kelvin + ".png/.wasm",
		"/API.WASM", "/a.wasm.wasm/b", "//.wasm", "/\u017f.wasm", "/sub/index.wasm/", "/up/" + kelvin + ".PHP/x", "", "*"} {
		f.Add(seed)
	}
	root := siteTree(f, []string{"index.wasm", "api.wasm", "sub/index.wasm", "up/" + kelvin + kelvin + kelvin + ".png",
		"up/" + kelvin + ".php", "a.wasm.wasm", ".wasm"}, nil)
	handlers := []*Handler{
		{Index: defaultIndex, SplitPath: []string{".wasm"}},
		{Index: indexOff, SplitPath: []string{".php", ".wasm"}},
	}
	f.Fuzz(func(t *testing.T, reqPath string) {
		for _, h := range handlers {
			s, act := h.resolve(root, h.Module, reqPath)
			if act != actRun || strings.HasSuffix(s.name, "/"+h.Index) && s.pathInfo == "" {
				continue
			}
			if s.name+s.pathInfo != reqPath || (s.pathInfo != "" && s.pathInfo[0] != '/') {
				t.Fatalf("%q split into %q + %q", reqPath, s.name, s.pathInfo)
			}
			if !h.runsAsModule(s.name) {
				t.Fatalf("%q runs %q, which has no split extension", reqPath, s.name)
			}
			if !within(root, s.filename) {
				t.Fatalf("%q runs %q outside the root", reqPath, s.filename)
			}
		}
	})
}

func FuzzSplitEnds(f *testing.F) {
	for _, seed := range []string{"/a.wasm/b", "/\xff.WASM", "/" + kelvin + ".wasm", "/x.wasm.wasm", "/.php/.wasm/"} {
		f.Add(seed)
	}
	exts := []string{".wasm", ".php"}
	f.Fuzz(func(t *testing.T, p string) {
		for end := range splitEnds(p, exts) {
			if end <= 0 || end > len(p) || (end < len(p) && p[end] != '/') {
				t.Fatalf("%q: split at %d", p, end)
			}
			if !hasSuffixASCIIFold(p[:end], ".wasm") && !hasSuffixASCIIFold(p[:end], ".php") {
				t.Fatalf("%q: %q does not end in a split extension", p, p[:end])
			}
			if !isASCII(p[end-4 : end]) {
				t.Fatalf("%q: non-ASCII bytes matched", p)
			}
		}
	})
}
