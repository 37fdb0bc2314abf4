// Package wagi is the Caddy handler `http.handlers.wagi`: it runs WebAssembly (WASI) modules
// as CGI programs inside Caddy, the way php_server runs PHP scripts.
package wagi

import (
	"fmt"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-wagi/caddy-wagi/caddy-module/engine"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler runs WASI modules as CGI programs.
//
// Without `module`, it serves the site root like php_server serves PHP: a request for an
// existing `.wasm` file runs it, `/dir/` runs `/dir/index.wasm`, `/api.wasm/users/7` runs
// `api.wasm` with PATH_INFO `/users/7`, existing static files pass to the next handler, and
// any other path runs the front controller `index.wasm`. With `module`, every request the
// handler gets runs that one module.
type Handler struct {
	// Module runs this one wasm file for every request, instead of mapping request paths to
	// files. A relative path is relative to the site root.
	Module string `json:"module,omitempty"`

	// Root is the site root: where modules are found, and the directory mounted read-only
	// into the guest at its own absolute path. Default: `{http.vars.root}` (set by the
	// `root` directive), else the current directory.
	Root string `json:"root,omitempty"`

	// Index is the file run for directory requests and as the front controller for paths
	// that match no file. Default: `index.wasm`. `off` disables both.
	Index string `json:"index,omitempty"`

	// SplitPath lists the extensions that end a script's path in a request path; what
	// follows is PATH_INFO. They match regardless of ASCII case and must be ASCII.
	// Default: [".wasm"]. Files ending in `.wasm` are never served raw.
	SplitPath []string `json:"split_path,omitempty"`

	// Env is extra environment for the guest; values may contain placeholders. It overrides
	// the CGI variables of the same name.
	Env map[string]string `json:"env,omitempty"`

	// Timeout is the wall-clock limit of one guest run. Default: 30s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// MemoryBytes caps the guest's linear memory, in bytes. Default: 128 MiB.
	MemoryBytes int64 `json:"memory_bytes,omitempty"`

	// MaxWait is how long a request waits in all for a free guest slot, first one of this
	// handler's (MaxInstances), then one of the process's (the app's instance_slots),
	// before a 503. Time spent waiting for its module to load does not count. Default: 5s.
	MaxWait caddy.Duration `json:"max_wait,omitempty"`

	// MaxBody is the largest request body accepted, in bytes; larger ones answer 413,
	// chunked bodies as soon as they pass it. Default: 10 MiB.
	MaxBody int64 `json:"max_body,omitempty"`

	// MaxInstances is how many guests this handler runs at once; more requests wait up to
	// MaxWait. Default: 2 x the number of CPUs.
	MaxInstances int `json:"max_instances,omitempty"`

	// CacheDir holds precompiled modules, so a restart does not compile again. Default:
	// `wagi/cache` under Caddy's data directory. `off` compiles in memory only.
	CacheDir string `json:"cache_dir,omitempty"`

	// CacheMaxAge is how long a file in CacheDir may go unused before it is removed, so
	// the cache does not keep every version ever deployed. Default: 30 days (720h).
	CacheMaxAge caddy.Duration `json:"cache_max_age,omitempty"`

	// Keepalive is how long an unused module stays loaded in memory. Default: 10m.
	Keepalive caddy.Duration `json:"keepalive,omitempty"`

	// Precompile loads every module under the root in the background when the config
	// loads (or, when the root is only known per request, at the first request), so first
	// visitors do not wait for a compile.
	Precompile bool `json:"precompile,omitempty"`

	// Mode is how modules serve requests: `cgi` (a fresh instance per request), `wcgi`
	// (long-lived instances speaking go-wagi's yamux + HTTP/1.1 protocol on stdio), `http`
	// (a wasi:http/proxy component, a fresh instance per request) or `auto`: `http` for
	// components, WCGI for modules that export `wagi_wcgi`, else CGI. Default: auto.
	Mode string `json:"mode,omitempty"`

	// Instances is how many long-lived instances each WCGI module runs; requests are
	// spread over them. Default: 1.
	Instances int `json:"instances,omitempty"`

	// Argv is the guest's argument list, argv[0] first; words may contain placeholders.
	// It lets an interpreter built for WASI run a script: `python.wasm /app/main.py`.
	// Default: the module's host path alone.
	Argv []string `json:"argv,omitempty"`

	// Entrypoint is the exported function a run starts at instead of `_start` (a module
	// built as a WASI reactor is initialised with `_initialize` first). Default: `_start`.
	Entrypoint string `json:"entrypoint,omitempty"`

	// Stderr is what becomes of the guest's stderr: `log` (each line logged at info
	// level, up to 64 KiB per request, or per second for a WCGI instance) or `discard`.
	// Default: log, unless `env WASI_DEBUG` is set: then, as in go-wagi, only a true value
	// (1, t, true) logs.
	Stderr string `json:"stderr,omitempty"`

	// Mounts are host directories the guest may see. The site root is mounted read-only
	// at its own path unless a mount places something there.
	Mounts []Mount `json:"mounts,omitempty"`

	// Network turns on outbound connections for guests (go-wagi's /dev/tcp files) with
	// allow/deny rules; off (no /dev at all) when absent, unless Env holds go-wagi's
	// WASI_NET rule string. See Network.
	Network *Network `json:"network,omitempty"`

	engine *engine.Engine
	site   *engine.Site
	logger *zap.Logger
	// requestEnv are the Env keys whose values hold placeholders, sorted: those the
	// request record carries; the others are the site's.
	requestEnv []string
	// module is Module prepared for requests (placeholders).
	module modulePath
	// requestArgs is set when Argv holds placeholders: each request carries its own.
	requestArgs bool
	serverSoft  string
	slots       engine.Slots
	warmed      *warmedRoots
	loads       *singleLoad
	background  *background
}

// Defaults, documented on the fields above.
const (
	defaultRoot    = "{http.vars.root}"
	defaultIndex   = "index.wasm"
	defaultTimeout = 30 * time.Second
	defaultMemory  = 128 << 20
	defaultMaxWait = 5 * time.Second
	defaultMaxBody = 10 << 20
	defaultKeep    = 10 * time.Minute
	defaultMaxAge  = 30 * 24 * time.Hour
	cacheOff       = "off"
	stderrLog      = "log"
	stderrDiscard  = "discard"
	indexOff       = "off"
)

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.wagi",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets defaults and takes the engine from the `wagi` app.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.Root == "" {
		h.Root = defaultRoot
	}
	if h.Index == "" {
		h.Index = defaultIndex
	}
	if len(h.SplitPath) == 0 {
		h.SplitPath = []string{".wasm"}
	}
	for i, ext := range h.SplitPath {
		h.SplitPath[i] = lowerASCII(ext)
	}
	if h.Timeout == 0 {
		h.Timeout = caddy.Duration(defaultTimeout)
	}
	if h.MemoryBytes == 0 {
		h.MemoryBytes = defaultMemory
	}
	if h.MaxWait == 0 {
		h.MaxWait = caddy.Duration(defaultMaxWait)
	}
	if h.MaxBody == 0 {
		h.MaxBody = defaultMaxBody
	}
	if h.MaxInstances == 0 {
		h.MaxInstances = 2 * runtime.NumCPU()
	}
	if h.CacheDir == "" {
		h.CacheDir = filepath.Join(caddy.AppDataDir(), "wagi", "cache")
	}
	if h.Mode == "" {
		h.Mode = "auto"
	}
	if h.Instances == 0 {
		h.Instances = 1
	}
	if h.Stderr == "" {
		h.Stderr = defaultStderr(h.Env)
	}
	if h.Keepalive == 0 {
		h.Keepalive = caddy.Duration(defaultKeep)
	}
	if h.CacheMaxAge == 0 {
		h.CacheMaxAge = caddy.Duration(defaultMaxAge)
	}
	if err := h.provisionMounts(); err != nil {
		return err
	}
	h.requestEnv = placeholderKeys(h.Env)
	h.module = newModulePath(h.Module)
	h.requestArgs = slices.ContainsFunc(h.Argv, hasPlaceholder)
	simple, _ := caddy.Version()
	h.serverSoft = "Caddy/" + simple
	h.slots = engine.NewSlots(h.MaxInstances)
	h.warmed = newWarmedRoots(maxWarmRoots)
	h.loads = &singleLoad{running: map[string]chan struct{}{}}
	h.background = newBackground(ctx)
	if err := h.useApp(ctx); err != nil {
		return err
	}
	if err := h.provisionSite(); err != nil {
		return err
	}
	if h.Precompile && !hasPlaceholder(h.Root) {
		if root, err := filepath.Abs(h.Root); err == nil {
			h.warmUp(root)
		}
	}
	return nil
}

