package wagi

import (
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// action is what the handler does with a request after resolving its path.
type action int

const (
	actRun       action = iota // run target
	actNext                    // not ours: pass to the next handler
	actRedirect                // a directory without its trailing slash
	actForbidRaw               // a .wasm file that must not be served as bytes
)

// script is the CGI view of the module a request runs (RFC 3875 4.1.13, 4.1.5).
type script struct {
	// filename is the module's absolute host path (SCRIPT_FILENAME).
	filename string
	// name is its URL path (SCRIPT_NAME).
	name string
	// pathInfo is the request path after the script (PATH_INFO).
	pathInfo string
}

// resolve maps a request path under root to a module, the way php_server maps paths to
// PHP scripts: split at a script extension, then directory index, then static file, then
// the front controller.
func (h *Handler) resolve(root, reqPath string) (script, action) {
	if h.Module != "" {
		return h.fixedModule(root, reqPath), actRun
	}
	if s, ok := h.splitScript(root, reqPath); ok {
		return s, actRun
	}
	full := caddyhttp.SanitizedPathJoin(root, reqPath)
	if info, err := os.Stat(full); err == nil {
		if info.IsDir() {
			if !strings.HasSuffix(reqPath, "/") {
				return script{}, actRedirect
			}
			if s, ok := h.indexIn(root, reqPath); ok {
				return s, actRun
			}
			return script{}, actNext
		}
		if strings.EqualFold(path.Ext(reqPath), ".wasm") {
			return script{}, actForbidRaw
		}
		return script{}, actNext
	}
	if s, ok := h.indexIn(root, "/"); ok {
		return s, actRun
	}
	return script{}, actNext
}

// splitScript finds the first split extension in reqPath that ends a path segment and
// names an existing file: `/api.wasm/users/7` -> script `/api.wasm`, PATH_INFO `/users/7`.
func (h *Handler) splitScript(root, reqPath string) (script, bool) {
	lower := strings.ToLower(reqPath)
	for _, ext := range h.SplitPath {
		for from := 0; ; {
			i := strings.Index(lower[from:], ext)
			if i < 0 {
				break
			}
			end := from + i + len(ext)
			from = end
			if end < len(reqPath) && reqPath[end] != '/' {
				continue
			}
			name := reqPath[:end]
			full := caddyhttp.SanitizedPathJoin(root, name)
			if isFile(full) {
				return script{filename: full, name: name, pathInfo: reqPath[end:]}, true
			}
		}
	}
	return script{}, false
}

// indexIn returns the index module of the directory dir (a URL path ending in "/").
func (h *Handler) indexIn(root, dir string) (script, bool) {
	if h.Index == indexOff {
		return script{}, false
	}
	name := dir + h.Index
	full := caddyhttp.SanitizedPathJoin(root, name)
	if !isFile(full) {
		return script{}, false
	}
	return script{filename: full, name: name}, true
}

// fixedModule is the script for a handler configured with one module.
func (h *Handler) fixedModule(root, reqPath string) script {
	file := h.Module
	if !filepath.IsAbs(file) {
		file = filepath.Join(root, file)
	}
	name := "/" + filepath.Base(file)
	if rel, err := filepath.Rel(root, file); err == nil && !strings.HasPrefix(rel, "..") {
		name = "/" + filepath.ToSlash(rel)
	}
	return script{filename: file, name: name, pathInfo: reqPath}
}

func isFile(p string) bool {
	info, err := os.Stat(p)
	return err == nil && info.Mode().IsRegular()
}
