package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// world is what every test shares: the Caddy binary, the compiled guests, and one Caddy
// serving the sites below.
var world struct {
	caddy   string
	work    string
	hello   string // the seed example (examples/hello), compiled
	probe   string // tests/guests/probe, compiled
	wcgi    string // tests/guests/wcgi, compiled
	proc    *caddyProc
	sites   map[string]string // site name -> base URL
	sitesCf string            // the Caddyfile the shared Caddy runs
}

// unknownImportModule is a minimal WASI command that imports env.nope, which no host
// provides: (module (import "env" "nope" (func)) (func (export "_start"))).
var unknownImportModule = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
	0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type section: () -> ()
	0x02, 0x0c, 0x01, 0x03, 'e', 'n', 'v', 0x04, 'n', 'o', 'p', 'e', 0x00, 0x00, // import env.nope
	0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
	0x07, 0x0a, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x01, // export _start = func 1
	0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // code: empty body
}

// withCustomSection appends a custom section, giving a module new bytes (and so a new
// content hash) with the same behaviour.
func withCustomSection(module []byte, name string) []byte {
	payload := append([]byte{byte(len(name))}, name...)
	out := append([]byte{}, module...)
	return append(append(out, 0x00, byte(len(payload))), payload...)
}

// hostSecret is set in Caddy's environment; no guest may see it.
const hostSecret = "WAGI_TEST_HOST_SECRET=hunter2"

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "test setup:", err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	var err error
	world.work, err = os.MkdirTemp("", "wagi-tests-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(world.work)
	if world.caddy, err = caddyBinary(); err != nil {
		return 1, err
	}
	world.hello = filepath.Join(world.work, "guests", "hello.wasm")
	world.probe = filepath.Join(world.work, "guests", "probe.wasm")
	if err := buildGuest(filepath.Join(repoRoot, "examples"), "./hello", world.hello); err != nil {
		return 1, err
	}
	if err := buildGuest(filepath.Join(repoRoot, "tests"), "./guests/probe", world.probe); err != nil {
		return 1, err
	}
	world.wcgi = filepath.Join(world.work, "guests", "wcgi.wasm")
	if err := buildGuest(filepath.Join(repoRoot, "tests"), "./guests/wcgi", world.wcgi); err != nil {
		return 1, err
	}
	if err := layoutSites(filepath.Join(world.work, "sites")); err != nil {
		return 1, err
	}
	admin, err := freePort()
	if err != nil {
		return 1, err
	}
	world.sites = map[string]string{}
	var cf strings.Builder
	// skip_install_trust: the `tls internal` site must not touch the machine's trust store.
	fmt.Fprintf(&cf, "{\n\tadmin 127.0.0.1:%d\n\tauto_https disable_redirects\n\tskip_install_trust\n}\n", admin)
	for _, s := range sharedSites {
		port, err := freePort()
		if err != nil {
			return 1, err
		}
		scheme := "http"
		if strings.HasPrefix(s.name, "tls") {
			scheme = "https"
		}
		world.sites[s.name] = fmt.Sprintf("%s://127.0.0.1:%d", scheme, port)
		root := filepath.Join(world.work, "sites", s.name)
		body := strings.ReplaceAll(s.body, "$SITES", filepath.Join(world.work, "sites"))
		fmt.Fprintf(&cf, "\n%s {\n\troot * %s\n%s\n}\n", world.sites[s.name], root, body)
	}
	world.sitesCf = cf.String()
	world.proc, err = startCaddy(world.caddy, world.work, world.sitesCf, fmt.Sprintf("127.0.0.1:%d", admin), hostSecret)
	if err != nil {
		return 1, err
	}
	defer world.proc.Stop()
	defer stopFilewide()
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "--- caddy log ---\n%s\n", world.proc.logs)
	}
	return code, nil
}

