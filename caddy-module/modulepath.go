package wagi

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// modulePath is a configured module path (`wagi /api/* {env.API_MODULE}`) with its global
// placeholders ({env.*}, {system.*}) replaced once, at Provision. What remains depends on
// the request ({http.request.host}, {http.vars.*}): such a path is evaluated per request,
// and since a client may steer its value, the value must stay where the configuration
// points: no `..` segment, no NUL, and a relative path stays relative (under the root).
type modulePath struct {
	// path is the configured path, global placeholders replaced.
	path string
	// varies is set when path still holds request placeholders.
	varies bool
	// relative is set when the configured path, as written, is not absolute: an
	// evaluation must not make it absolute. A path that is one global placeholder was
	// written by the admin and may be either.
	relative bool
}

// newModulePath prepares a configured module path.
func newModulePath(configured string) modulePath {
	p := caddy.NewReplacer().ReplaceKnown(configured, "")
	return modulePath{path: p, varies: hasPlaceholder(p), relative: !filepath.IsAbs(p)}
}

// forRequest is the module path for one request.
func (m modulePath) forRequest(repl *caddy.Replacer) (string, error) {
	if !m.varies {
		return m.path, nil
	}
	p := repl.ReplaceAll(m.path, "")
	switch {
	case p == "" || strings.HasSuffix(p, "/"):
		return "", fmt.Errorf("module path %q names no file for this request (%q)", m.path, p)
	case strings.ContainsRune(p, 0) || hasDotDotSegment(p):
		return "", fmt.Errorf("module path %q evaluated to %q, which is not a path inside its directory", m.path, p)
	case m.relative && filepath.IsAbs(p):
		return "", fmt.Errorf("module path %q evaluated to the absolute path %q", m.path, p)
	}
	return p, nil
}

// hasDotDotSegment reports whether a slash- or backslash-separated path has a `..` segment.
func hasDotDotSegment(p string) bool {
	for _, seg := range strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '\\' }) {
		if seg == ".." {
			return true
		}
	}
	return false
}