// Validate checks the configuration.
func (h *Handler) Validate() error {
	for _, ext := range h.SplitPath {
		if !strings.HasPrefix(ext, ".") || strings.Contains(ext, "/") || !isASCII(ext) {
			return fmt.Errorf("wagi: split extension %q must start with a dot and be ASCII without a slash", ext)
		}
	}
	if h.Timeout < 0 || h.MemoryBytes < 0 || h.MaxWait < 0 || h.MaxBody < 0 || h.MaxInstances < 0 || h.Keepalive < 0 || h.CacheMaxAge < 0 {
		return fmt.Errorf("wagi: timeout, memory, max_wait, max_body, max_instances, keepalive and cache_max_age must not be negative")
	}
	if !validMode(h.Mode) {
		return fmt.Errorf("wagi: mode %q: want %s", h.Mode, modeChoices)
	}
	if h.Entrypoint != "" && (hasPlaceholder(h.Entrypoint) || strings.ContainsAny(h.Entrypoint, " \t\x00")) {
		return fmt.Errorf("wagi: entrypoint %q must name an exported function, without placeholders", h.Entrypoint)
	}
	if h.Stderr != stderrLog && h.Stderr != stderrDiscard {
		return fmt.Errorf("wagi: stderr %q: want log or discard", h.Stderr)
	}
	if h.Index != indexOff && strings.ContainsRune(h.Index, filepath.Separator) && filepath.IsAbs(h.Index) {
		return fmt.Errorf("wagi: index %q must be relative to the root", h.Index)
	}
	return h.Network.validate(h.Env)
}

