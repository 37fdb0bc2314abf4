package wagi

import (
	"math"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/dustin/go-humanize"
)

func init() {
	httpcaddyfile.RegisterDirective("wagi", parseDirective)
	httpcaddyfile.RegisterDirectiveOrder("wagi", httpcaddyfile.Before, "file_server")
	httpcaddyfile.RegisterGlobalOption("wagi", parseGlobalOption)
}

// globalOptions lists what may appear in the global `wagi { }` block.
var globalOptions = []string{"instance_slots", "wcgi_instances", "memory_ceiling", "compile_concurrency"}

// parseGlobalOption sets up the `wagi` app from the global options block:
//
//	{
//	    wagi {
//	        instance_slots      <n>
//	        wcgi_instances      <n>
//	        memory_ceiling      <size>
//	        compile_concurrency <n>
//	    }
//	}
func parseGlobalOption(d *caddyfile.Dispenser, _ any) (any, error) {
	var a App
	d.Next() // option name
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for d.NextBlock(0) {
		opt := d.Val()
		var s string
		if !d.AllArgs(&s) {
			return nil, d.ArgErr()
		}
		switch opt {
		case "instance_slots", "wcgi_instances", "compile_concurrency":
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				return nil, d.Errf("bad %s %q: want a whole number of at least 1", opt, s)
			}
			switch opt {
			case "instance_slots":
				a.InstanceSlots = n
			case "wcgi_instances":
				a.WCGIInstances = n
			default:
				a.CompileConcurrency = n
			}
		case "memory_ceiling":
			n, err := humanize.ParseBytes(s)
			if err != nil || n == 0 || n > math.MaxInt64 {
				return nil, d.Errf("bad memory_ceiling size %q (examples: 1GiB, 4GiB)", s)
			}
			a.MemoryCeiling = int64(n)
		default:
			return nil, d.Errf("unknown global wagi option %q; allowed: %s", opt, strings.Join(globalOptions, ", "))
		}
	}
	return httpcaddyfile.App{Name: "wagi", Value: caddyconfig.JSON(a, nil)}, nil
}

// subdirectives lists what may appear inside a `wagi { }` block.
var subdirectives = []string{"root", "index", "split", "env", "timeout", "memory", "max_wait",
	"max_body", "max_instances", "cache_dir", "cache_max_age", "keepalive", "precompile", "mount", "mode", "instances", "argv", "entrypoint", "stderr", "network"}

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
//	    max_body <size>
//	    max_instances <n>
//	    cache_dir <path>|off
//	    cache_max_age <duration>
//	    keepalive <duration>
//	    precompile
//	    mount <host_dir> [<guest_dir>] [ro|rw]
//	    mode auto|cgi|wcgi|http
//	    instances <n>
//	    argv <arg0> [<args...>]
//	    entrypoint <function>
//	    stderr log|discard
//	    network [<allow entry...>] { allow|deny <entry...>; max_connections <n>; connect_timeout <d>; buffer <size>; ca_file <pem> }
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
		sub := d.Val()
		switch sub {
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
		case "argv":
			h.Argv = d.RemainingArgs()
			if len(h.Argv) == 0 {
				return d.ArgErr()
			}
		case "entrypoint":
			if !d.AllArgs(&h.Entrypoint) {
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
		case "timeout", "max_wait", "keepalive", "cache_max_age":
			var s string
			if !d.AllArgs(&s) {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(s)
			if err != nil {
				return d.Errf("bad %s %q: %v", sub, s, err)
			}
			switch sub {
			case "timeout":
				h.Timeout = caddy.Duration(dur)
			case "max_wait":
				h.MaxWait = caddy.Duration(dur)
			case "cache_max_age":
				h.CacheMaxAge = caddy.Duration(dur)
			default:
				h.Keepalive = caddy.Duration(dur)
			}
		case "memory", "max_body":
			var s string
			if !d.AllArgs(&s) {
				return d.ArgErr()
			}
			n, err := humanize.ParseBytes(s)
			if err != nil || n == 0 {
				return d.Errf("bad %s size %q (examples: 64MiB, 1GiB)", sub, s)
			}
			if sub == "memory" {
				h.MemoryBytes = int64(n)
			} else {
				h.MaxBody = int64(n)
			}
		case "max_instances", "instances":
			var s string
			if !d.AllArgs(&s) {
				return d.ArgErr()
			}
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				return d.Errf("bad %s %q: want a whole number of at least 1", sub, s)
			}
			if sub == "instances" {
				h.Instances = n
			} else {
				h.MaxInstances = n
			}
		case "mode":
			if !d.AllArgs(&h.Mode) {
				return d.ArgErr()
			}
			if !validMode(h.Mode) {
				return d.Errf("bad mode %q: want %s", h.Mode, modeChoices)
			}
		case "stderr":
			if !d.AllArgs(&h.Stderr) {
				return d.ArgErr()
			}
			if h.Stderr != stderrLog && h.Stderr != stderrDiscard {
				return d.Errf("bad stderr %q: want log or discard", h.Stderr)
			}
		case "cache_dir":
			if !d.AllArgs(&h.CacheDir) {
				return d.ArgErr()
			}
		case "precompile":
			if d.NextArg() {
				return d.ArgErr()
			}
			h.Precompile = true
		case "network":
			n, err := parseNetwork(d)
			if err != nil {
				return err
			}
			h.Network = n
		case "mount":
			m, err := parseMount(d)
			if err != nil {
				return err
			}
			h.Mounts = append(h.Mounts, m)
		default:
			return d.Errf("unknown wagi subdirective %q; allowed: %s", sub, strings.Join(subdirectives, ", "))
		}
	}
	return nil
}

// parseMount reads `mount <host_dir> [<guest_dir>] [ro|rw]`.
func parseMount(d *caddyfile.Dispenser) (Mount, error) {
	args := d.RemainingArgs()
	if len(args) == 0 || len(args) > 3 {
		return Mount{}, d.ArgErr()
	}
	m := Mount{Host: args[0]}
	rest := args[1:]
	if n := len(rest); n > 0 && (rest[n-1] == "ro" || rest[n-1] == "rw") {
		m.Writable = rest[n-1] == "rw"
		rest = rest[:n-1]
	}
	switch len(rest) {
	case 0:
	case 1:
		m.Guest = rest[0]
	default:
		return Mount{}, d.Errf("mount takes <host_dir> [<guest_dir>] [ro|rw]")
	}
	return m, nil
}

// parseDirective returns the wagi route, plus, when one module is named, a route that
// answers 404 for requests reaching that module's file: module bytes are never served raw,
// even by a file_server that handles the requests wagi's matcher leaves.
func parseDirective(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	if !h.Next() {
		return nil, h.ArgErr()
	}
	matcherSet, err := h.ExtractMatcherSet()
	if err != nil {
		return nil, err
	}
	var w Handler
	if err := w.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	routes := h.NewRoute(matcherSet, &w)
	if w.Module != "" {
		routes = append(routes, h.NewRoute(nil, &HideModule{Module: w.Module, Root: w.Root})...)
	}
	return routes, nil
}

var _ caddyfile.Unmarshaler = (*Handler)(nil)
