package wagi

import (
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("wagi", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("wagi", httpcaddyfile.Before, "file_server")
}

// subdirectives lists what may appear inside a `wagi { }` block.
var subdirectives = []string{"root", "index", "split", "env", "timeout", "memory", "max_wait"}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	wagi [<matcher>] [<module.wasm>] {
//	    root     <path>
//	    index    <file>|off
//	    split    <ext...>
//	    env      <key> <value>
//	    timeout  <duration>
//	    memory   <size>
//	    max_wait <duration>
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		h.Module = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "root":
			if !d.AllArgs(&h.Root) {
				return d.ArgErr()
			}
		case "index":
			if !d.AllArgs(&h.Index) {
				return d.ArgErr()
			}
		case "split":
			h.SplitPath = d.RemainingArgs()
			if len(h.SplitPath) == 0 {
				return d.ArgErr()
			}
		case "env":
			var k, v string
			if !d.AllArgs(&k, &v) {
				return d.ArgErr()
			}
			if h.Env == nil {
				h.Env = make(map[string]string)
			}
			h.Env[k] = v
		case "timeout", "max_wait":
			var s string
			if !d.AllArgs(&s) {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(s)
			if err != nil {
				return d.Errf("bad %s %q: %v", d.Val(), s, err)
			}
			if d.Val() == "timeout" {
				h.Timeout = caddy.Duration(dur)
			} else {
				h.MaxWait = caddy.Duration(dur)
			}
		case "memory":
			var s string
			if !d.AllArgs(&s) {
				return d.ArgErr()
			}
			n, err := humanize.ParseBytes(s)
			if err != nil || n == 0 {
				return d.Errf("bad memory size %q (examples: 64MiB, 1GiB)", s)
			}
			h.MemoryBytes = int64(n)
		default:
			return d.Errf("unknown wagi subdirective %q; allowed: %s", d.Val(), strings.Join(subdirectives, ", "))
		}
	}
	return nil
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var w Handler
	err := w.UnmarshalCaddyfile(h.Dispenser)
	return &w, err
}

var _ caddyfile.Unmarshaler = (*Handler)(nil)