// sharedSites are the sites of the shared Caddy; each name is a directory under sites/.
var sharedSites = []struct{ name, body string }{
	{"seed", "\twagi"},
	{"probe", "\twagi {\n\t\tenv APP_MODE test\n\t\tenv CLIENT_HOST {http.request.remote.host}\n\t}\n\tfile_server"},
	{"gowagi", "\twagi {\n\t\tindex index.php\n\t\tsplit .php\n\t}\n\tfile_server"},
	{"fixed", "\twagi /api/* ./probe.wasm\n\tfile_server"},
	{"limits", "\twagi {\n\t\ttimeout 1s\n\t\tmemory 64MiB\n\t\tmax_body 1MiB\n\t}"},
	{"reload", "\twagi {\n\t\tmax_wait 2m\n\t}"}, // see wcgireload
	{"broken", "\twagi"},
	{"missing", "\twagi /api/* ./nothere.wasm"},
	{"idle", "\twagi {\n\t\tkeepalive 1s\n\t}"},
	{"single", "\twagi {\n\t\tmax_wait 2m\n\t}"},
	{"mounts", "\twagi {\n\t\tmount $SITES/mountdata /data rw\n\t}"},
	{"warm", "\twagi {\n\t\troot $SITES/warm\n\t\tprecompile\n\t}"},
	{"busy", "\twagi {\n\t\tmax_instances 1\n\t\tmax_wait 300ms\n\t}"},
	{"halfwritten", "\twagi"},
	{"tls", "\ttls internal\n\twagi"},
	{"wcgi", "\twagi {\n\t\tinstances 2\n\t}"},
	{"wcgicgi", "\twagi {\n\t\tmode cgi\n\t}"},
	{"wcgishort", "\twagi {\n\t\ttimeout 1s\n\t\tkeepalive 1s\n\t}"},
	// Requests wait for slots while a new version loads; a busy CI machine must not turn
	// that wait into 503s, which would hide what the test looks at.
	{"wcgireload", "\twagi {\n\t\tmax_wait 2m\n\t}"},
}

// layoutSites writes each site's files.
func layoutSites(dir string) error {
	files := map[string]string{
		"seed/index.wasm":        world.hello,
		"probe/index.wasm":       world.probe,
		"probe/api.wasm":         world.probe,
		"probe/sub/index.wasm":   world.probe,
		"gowagi/index.php":       world.hello,
		"gowagi/other.wasm":      world.probe,
		"fixed/probe.wasm":       world.probe,
		"limits/index.wasm":      world.probe,
		"reload/index.wasm":      world.hello,
		"reload/v2.wasm":         world.probe,
		"broken/index.wasm":      world.probe,
		"idle/index.wasm":        world.probe,
		"mounts/index.wasm":      world.probe,
		"busy/index.wasm":        world.probe,
		"wcgi/index.wasm":        world.wcgi,
		"halfwritten/index.wasm": world.probe,
		"tls/index.wasm":         world.probe,
		"wcgicgi/index.wasm":     world.wcgi,
		"wcgishort/index.wasm":   world.wcgi,
		"wcgireload/index.wasm":  world.wcgi,
	}
	texts := map[string]string{
		"probe/hello.txt":       "static hello\n",
		"probe/data/inside.txt": "inside the root\n",
		"gowagi/style.css":      "body{}\n",
		"fixed/static.txt":      "static fixed\n",
		"broken/notwasm.wasm":   "this is not wasm\n",
		"broken/import.wasm":    string(unknownImportModule),
		"mountdata/.keep":       "",
	}
	for name, from := range files {
		b, err := os.ReadFile(from)
		if err != nil {
			return err
		}
		texts[name] = string(b)
	}
	probe, err := os.ReadFile(world.probe)
	if err != nil {
		return err
	}
	// A probe no other site has: its first requests must compile it.
	texts["single/index.wasm"] = string(withCustomSection(probe, "wagi-test-single"))
	texts["warm/api/other.wasm"] = string(withCustomSection(probe, "wagi-test-warm"))
	wcgi, err := os.ReadFile(world.wcgi)
	if err != nil {
		return err
	}
	texts["wcgireload/v2.wasm"] = string(withCustomSection(wcgi, "wagi-test-wcgi-v2"))
	for name, content := range texts {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	if err := os.Symlink("/etc", filepath.Join(dir, "mounts", "escape")); err != nil {
		return err
	}
	return nil
}

// site returns the base URL of a shared site.
func site(name string) string { return world.sites[name] }