// useApp takes the engine from the `wagi` app (Caddy loads it with its defaults when the
// config has none) and checks this handler's limits against the app's.
func (h *Handler) useApp(ctx caddy.Context) error {
	app, err := ctx.App("wagi")
	if err != nil {
		return fmt.Errorf("wagi: %w", err)
	}
	a := app.(*App)
	if err := a.checkMemory(h.MemoryBytes); err != nil {
		return err
	}
	h.engine = a.engine
	return nil
}

// Cleanup stops this handler's background work and waits for it (at most the module
// being precompiled), then lets go of its site, which is freed once its running requests
// are done. The engine belongs to the app.
func (h *Handler) Cleanup() error {
	if h.background != nil {
		h.background.close()
	}
	if h.site != nil {
		h.site.Close()
	}
	return nil
}

// ServeHTTP runs the module a request maps to, or passes the request on.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	root, err := siteRoot(repl, h.Root)
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	if h.Precompile {
		h.warmUp(root)
	}
	module, err := h.module.forRequest(repl)
	if err != nil {
		h.logger.Warn("no module for this request", zap.String("module", h.Module), zap.Error(err))
		return caddyhttp.Error(http.StatusNotFound, fmt.Errorf("wagi: %w", err))
	}
	target, act := h.resolve(root, module, r.URL.Path)
	switch act {
	case actNext:
		return next.ServeHTTP(w, r)
	case actForbidRaw:
		return caddyhttp.Error(http.StatusNotFound, fmt.Errorf("wagi: not serving module bytes of %s", r.URL.Path))
	case actMissing:
		h.logger.Info("module file missing", zap.String("module", target.filename), zap.String("path", r.URL.Path))
		return caddyhttp.Error(http.StatusNotFound, fmt.Errorf("wagi: no module %s", target.filename))
	case actOutside:
		h.logger.Warn("not following a symlink out of the site root", zap.String("module", target.filename), zap.String("root", root))
		return caddyhttp.Error(http.StatusNotFound, fmt.Errorf("wagi: %s leads outside the site root", target.filename))
	case actRedirect:
		to := r.URL.Path + "/"
		if r.URL.RawQuery != "" {
			to += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, to, http.StatusPermanentRedirect)
		return nil
	}
	return h.run(w, r, repl, root, target)
}

// defaultStderr is what a site without `stderr` does with guest stderr: log it, unless
// its env sets WASI_DEBUG (go-wagi's switch), which logs it only when true.
func defaultStderr(env map[string]string) string {
	v, ok := env["WASI_DEBUG"]
	if !ok {
		return stderrLog
	}
	if on, err := strconv.ParseBool(v); err == nil && on {
		return stderrLog
	}
	return stderrDiscard
}

// siteRoot is the absolute site root for a request: root with its placeholders replaced,
// empty meaning the current directory.
func siteRoot(repl *caddy.Replacer, root string) (string, error) {
	return filepath.Abs(repl.ReplaceAll(root, "."))
}

// modeChoices lists the values of `mode`, for error messages.
const modeChoices = "auto, cgi, wcgi or http"

// validMode reports whether m is a value of `mode`.
func validMode(m string) bool {
	switch m {
	case "auto", "cgi", "wcgi", "http":
		return true
	}
	return false
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
