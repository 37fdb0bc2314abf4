package wagi

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func TestModulePathPlaceholders(t *testing.T) {
	t.Setenv("WAGI_TEST_MODULE", "/opt/mods/api.wasm")
	r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
	repl := caddyhttp.NewTestReplacer(r)
	set := func(v string) { repl.Set("http.vars.tenant", v) }
	for _, c := range []struct {
		configured, tenant, want string
		varies, fails            bool
	}{
		{configured: "api.wasm", want: "api.wasm"},
		{configured: "{env.WAGI_TEST_MODULE}", want: "/opt/mods/api.wasm"},
		{configured: "{env.WAGI_TEST_MODULE}", tenant: "../x", want: "/opt/mods/api.wasm"},
		{configured: "tenants/{http.vars.tenant}.wasm", tenant: "acme", want: "tenants/acme.wasm", varies: true},
		{configured: "tenants/{http.vars.tenant}.wasm", tenant: "../../etc/x", varies: true, fails: true},
		{configured: "tenants/{http.vars.tenant}.wasm", tenant: `..\x`, varies: true, fails: true},
		{configured: "{http.vars.tenant}", tenant: "/etc/x.wasm", varies: true, fails: true},
		{configured: "{http.vars.tenant}", tenant: "", varies: true, fails: true},
		{configured: "{http.vars.tenant}", tenant: "a\x00.wasm", varies: true, fails: true},
		{configured: "/srv/{http.vars.tenant}.wasm", tenant: "b", want: "/srv/b.wasm", varies: true},
	} {
		set(c.tenant)
		m := newModulePath(c.configured)
		got, err := m.forRequest(repl)
		if m.varies != c.varies || (err != nil) != c.fails || (!c.fails && got != c.want) {
			t.Errorf("%q with tenant %q: got %q, %v (varies %v); want %q, fails %v, varies %v",
				c.configured, c.tenant, got, err, m.varies, c.want, c.fails, c.varies)
		}
	}
}
