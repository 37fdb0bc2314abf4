package wagi

import (
	"io/fs"
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
	actForbidRaw               // a module file that must not be served as bytes
	actMissing                 // names a module file that does not exist, and no front controller takes it
	actOutside                 // a module or file that a symlink places outside the site root
)

// script is the CGI view of the module a request runs (RFC 3875 4.1.13, 4.1.5).
type script struct {
	// filename is the module's absolute host path (SCRIPT_FILENAME). For actMissing,
	// actOutside and actForbidRaw it names the file refused, for the log.
	filename string
	// name is its URL path (SCRIPT_NAME).
	name string
	// pathInfo is the request path after the script (PATH_INFO).
	pathInfo string
	// info is what resolving the path learnt of the module file (following symlinks), nil
	// when it was not stat'ed; the engine then stats it itself.
	info fs.FileInfo
}

// resolve maps a request path under root to a module, the way php_server maps paths to
// PHP scripts: split at a script extension, then directory index, then static file, then
// the front controller. Nothing a symlink places outside the root runs or passes on as a
// file of the site.
// module is the configured module for this request, if any (see modulePath).
func (h *Handler) resolve(root, module, reqPath string) (script, action) {
	if module != "" {
		return fixedModule(root, module, reqPath)
	}
	s, act, named := h.splitScript(root, reqPath)
	if act != actNext {
		return s, act
	}
	dirIndex, dirAct := script{}, actNext
	if strings.HasSuffix(reqPath, "/") {
		// An index that runs proves its directory a directory of the site: one stat
		// instead of two for the most common request, `/`. Anything else is decided below.
		if dirIndex, dirAct = h.indexIn(root, reqPath); dirAct == actRun {
			return dirIndex, dirAct
		}
	}
	full := caddyhttp.SanitizedPathJoin(root, reqPath)
	f, err := statInRoot(root, full)
	if err == nil && f.inside {
		if f.info.IsDir() {
			if !strings.HasSuffix(reqPath, "/") {
				return script{}, actRedirect
			}
			return dirIndex, dirAct // its index, looked up above
		}
		if h.isModuleFile(full) || h.isModuleFile(f.real) {
			return script{filename: full}, actForbidRaw
		}
		return script{}, actNext
	}
	// Not a file of the site: missing, or outside the root, which a file_server after us
	// would follow. The front controller takes both.
	if s, act := h.indexIn(root, "/"); act != actNext {
		return s, act
	}
	switch {
	case err == nil:
		return script{filename: full}, actOutside
	case named != "":
		return script{filename: named}, actMissing
	}
	return script{}, actNext
}

// splitScript finds the first split extension in reqPath that ends a path segment and
// names an existing file: `/api.wasm/users/7` -> script `/api.wasm`, PATH_INFO `/users/7`.
// named is the first such module path tried, whether or not it exists.
func (h *Handler) splitScript(root, reqPath string) (s script, act action, named string) {
	for end := range splitEnds(reqPath, h.SplitPath) {
		name := reqPath[:end]
		full := caddyhttp.SanitizedPathJoin(root, name)
		f, err := statInRoot(root, full)
		switch {
		case err != nil:
			if named == "" {
				named = full
			}
		case !f.inside:
			return script{filename: full}, actOutside, named
		case f.info.Mode().IsRegular():
			return script{filename: full, name: name, pathInfo: reqPath[end:], info: f.info}, actRun, named
		}
	}
	return script{}, actNext, named
}

// indexIn returns the index module of the directory dir (a URL path ending in "/"), or
// actNext when there is none.
func (h *Handler) indexIn(root, dir string) (script, action) {
	if h.Index == indexOff {
		return script{}, actNext
	}
	name := dir + h.Index
	full := caddyhttp.SanitizedPathJoin(root, name)
	f, err := statInRoot(root, full)
	switch {
	case err != nil:
		return script{}, actNext
	case !f.inside:
		return script{filename: full}, actOutside
	case !f.info.Mode().IsRegular():
		return script{}, actNext
	}
	return script{filename: full, name: name, info: f.info}, actRun
}

// fixedModule is the script for a handler configured with one module. A module named
// inside the root must stay there; one configured outside it is the admin's choice.
func fixedModule(root, module, reqPath string) (script, action) {
	file := moduleFile(root, module)
	s := script{filename: file, name: "/" + filepath.Base(file), pathInfo: reqPath}
	if !within(root, file) {
		return s, actRun
	}
	if rel, err := filepath.Rel(root, file); err == nil {
		s.name = "/" + filepath.ToSlash(rel)
	}
	// A missing module runs anyway: the engine answers 404 and logs it.
	f, err := statInRoot(root, file)
	if err == nil && !f.inside {
		return s, actOutside
	}
	if err == nil && f.info.Mode().IsRegular() {
		s.info = f.info
	}
	return s, actRun
}

// moduleFile is the host path of a configured module: relative to root unless absolute.
func moduleFile(root, module string) string {
	if filepath.IsAbs(module) {
		return filepath.Clean(module)
	}
	return filepath.Join(root, module)
}

// runsAsModule reports whether a file name is one the handler runs: it ends in a split
// extension or is the index file.
func (h *Handler) runsAsModule(name string) bool {
	base := filepath.Base(name)
	if h.Index != indexOff && base == filepath.Base(h.Index) {
		return true
	}
	for _, ext := range h.SplitPath {
		if hasSuffixASCIIFold(base, ext) {
			return true
		}
	}
	return false
}

// isModuleFile reports whether a file's bytes must never be served: a module the handler
// runs, or any `.wasm` file.
func (h *Handler) isModuleFile(name string) bool {
	return h.runsAsModule(name) || hasSuffixASCIIFold(name, ".wasm")
}
