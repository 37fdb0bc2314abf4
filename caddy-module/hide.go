package wagi

import (
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(HideModule{})
}

// HideModule answers 404 for requests that reach the file of one module, so that a
// file_server in the same site never serves that module's bytes. The `wagi <matcher>
// <module>` directive adds it after its own route: the requests its matcher leaves may
// name the module's file, however the module was configured (relative, absolute, or
// through a symlinked directory).
type HideModule struct {
	// Module is the module file; a relative path is relative to Root.
	Module string `json:"module"`

	// Root is the site root. Default: `{http.vars.root}` (set by the `root` directive),
	// else the current directory.
	Root string `json:"root,omitempty"`

	logger *zap.Logger
	base   string
	module modulePath
}

// CaddyModule returns the Caddy module information.
func (HideModule) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.wagi_hide",
		New: func() caddy.Module { return new(HideModule) },
	}
}

// Provision sets defaults.
func (h *HideModule) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.Root == "" {
		h.Root = defaultRoot
	}
	h.module = newModulePath(h.Module)
	h.base = filepath.Base(h.module.path)
	return nil
}

// Validate checks the configuration.
func (h *HideModule) Validate() error {
	if h.Module == "" {
		return fmt.Errorf("wagi_hide: module is required")
	}
	return nil
}

// ServeHTTP answers 404 if the request's path leads to the module file, else passes it on.
func (h *HideModule) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// Only a request whose last segment could name the module costs more than this
	// comparison. Unicode folding here is wider than any file system's, and only filters.
	if !h.module.varies && !strings.EqualFold(path.Base(r.URL.Path), h.base) {
		return next.ServeHTTP(w, r)
	}
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	configured, err := h.module.forRequest(repl)
	if err != nil {
		// The wagi handler refuses this request's module too; nothing to hide.
		return next.ServeHTTP(w, r)
	}
	root, err := siteRoot(repl, h.Root)
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	module := moduleFile(root, configured)
	full := caddyhttp.SanitizedPathJoin(root, r.URL.Path)
	if full != module && !sameFile(full, module) {
		return next.ServeHTTP(w, r)
	}
	h.logger.Info("not serving module bytes", zap.String("module", module), zap.String("path", r.URL.Path))
	return caddyhttp.Error(http.StatusNotFound, fmt.Errorf("wagi: not serving module bytes of %s", r.URL.Path))
}

// sameFile reports whether two paths name the same existing file.
func sameFile(a, b string) bool {
	ia, err := os.Stat(a)
	if err != nil {
		return false
	}
	ib, err := os.Stat(b)
	return err == nil && os.SameFile(ia, ib)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*HideModule)(nil)
	_ caddy.Validator             = (*HideModule)(nil)
	_ caddyhttp.MiddlewareHandler = (*HideModule)(nil)
)
