package tests

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// A Python wasi:http component (componentize-py: CPython and the guest's code in one 18 MB
// component) served by the same directive: the request reaches it, its answer comes back,
// and the site's env reaches it through wasi:cli/environment.
func TestPythonComponentServesRequests(t *testing.T) {
	wasm := pyComponent.wasm(t)
	dir := t.TempDir()
	copyFile(t, wasm, filepath.Join(dir, "site", "py.wasm"))
	c := startOwnCaddy(t, dir, "", map[string]string{"site": componentSite})
	base := c.urls["site"] + "/py.wasm"

	expectHello(t, base, "hello from python\n")
	r := do(t, http.MethodDelete, base+"/request?a=1", nil, http.Header{"X-Single": {"s"}})
	for _, want := range []string{"method=DELETE\n", "path_with_query=/py.wasm/request?a=1\n", "header x-single=s\n"} {
		if r.status != http.StatusOK || !strings.Contains(string(r.body), want) {
			t.Errorf("guest did not see %q: %d\n%s", want, r.status, r.body)
		}
	}
	expectSiteEnv(t, base)
	if r := get(t, base+"/nothing"); r.status != http.StatusNotFound {
		t.Errorf("GET nothing: %d, want the guest's 404", r.status)
	}
}
