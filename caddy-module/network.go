package wagi

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/dustin/go-humanize"

	"github.com/caddy-wagi/caddy-wagi/caddy-module/engine"
)

// Network turns on outbound connections for guests: go-wagi's `/dev/tcp/<host>/<port>`,
// `/dev/tcp/<host>/<port>/tls` and `/dev/udp/<host>/<port>` files. Nothing is allowed
// unless an Allow entry admits it (and no Deny entry refuses it). Names are resolved by the
// host and every address they resolve to is checked: a loopback, private or unique-local
// address needs an IP or CIDR entry naming it, and link-local or cloud metadata addresses
// (169.254.0.0/16, fe80::/10, fd00:ec2::254) an entry inside those ranges. The entries are
// parsed by the engine when the site is made; a bad one fails the config load.
type Network struct {
	// Allow entries: `host`, `*.domain` (names below it), `.domain` (it and below), `*`,
	// an IP, a CIDR, each with an optional `:port` or `:low-high` (IPv6: `[::1]:80`).
	Allow []string `json:"allow,omitempty"`
	// Deny entries, as Allow; a deny entry wins, and is also checked against resolved addresses.
	Deny []string `json:"deny,omitempty"`
	// MaxConnections is how many connection files a CGI request, or a long-lived WCGI
	// instance, may hold open at once; more opens fail ("too many open files"). Default 64.
	MaxConnections int `json:"max_connections,omitempty"`
	// ConnectTimeout bounds resolving and connecting. Default 10s.
	ConnectTimeout caddy.Duration `json:"connect_timeout,omitempty"`
	// BufferBytes is what each connection buffers per direction. Default 256KiB.
	BufferBytes int64 `json:"buffer_bytes,omitempty"`
	// CAFile is a PEM file of CAs trusted for `/tls` connections besides the system's.
	CAFile string `json:"ca_file,omitempty"`
}

// parseNetwork reads a `network` block:
//
//	network {
//	    allow <entry...>
//	    deny  <entry...>
//	    max_connections <n>
//	    connect_timeout <duration>
//	    buffer <size>
//	    ca_file <path>
//	}
//
// `network <entry...>` alone is short for an allow list.
func parseNetwork(d *caddyfile.Dispenser) (*Network, error) {
	n := &Network{Allow: d.RemainingArgs()}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		args := d.RemainingArgs()
		one := func() (string, error) {
			if len(args) != 1 {
				return "", d.ArgErr()
			}
			return args[0], nil
		}
		switch opt {
		case "allow", "deny":
			if len(args) == 0 {
				return nil, d.ArgErr()
			}
			if opt == "allow" {
				n.Allow = append(n.Allow, args...)
			} else {
				n.Deny = append(n.Deny, args...)
			}
		case "max_connections":
			s, err := one()
			if err != nil {
				return nil, err
			}
			v, err := strconv.Atoi(s)
			if err != nil || v < 1 {
				return nil, d.Errf("bad max_connections %q: want a whole number of at least 1", s)
			}
			n.MaxConnections = v
		case "connect_timeout":
			s, err := one()
			if err != nil {
				return nil, err
			}
			dur, err := caddy.ParseDuration(s)
			if err != nil || dur <= 0 {
				return nil, d.Errf("bad connect_timeout %q", s)
			}
			n.ConnectTimeout = caddy.Duration(dur)
		case "buffer":
			s, err := one()
			if err != nil {
				return nil, err
			}
			v, err := humanize.ParseBytes(s)
			if err != nil || v == 0 || v > 1<<30 {
				return nil, d.Errf("bad buffer size %q (examples: 64KiB, 1MiB)", s)
			}
			n.BufferBytes = int64(v)
		case "ca_file":
			s, err := one()
			if err != nil {
				return nil, err
			}
			n.CAFile = s
		default:
			return nil, d.Errf("unknown network option %q; allowed: allow, deny, max_connections, connect_timeout, buffer, ca_file", opt)
		}
	}
	return n, nil
}

// validate checks the settings the engine does not; env is the handler's guest env, whose
// WASI_NET is go-wagi's way to turn networking on.
func (n *Network) validate(env map[string]string) error {
	if n == nil {
		return nil
	}
	if n.MaxConnections < 0 || n.ConnectTimeout < 0 || n.BufferBytes < 0 {
		return fmt.Errorf("wagi: network max_connections, connect_timeout and buffer must not be negative")
	}
	if n.CAFile != "" {
		pem, err := os.ReadFile(n.CAFile)
		if err != nil {
			return fmt.Errorf("wagi: network ca_file: %w", err)
		}
		if !bytes.Contains(pem, []byte("-----BEGIN CERTIFICATE-----")) {
			return fmt.Errorf("wagi: network ca_file %s holds no PEM certificate", n.CAFile)
		}
	}
	if env["WASI_NET"] != "" && (len(n.Allow) > 0 || len(n.Deny) > 0) {
		return fmt.Errorf("wagi: both `network` allow/deny lists and `env WASI_NET` are set: keep one (WASI_NET is go-wagi's rule string; network's limits apply to it)")
	}
	return nil
}

// describe adds the network settings to the site record.
func (n *Network) describe(rec *engine.Record) {
	if n == nil {
		return
	}
	for _, e := range n.Allow {
		rec.Add(engine.FieldNetAllow, e)
	}
	for _, e := range n.Deny {
		rec.Add(engine.FieldNetDeny, e)
	}
	if n.MaxConnections > 0 {
		rec.AddInt(engine.FieldNetMaxConnections, int64(n.MaxConnections))
	}
	if n.ConnectTimeout > 0 {
		rec.AddInt(engine.FieldNetConnectTimeoutMs, time.Duration(n.ConnectTimeout).Milliseconds())
	}
	if n.BufferBytes > 0 {
		rec.AddInt(engine.FieldNetBufferBytes, n.BufferBytes)
	}
	if n.CAFile != "" {
		rec.Add(engine.FieldNetCAFile, n.CAFile)
	}
}
