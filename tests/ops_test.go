package tests

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Operating caddy-wagi as a Caddy plugin: Prometheus metrics on the admin endpoint, the
// admin API under /wagi/, and structured engine logs.

// startOpsCaddy runs a Caddy with metrics on, a CGI site (the probe) and a WCGI site; sites
// adds more (those named wcgi* run the WCGI guest, the others the probe). Its modules share one disk cache, so each test's Caddy compiles nothing new.
func startOpsCaddy(t *testing.T, sites map[string]string) *ownCaddy {
	t.Helper()
	dir := t.TempDir()
	all := map[string]string{"cgi": "\twagi", "wcgi": "\twagi"}
	for name, body := range sites {
		all[name] = body
	}
	for name, body := range all {
		guest := world.probe
		if strings.HasPrefix(name, "wcgi") {
			guest = world.wcgi
		}
		copyFile(t, guest, filepath.Join(dir, name, "index.wasm"))
		if body == "\twagi" {
			all[name] = "\twagi {\n\t\tcache_dir " + opsCache() + "\n\t}"
		}
	}
	return startOwnCaddy(t, dir, "\tmetrics\n", all)
}

func opsCache() string { return filepath.Join(world.work, "ops-cache") }

// adminCall sends method to the admin endpoint's path and returns the status and body.
func adminCall(t *testing.T, c *ownCaddy, method, path string) (int, string) {
	t.Helper()
	return procAdminCall(t, c.proc, method, path)
}

