package wagi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

func TestHideModule(t *testing.T) {
	root := siteTree(t, []string{"api.wasm", "other.txt", "sub/api.wasm"}, map[string]string{"alias": "."})
	for _, module := range []string{"api.wasm", "./api.wasm", filepath.Join(root, "api.wasm")} {
		h := &HideModule{Module: module, Root: root, logger: zap.NewNop(), base: filepath.Base(module), module: newModulePath(module)}
		for path, hidden := range map[string]bool{
			"/api.wasm":          true,
			"//api.wasm":         true,
			"/sub/../api.wasm":   true,
			"/alias/api.wasm":    true,
			"/alias/./api.wasm":  true,
			"/sub/api.wasm":      false, // another file of the same name
			"/other.txt":         false,
			"/API.WASM":          false, // no such file here: file_server answers 404 itself
			"/api.wasm/":         false,
			"/missing/api.wasm/": false,
		} {
			r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
			r.URL.Path = path
			r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
			passed := false
			err := h.ServeHTTP(httptest.NewRecorder(), r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
				passed = true
				return nil
			}))
			var herr caddyhttp.HandlerError
			got404 := errors.As(err, &herr) && herr.StatusCode == http.StatusNotFound
			if hidden != got404 || hidden == passed {
				t.Errorf("module %q, GET %s: err %v, passed on %v; want hidden=%v", module, path, err, passed, hidden)
			}
		}
	}
}
