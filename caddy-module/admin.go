package wagi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-wagi/caddy-wagi/caddy-module/engine"
)

func init() {
	caddy.RegisterModule(Admin{})
}

// Admin is the admin API of the `wagi` app (module `admin.api.wagi`), on Caddy's admin
// endpoint:
//
//   - `GET /wagi/modules` lists the loaded modules and their long-lived instances;
//   - `POST /wagi/restart[?module=<path>]` drains the WCGI instances (of one module): those
//     busy finish their requests, the next request starts new ones;
//   - `POST /wagi/evict[?module=<path>]` drops loaded modules, so the next request loads
//     them again (from the disk cache when there is one).
//
// `<path>` is a module's path as the listing gives it.
type Admin struct{}

// CaddyModule returns the Caddy module information.
func (Admin) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.wagi",
		New: func() caddy.Module { return new(Admin) },
	}
}

// Routes returns the admin routes.
func (a *Admin) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: "/wagi/modules", Handler: caddy.AdminHandlerFunc(a.modules)},
		{Pattern: "/wagi/restart", Handler: caddy.AdminHandlerFunc(a.restart)},
		{Pattern: "/wagi/evict", Handler: caddy.AdminHandlerFunc(a.evict)},
	}
}

// moduleEntry is one loaded module in the listing.
type moduleEntry struct {
	Path string `json:"path"`
	// Sites are the site roots of its running WCGI instances.
	Sites []string `json:"sites"`
	// Mode is http for a wasi:http component, wcgi when the module exports wagi_wcgi or
	// has instances, else cgi.
	Mode string `json:"mode"`
	Size int64  `json:"size"`
	// Tier is the compile tier it serves with now: baseline (Winch) until the optimised
	// code (Cranelift) is ready; CompiledAt is when the code it serves with was ready.
	Tier       string          `json:"tier"`
	CompiledAt *time.Time      `json:"compiled_at,omitempty"`
	LastUsed   time.Time       `json:"last_used"`
	Instances  []instanceEntry `json:"instances"`
}

// instanceEntry is one running WCGI instance in the listing.
type instanceEntry struct {
	Site        string    `json:"site"`
	StartedAt   time.Time `json:"started_at"`
	Inflight    int       `json:"inflight"`
	MemoryBytes int64     `json:"memory_bytes"`
}

func (a *Admin) modules(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method not allowed")}
	}
	e, err := adminEngine()
	if err != nil {
		return err
	}
	list, err := e.List()
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(moduleEntries(list))
}

// moduleEntries joins the engine's modules with their instances.
func moduleEntries(list *engine.Listing) []moduleEntry {
	out := make([]moduleEntry, 0, len(list.Modules))
	for _, m := range list.Modules {
		entry := moduleEntry{Path: m.Path, Mode: "cgi", Size: m.Size, Tier: m.Tier, Sites: []string{},
			LastUsed: time.UnixMilli(m.LastUsed).UTC(), Instances: []instanceEntry{}}
		if ready := max(m.CodeReadyAt, m.LoadedAt); ready != 0 {
			at := time.UnixMilli(ready).UTC()
			entry.CompiledAt = &at
		}
		for _, i := range list.Instances {
			if i.Module != m.Path {
				continue
			}
			entry.Instances = append(entry.Instances, instanceEntry{Site: i.Site,
				StartedAt: time.UnixMilli(i.StartedAt).UTC(), Inflight: i.Inflight, MemoryBytes: i.MemoryBytes})
			entry.Sites = appendOnce(entry.Sites, i.Site)
		}
		if m.WCGIExport || len(entry.Instances) > 0 {
			entry.Mode = "wcgi"
		}
		if m.Component {
			entry.Mode = "http"
		}
		out = append(out, entry)
	}
	return out
}

func appendOnce(list []string, s string) []string {
	for _, v := range list {
		if v == s {
			return list
		}
	}
	return append(list, s)
}

func (a *Admin) restart(w http.ResponseWriter, r *http.Request) error {
	return a.byModule(w, r, "restarted", (*engine.Engine).Restart)
}

func (a *Admin) evict(w http.ResponseWriter, r *http.Request) error {
	return a.byModule(w, r, "evicted", (*engine.Engine).Evict)
}

// byModule runs a POST action on the module named by the `module` query parameter (all
// modules without it) and answers how many things it touched.
func (a *Admin) byModule(w http.ResponseWriter, r *http.Request, what string, f func(*engine.Engine, string) (int, error)) error {
	if r.Method != http.MethodPost {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method not allowed")}
	}
	e, err := adminEngine()
	if err != nil {
		return err
	}
	n, err := f(e, r.URL.Query().Get("module"))
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(map[string]int{what: n})
}

// adminEngine is the running config's engine, or an API error saying there is none.
func adminEngine() (*engine.Engine, error) {
	if e := runningEngine(); e != nil {
		return e, nil
	}
	return nil, caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: fmt.Errorf("no wagi app is running")}
}

// Interface guards
var _ caddy.AdminRouter = (*Admin)(nil)