// procAdminCall calls the admin API of any Caddy the tests started.
func procAdminCall(t *testing.T, p *caddyProc, method, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+p.adminAddr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Caddy's admin API refuses requests whose Origin or Host it does not know.
	req.Host = p.adminAddr
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// metricValue is the value of the sample whose name and labels start with series (as
// Prometheus' text format writes them, labels sorted), or -1 when there is none.
func metricValue(text, series string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, series); ok && strings.HasPrefix(rest, " ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

func TestMetricsCountRequestsByModuleStatusAndKind(t *testing.T) {
	c := startOpsCaddy(t, nil)
	for i := 0; i < 2; i++ {
		if r := get(t, c.urls["cgi"]+"/?do=status"); r.status != 201 {
			t.Fatalf("do=status: %d %q", r.status, r.body)
		}
	}
	// The front controller serves any path: the path must not become a label.
	if r := get(t, c.urls["cgi"]+"/some/unique-path-9931?do=x"); r.status != 200 {
		t.Fatalf("front controller: %d", r.status)
	}
	failed := get(t, c.urls["cgi"]+"/?do=panic")
	if failed.status < 500 {
		t.Fatalf("do=panic answered %d", failed.status)
	}
	if r := get(t, c.urls["wcgi"]+"/hello1"); r.status != 200 {
		t.Fatalf("wcgi: %d", r.status)
	}

	status, text := adminCall(t, c, http.MethodGet, "/metrics")
	if status != 200 {
		t.Fatalf("/metrics: %d %s", status, text)
	}
	checks := []struct {
		series string
		want   func(float64) bool
		what   string
	}{
		{`wagi_requests_total{kind="none",module="index.wasm",status="201"}`, func(v float64) bool { return v == 2 }, "2"},
		{`wagi_requests_total{kind="none",module="index.wasm",status="200"}`, func(v float64) bool { return v == 2 }, "2 (probe do=x and the WCGI site)"},
		{`wagi_request_duration_seconds_count{module="index.wasm"}`, func(v float64) bool { return v == 5 }, "5"},
		{`wagi_modules_loaded`, func(v float64) bool { return v == 2 }, "2"},
		{`wagi_wcgi_instances_running`, func(v float64) bool { return v == 1 }, "1"},
		{`wagi_wcgi_instances_started_total`, func(v float64) bool { return v == 1 }, "1"},
		{`wagi_wcgi_memory_bytes`, func(v float64) bool { return v > 0 }, "> 0"},
		{`wagi_guests_running`, func(v float64) bool { return v == 0 }, "0"},
		{`wagi_guests_waiting`, func(v float64) bool { return v == 0 }, "0"},
	}
	for _, c := range checks {
		if v := metricValue(text, c.series); !c.want(v) {
			t.Errorf("%s = %v, want %s", c.series, v, c.what)
		}
	}
	// Two modules loaded: each came from the disk cache or was compiled.
	hits := metricValue(text, `wagi_disk_cache_lookups_total{result="hit"}`)
	misses := metricValue(text, `wagi_disk_cache_lookups_total{result="miss"}`)
	if hits+misses != 2 || metricValue(text, "wagi_compiles_total") != misses {
		t.Errorf("disk cache hits %v + misses %v != 2 loads, or compiles differ from misses:\n%s", hits, misses, grepLines(text, "wagi_"))
	}
	failure := regexp.MustCompile(`wagi_requests_total\{kind="([a-z_]+)",module="index.wasm",status="` + strconv.Itoa(failed.status) + `"\} 1`)
	if m := failure.FindStringSubmatch(text); m == nil || m[1] == "none" {
		t.Errorf("no failed request counted with status %d and a failure kind:\n%s", failed.status, grepLines(text, "wagi_requests_total"))
	}
	if strings.Contains(text, "unique-path-9931") {
		t.Errorf("a request path became a label")
	}
	// A reload registers the collectors in the new config's registry; counters go on.
	if err := c.proc.Reload(c.config); err != nil {
		t.Fatal(err)
	}
	get(t, c.urls["cgi"]+"/?do=status")
	_, text = adminCall(t, c, http.MethodGet, "/metrics")
	if v := metricValue(text, `wagi_requests_total{kind="none",module="index.wasm",status="201"}`); v != 3 {
		t.Errorf("after a reload: 201 count %v, want 3", v)
	}
}

// grepLines keeps the lines of text holding sub, for failure messages.
func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

type adminModule struct {
	Path       string     `json:"path"`
	Mode       string     `json:"mode"`
	Size       int64      `json:"size"`
	Sites      []string   `json:"sites"`
	CompiledAt *time.Time `json:"compiled_at"`
	LastUsed   time.Time  `json:"last_used"`
	Instances  []struct {
		Site      string    `json:"site"`
		StartedAt time.Time `json:"started_at"`
		Inflight  int       `json:"inflight"`
	} `json:"instances"`
}

func listModules(t *testing.T, c *ownCaddy) map[string]adminModule {
	t.Helper()
	return procModules(t, c.proc)
}

// procModules is listModules for any Caddy the tests started.
func procModules(t *testing.T, p *caddyProc) map[string]adminModule {
	t.Helper()
	status, body := procAdminCall(t, p, http.MethodGet, "/wagi/modules")
	if status != 200 {
		t.Fatalf("GET /wagi/modules: %d %s", status, body)
	}
	var list []adminModule
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("listing %q: %v", body, err)
	}
	out := map[string]adminModule{}
	for _, m := range list {
		out[m.Path] = m
	}
	return out
}

func TestAdminListsRestartsAndEvicts(t *testing.T) {
	c := startOpsCaddy(t, nil)
	cgiModule := filepath.Join(c.dir, "cgi", "index.wasm")
	wcgiModule := filepath.Join(c.dir, "wcgi", "index.wasm")
	get(t, c.urls["cgi"]+"/?do=x")
	_, firstID := instanceOf(t, c.urls["wcgi"])

	list := listModules(t, c)
	cgi, wcgi := list[cgiModule], list[wcgiModule]
	if cgi.Mode != "cgi" || cgi.Size == 0 || cgi.CompiledAt == nil || len(cgi.Instances) != 0 {
		t.Errorf("CGI module listed as %+v", cgi)
	}
	if wcgi.Mode != "wcgi" || len(wcgi.Instances) != 1 || wcgi.Instances[0].Site != filepath.Join(c.dir, "wcgi") {
		t.Fatalf("WCGI module listed as %+v (all: %v)", wcgi, list)
	}
	started := wcgi.Instances[0].StartedAt

	status, body := adminCall(t, c, http.MethodPost, "/wagi/restart?module="+wcgiModule)
	if status != 200 || !strings.Contains(body, `"restarted":1`) {
		t.Fatalf("restart: %d %s", status, body)
	}
	if _, id := instanceOf(t, c.urls["wcgi"]); id == firstID {
		t.Errorf("the same instance (%s) answered after a restart", id)
	}
	// Stopped by the host, not failed: one info line, no warning with a backtrace.
	if !c.proc.logs.WaitFor(5*time.Second, "WCGI instance stopped", `"module":"`+wcgiModule+`"`) {
		t.Errorf("no log line for the restarted instance's stop")
	}
	if n := c.proc.logs.Count("WCGI instance ended"); n != 0 {
		t.Errorf("%d warnings of an instance ending after a restart", n)
	}
	after := listModules(t, c)[wcgiModule]
	if len(after.Instances) != 1 || !after.Instances[0].StartedAt.After(started) {
		t.Errorf("instance start time %v after restart, was %v", after.Instances, started)
	}
	_, text := adminCall(t, c, http.MethodGet, "/metrics")
	if started, replaced := metricValue(text, "wagi_wcgi_instances_started_total"), metricValue(text, "wagi_wcgi_instances_replaced_total"); started != 2 || replaced != 1 {
		t.Errorf("after a restart: %v instances started, %v replaced; want 2 and 1", started, replaced)
	}
	if status, _ := adminCall(t, c, http.MethodGet, "/wagi/restart"); status != http.StatusMethodNotAllowed {
		t.Errorf("GET /wagi/restart: %d", status)
	}

	loads := c.proc.logs.Count("module ready from disk cache", cgiModule)
	status, body = adminCall(t, c, http.MethodPost, "/wagi/evict?module="+cgiModule)
	if status != 200 || !strings.Contains(body, `"evicted":1`) {
		t.Fatalf("evict: %d %s", status, body)
	}
	if _, ok := listModules(t, c)[cgiModule]; ok {
		t.Errorf("evicted module still listed")
	}
	get(t, c.urls["cgi"]+"/?do=x")
	if !c.proc.logs.WaitForCount(10*time.Second, loads+1, "module ready from disk cache", cgiModule) {
		t.Errorf("no load from the disk cache after evict")
	}
	if _, ok := listModules(t, c)[wcgiModule]; !ok {
		t.Errorf("evicting one module dropped another")
	}
}

// logLine is one JSON line of Caddy's log, with the fields these tests read.
type logLine struct {
	Msg    string `json:"msg"`
	Module string `json:"module"`
	Site   string `json:"site"`
	Line   string `json:"line"`
}

// logLines are the JSON lines of c's log whose text holds sub.
func logLines(c *ownCaddy, sub string) []logLine {
	var out []logLine
	sc := bufio.NewScanner(strings.NewReader(c.proc.logs.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if !strings.Contains(sc.Text(), sub) {
			continue
		}
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			out = append(out, l)
		}
	}
	return out
}

func TestEngineLogsCarryModuleAndSite(t *testing.T) {
	c := startOpsCaddy(t, map[string]string{
		"short": "\twagi {\n\t\tkeepalive 1s\n\t\tcache_dir " + opsCache() + "\n\t}",
	})
	wcgiModule := filepath.Join(c.dir, "wcgi", "index.wasm")
	get(t, c.urls["wcgi"]+"/stderr?msg=marker-4410")
	if !c.proc.logs.WaitFor(10*time.Second, "marker-4410") {
		t.Fatal("WCGI stderr not logged")
	}
	lines := logLines(c, "marker-4410")
	if len(lines) != 1 || lines[0].Msg != "guest stderr" || lines[0].Module != wcgiModule ||
		lines[0].Site != filepath.Join(c.dir, "wcgi") || lines[0].Line != "wcgi says marker-4410" {
		t.Errorf("WCGI stderr logged as %+v", lines)
	}

	get(t, c.urls["cgi"]+"/?do=stderr&msg=marker-4411")
	c.proc.logs.WaitFor(10*time.Second, "marker-4411")
	lines = logLines(c, "marker-4411")
	if len(lines) != 1 || lines[0].Module != filepath.Join(c.dir, "cgi", "index.wasm") || lines[0].Site != filepath.Join(c.dir, "cgi") {
		t.Errorf("CGI stderr logged as %+v", lines)
	}

	shortModule := filepath.Join(c.dir, "short", "index.wasm")
	get(t, c.urls["short"]+"/?do=x")
	if !c.proc.logs.WaitFor(15*time.Second, "dropped idle module", `"module":"`+shortModule+`"`) {
		t.Errorf("idle module not dropped, or its line lacks the module field")
	}
	for _, l := range logLines(c, "dropped idle module") {
		if l.Msg != "dropped idle module" || l.Module == "" {
			t.Errorf("engine line %+v: module belongs in its field", l)
		}
	}
}

// `stderr discard` and go-wagi's `env WASI_DEBUG` decide whether guest stderr is logged.
func TestStderrSubdirectiveAndWasiDebug(t *testing.T) {
	body := func(extra string) string {
		return "\twagi {\n\t\tcache_dir " + opsCache() + "\n" + extra + "\n\t}"
	}
	c := startOpsCaddy(t, map[string]string{
		"discard":  body("\t\tstderr discard"),
		"debugoff": body("\t\tenv WASI_DEBUG false"),
		"debugon":  body("\t\tenv WASI_DEBUG true"),
		"override": body("\t\tenv WASI_DEBUG false\n\t\tstderr log"),
		// A long-lived instance's stderr, its start-up lines included.
		"wcgiquiet": body("\t\tstderr discard"),
	})
	quiet := get(t, c.urls["wcgiquiet"]+"/stderr?msg=mark-wcgiquiet")
	if mode, _ := instanceOf(t, c.urls["wcgiquiet"]); quiet.status != 200 || mode != "wcgi" {
		t.Fatalf("wcgiquiet: %d, mode %q", quiet.status, mode)
	}
	for _, name := range []string{"discard", "debugoff", "debugon", "override", "cgi"} {
		get(t, c.urls[name]+"/?do=stderr&msg=mark-"+name)
	}
	// Lines reach the log in order: once the last site's is in, the others would be too.
	c.proc.logs.WaitFor(10*time.Second, "probe says mark-cgi")
	quietModule := filepath.Join(c.dir, "wcgiquiet", "index.wasm")
	for _, l := range logLines(c, "guest stderr") {
		if l.Module == quietModule {
			t.Errorf("the WCGI site with stderr discard logged %q", l.Line)
		}
	}
	for name, want := range map[string]int{"discard": 0, "debugoff": 0, "debugon": 1, "override": 1, "cgi": 1} {
		if n := len(logLines(c, "probe says mark-"+name)); n != want {
			t.Errorf("site %s: %d stderr lines logged, want %d", name, n, want)
		}
	}
}
