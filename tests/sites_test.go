package tests

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sitesConfig is a Caddyfile with two sites serving the same WCGI module from the same
// root, with different env and mounts: `ro` (read-only data) and `rw` (writable).
func sitesConfig(admin, portRO, portRW int, root, data, modeRO, modeRW string) string {
	return fmt.Sprintf(`{
	admin 127.0.0.1:%[1]d
}
http://127.0.0.1:%[2]d {
	root * %[3]s
	wagi {
		env APP_MODE %[4]s
		mount %[5]s /data ro
	}
}
http://127.0.0.1:%[6]d {
	root * %[3]s
	wagi {
		env APP_MODE %[7]s
		mount %[5]s /data rw
	}
}
`, admin, portRO, root, modeRO, data, portRW, modeRW)
}

type twoSites struct {
	proc           *caddyProc
	admin, ro, rw  int
	root, data     string
	module         string
	modeRO, modeRW string
}

func startTwoSites(t *testing.T) *twoSites {
	t.Helper()
	dir := t.TempDir()
	s := &twoSites{root: filepath.Join(dir, "site"), data: filepath.Join(dir, "data"), modeRO: "site-ro", modeRW: "site-rw"}
	s.module = filepath.Join(s.root, "index.wasm")
	copyFile(t, world.wcgi, s.module)
	if err := os.MkdirAll(s.data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*int{&s.admin, &s.ro, &s.rw} {
		var err error
		if *p, err = freePort(); err != nil {
			t.Fatal(err)
		}
	}
	proc, err := startCaddy(world.caddy, dir, s.config(), fmt.Sprintf("127.0.0.1:%d", s.admin))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proc.Stop)
	s.proc = proc
	return s
}

func (s *twoSites) config() string {
	return sitesConfig(s.admin, s.ro, s.rw, s.root, s.data, s.modeRO, s.modeRW)
}

func (s *twoSites) url(port int, path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", port, path)
}

// env is the instance environment's APP_MODE line of the site at port.
func (s *twoSites) appMode(t *testing.T, port int) string {
	t.Helper()
	r := get(t, s.url(port, "/env"))
	for _, line := range strings.Split(string(r.body), "\n") {
		if v, ok := strings.CutPrefix(line, "APP_MODE="); ok {
			return v
		}
	}
	t.Fatalf("no APP_MODE in the instance env: %d %q", r.status, r.body)
	return ""
}

func (s *twoSites) write(t *testing.T, port int, name string) int {
	t.Helper()
	return get(t, s.url(port, "/write?path=/data/"+name+"&text=x")).status
}

// Each site that serves the same WCGI file gets instances of its own, with its own env
// and mounts, whichever site is asked first.
func TestSitesSharingAWCGIModuleKeepTheirOwnEnvAndMounts(t *testing.T) {
	for _, rwFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("rw first %v", rwFirst), func(t *testing.T) {
			s := startTwoSites(t)
			order := []int{s.ro, s.rw}
			if rwFirst {
				order = []int{s.rw, s.ro}
			}
			for _, port := range order {
				get(t, s.url(port, "/mode"))
			}
			if got := s.appMode(t, s.ro); got != s.modeRO {
				t.Errorf("ro site's instance has APP_MODE %q", got)
			}
			if got := s.appMode(t, s.rw); got != s.modeRW {
				t.Errorf("rw site's instance has APP_MODE %q", got)
			}
			if st := s.write(t, s.ro, "from-ro"); st != http.StatusForbidden {
				t.Errorf("the read-only site could write its data mount: %d", st)
			}
			if st := s.write(t, s.rw, "from-rw"); st != http.StatusOK {
				t.Errorf("the read-write site could not write: %d", st)
			}
			if _, err := os.Stat(filepath.Join(s.data, "from-ro")); err == nil {
				t.Error("a file written through the read-only site exists")
			}
			ro, rw := get(t, s.url(s.ro, "/mode")), get(t, s.url(s.rw, "/mode"))
			if string(ro.body) == string(rw.body) {
				t.Errorf("both sites are served by one instance: %q", ro.body)
			}
		})
	}
}

// A reload that changes a site's env reaches its WCGI instances without touching the
// wasm and without compiling it again; a reload that changes nothing keeps the instance.
func TestReloadWithChangedEnvRestartsOnlyThatSitesInstances(t *testing.T) {
	s := startTwoSites(t)
	before := get(t, s.url(s.ro, "/mode"))
	rwBefore := get(t, s.url(s.rw, "/mode"))
	loads := s.proc.logs.Count("module ready from", s.module)
	if loads == 0 {
		t.Fatal("no load of the module logged")
	}

	if err := s.proc.Reload(s.config()); err != nil {
		t.Fatal(err)
	}
	if same := get(t, s.url(s.ro, "/mode")); string(same.body) != string(before.body) {
		t.Errorf("an unchanged reload replaced the instance: %q -> %q", before.body, same.body)
	}

	s.modeRO = "site-ro-v2"
	if err := s.proc.Reload(s.config()); err != nil {
		t.Fatal(err)
	}
	if got := s.appMode(t, s.ro); got != "site-ro-v2" {
		t.Errorf("after the reload the instance still has APP_MODE %q", got)
	}
	if after := get(t, s.url(s.rw, "/mode")); string(after.body) != string(rwBefore.body) {
		t.Errorf("the unchanged site's instance was replaced: %q -> %q", rwBefore.body, after.body)
	}
	if n := s.proc.logs.Count("module ready from", s.module); n != loads {
		t.Errorf("the module was loaded %d more times across reloads", n-loads)
	}
}
