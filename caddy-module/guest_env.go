package wagi

import (
	"net"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddytls"

	"github.com/caddy-wagi/caddy-wagi/caddy-module/engine"
)

// What the guest learns beyond the request line and headers, taken where Caddy's FastCGI
// transport (buildEnv) and reverse_proxy (addForwardedHeaders) take it, so that guests
// moved from php_fastcgi or behind reverse_proxy see the same values.

// originalRequestURI is the request target before any `rewrite` (REQUEST_URI), as
// php_fastcgi passes it: front controllers route on what the client asked for.
func originalRequestURI(r *http.Request) string {
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && orig.URL != nil {
		return orig.URL.RequestURI()
	}
	return r.RequestURI
}

// describeConnection adds the listener's address, the authenticated user, the TLS cipher
// and whether the client is a trusted proxy.
func describeConnection(rec *engine.Record, r *http.Request, repl *caddy.Replacer) {
	if addr := serverAddr(r); addr != "" {
		rec.Add(engine.FieldServerAddr, addr)
	}
	// basic_auth (caddyauth) records the user it accepted here.
	if user, _ := repl.GetString("http.auth.user.id"); user != "" {
		rec.Add(engine.FieldRemoteUser, user)
	}
	if r.TLS != nil {
		if name := cipherSuiteName(r.TLS.CipherSuite); name != "" {
			rec.Add(engine.FieldTLSCipher, name)
		}
	}
	// The server decided from its trusted_proxies whether this peer may speak for others.
	if trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool); trusted {
		rec.AddInt(engine.FieldTrustedProxy, 1)
	}
}

// serverAddr is the IP address of the listener the request came in on (SERVER_ADDR), or
// "" when the listener has none (a Unix socket).
func serverAddr(r *http.Request) string {
	addr, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return ""
	}
	if tcp, ok := addr.(*net.TCPAddr); ok {
		// The usual listener, without formatting and parsing its address again.
		if tcp.IP == nil {
			return ""
		}
		return tcp.IP.String()
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		host = addr.String()
	}
	if net.ParseIP(host) == nil {
		return ""
	}
	return host
}

// cipherSuiteName names a cipher suite as Caddy's FastCGI transport does in SSL_CIPHER:
// only suites Caddy supports have a name.
func cipherSuiteName(id uint16) string {
	for _, cs := range caddytls.SupportedCipherSuites() {
		if cs.ID == id {
			return cs.Name
		}
	}
	return ""
}
