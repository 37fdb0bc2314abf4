package wagi

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-wagi/caddy-wagi/caddy-module/engine"
)

// provisionSite makes this handler's site in the engine from everything that holds for
// every request: the engine keeps it, and each request then carries only its own facts.
// Handlers with equal settings share one site, so a config reload that changes nothing
// keeps its long-lived WCGI instances, and one that changes them starts new ones.
func (h *Handler) provisionSite() error {
	var rec engine.Record
	h.describeSite(&rec)
	site, err := h.engine.NewSite(&rec)
	if err != nil {
		return fmt.Errorf("wagi: creating the site: %w", err)
	}
	h.site = site
	return nil
}

// describeSite encodes the site's settings canonically (sorted env), so that equal
// settings make equal records.
func (h *Handler) describeSite(rec *engine.Record) {
	rec.Add(engine.FieldServerSoftware, h.serverSoft)
	keys := make([]string, 0, len(h.Env))
	for k := range h.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if v := h.Env[k]; !hasPlaceholder(v) {
			rec.Add2(engine.FieldEnv, k, v)
		}
	}
	if len(h.requestEnv) > 0 {
		// Long-lived WCGI instances serve every visitor: they get the env evaluated without
		// any request, so no placeholder carries one visitor's values to the others. Only
		// global placeholders ({env.*}, {system.*}) are replaced, once, here.
		global := caddy.NewReplacer()
		for _, k := range keys {
			rec.Add2(engine.FieldSiteEnv, k, global.ReplaceAll(h.Env[k], ""))
		}
	}
	h.describeArgs(rec)
	if h.Entrypoint != "" {
		rec.Add(engine.FieldEntrypoint, h.Entrypoint)
	}
	for _, m := range h.Mounts {
		field := engine.FieldMountRO
		if m.Writable {
			field = engine.FieldMountRW
		}
		rec.Add2(field, m.Host, m.Guest)
	}
	rec.AddInt(engine.FieldTimeoutMs, time.Duration(h.Timeout).Milliseconds())
	rec.AddInt(engine.FieldMemoryBytes, h.MemoryBytes)
	if h.CacheDir != cacheOff {
		rec.Add(engine.FieldCacheDir, h.CacheDir)
		rec.AddInt(engine.FieldCacheMaxAgeMs, time.Duration(h.CacheMaxAge).Milliseconds())
	}
	rec.AddInt(engine.FieldKeepaliveMs, time.Duration(h.Keepalive).Milliseconds())
	rec.Add(engine.FieldMode, h.Mode)
	rec.AddInt(engine.FieldInstances, int64(h.Instances))
	rec.Add(engine.FieldStderr, h.Stderr)
	h.Network.describe(rec)
}

// describeArgs adds the configured argv to the site: as it is, or, when it holds
// placeholders, evaluated without any request for long-lived WCGI instances (each request
// then carries its own, see describeRequestArgs).
func (h *Handler) describeArgs(rec *engine.Record) {
	if !h.requestArgs {
		for _, a := range h.Argv {
			rec.Add(engine.FieldArg, a)
		}
		return
	}
	global := caddy.NewReplacer()
	for _, a := range h.Argv {
		rec.Add(engine.FieldSiteArg, global.ReplaceAll(a, ""))
	}
}

// describeRequestArgs adds argv evaluated for one request, when it holds placeholders.
func (h *Handler) describeRequestArgs(rec *engine.Record, repl *caddy.Replacer) {
	if !h.requestArgs {
		return
	}
	for _, a := range h.Argv {
		rec.Add(engine.FieldArg, repl.ReplaceAll(a, ""))
	}
}

// hasPlaceholder reports whether a configured value holds a Caddy placeholder.
func hasPlaceholder(v string) bool { return strings.Contains(v, "{") }

// placeholderKeys are the keys of env whose values hold placeholders, sorted.
func placeholderKeys(env map[string]string) []string {
	var keys []string
	for k, v := range env {
		if hasPlaceholder(v) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}
