package wagi

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-wagi/caddy-wagi/caddy-module/engine"
)

var records = sync.Pool{New: func() any { return new(engine.Record) }}

// run executes the module for one request and answers with its response, or with the
// failure's status when the guest failed before sending a head.
func (h *Handler) run(w http.ResponseWriter, r *http.Request, repl *caddy.Replacer, root string, s script) error {
	out := newOutcome(root, s)
	defer out.done()
	spooled, err := h.checkBody(w, r, s)
	if err != nil {
		out.fail("body", http.StatusBadRequest, err)
		return err
	}
	if spooled != nil {
		defer spooled.Close()
	}
	waiting.Add(1)
	deadline, err := h.acquire(r, s)
	waiting.Add(-1)
	if err != nil {
		kind := "busy"
		if r.Context().Err() != nil {
			kind = "client_gone"
		}
		out.fail(kind, http.StatusServiceUnavailable, err)
		return err
	}
	release := sync.OnceFunc(h.slots.Release)
	defer release()
	rec := records.Get().(*engine.Record)
	defer records.Put(rec)
	rec.Reset()
	h.describe(rec, r, repl, root, s)

	ex := newExchange(w, r, h.logger, s.filename, h.MaxBody, spooled != nil, release)
	ex.site = root
	failure := h.site.Handle(r.Context(), rec, ex, deadline)
	// Lift the deadline the engine set on the connection, so an error page can still be
	// written and a kept-alive connection's next request is not cut short.
	ex.liftDeadline()
	if failure == nil {
		release()
		ex.settleBody()
		out.status = ex.status
		return nil
	}
	out.fail(failure.Kind, failure.Status, nil)
	fields := []zap.Field{
		zap.String("module", s.filename),
		zap.String("site", root),
		zap.String("kind", failure.Kind),
		zap.Int("status", failure.Status),
		zap.String("error", failure.Message),
	}
	if ex.tooLarge.Load() && !ex.headSent {
		out.fail("body", http.StatusRequestEntityTooLarge, nil)
		return h.bodyTooLarge(w, s)
	}
	if failure.Failure == engine.FailureClientGone {
		h.logger.Info("client went away; guest stopped", fields...)
		return nil
	}
	if ex.headSent {
		// The client already has a status and part of a body: abort the connection so it
		// sees a truncated transfer, not a response that looks complete.
		out.status = ex.status
		h.logger.Error("guest failed after sending its response head", fields...)
		panic(http.ErrAbortHandler)
	}
	// No head went out, so no full duplex either: net/http discards or closes on what
	// the guest left of the body, before the error response.
	if failure.Failure == engine.FailureBusy {
		// The process's guest or WCGI instance slots are all taken: load, not a fault.
		h.logger.Warn("guest slots busy", fields...)
		return caddyhttp.Error(failure.Status, errors.New(failure.Error()))
	}
	h.logger.Error("guest failed", fields...)
	if failure.Failure == engine.FailureTimeout {
		// The deadline cut the connection's reads short: it cannot carry another request.
		w.Header().Set("Connection", "close")
	}
	return caddyhttp.Error(failure.Status, errors.New(failure.Error()))
}

// describe writes the request's own facts into the record the engine reads; the site's
// settings are in its site (see site.go).
func (h *Handler) describe(rec *engine.Record, r *http.Request, repl *caddy.Replacer, root string, s script) {
	rec.Add(engine.FieldModulePath, s.filename)
	if s.info != nil {
		addModuleIdentity(rec, s.info)
	}
	rec.Add(engine.FieldMethod, r.Method)
	rec.Add(engine.FieldRequestURI, originalRequestURI(r))
	rec.Add(engine.FieldQueryString, r.URL.RawQuery)
	rec.Add(engine.FieldProtocol, r.Proto)
	rec.Add(engine.FieldHost, r.Host)
	rec.Add(engine.FieldRemoteAddr, r.RemoteAddr)
	if r.TLS != nil {
		rec.Add(engine.FieldTLSProtocol, tlsProtocolName(r.TLS.Version))
	}
	describeConnection(rec, r, repl)
	if r.ContentLength >= 0 {
		rec.AddInt(engine.FieldContentLength, r.ContentLength)
	}
	for name, values := range r.Header {
		for _, v := range values {
			rec.Add2(engine.FieldHeader, name, v)
		}
	}
	rec.Add(engine.FieldDocumentRoot, root)
	rec.Add(engine.FieldScriptName, s.name)
	rec.Add(engine.FieldScriptFilename, s.filename)
	rec.Add(engine.FieldPathInfo, s.pathInfo)
	// Values without placeholders are the site's; these depend on the request.
	for _, k := range h.requestEnv {
		rec.Add2(engine.FieldEnv, k, repl.ReplaceAll(h.Env[k], ""))
	}
	h.describeRequestArgs(rec, repl)
	h.describeRootMount(rec, root)
}

// prepare loads a module without running it.
func (h *Handler) prepare(module string) *engine.Error {
	var rec engine.Record
	rec.Add(engine.FieldModulePath, module)
	return h.site.Prepare(&rec)
}

// acquire takes one of this handler's guest slots and returns the deadline for the rest
// of the request's wait, the process's slot: MaxWait from now, plus the time spent waiting
// for the module to load, so a request waits once, not once per pool.
func (h *Handler) acquire(r *http.Request, s script) (time.Time, error) {
	deadline := time.Now().Add(time.Duration(h.MaxWait))
	// Slots busy for longer than a request normally takes are often held by requests
	// waiting for a module to compile: then wait for this request's module to be ready
	// first, holding no slot, so a compile does not count against max_wait.
	if h.slots.Acquire(r.Context(), min(loadCheckAfter, time.Until(deadline))) {
		return deadline, nil
	}
	loading := time.Now()
	h.loads.wait(r.Context(), s.filename, func() { _ = h.prepare(s.filename) })
	deadline = deadline.Add(time.Since(loading))
	if h.slots.Acquire(r.Context(), time.Until(deadline)) {
		return deadline, nil
	}
	if err := r.Context().Err(); err != nil {
		return deadline, caddyhttp.Error(499, err)
	}
	h.logger.Warn("all guest slots busy", zap.String("module", s.filename), zap.Int("max_instances", h.MaxInstances),
		zap.String("path", r.URL.Path))
	return deadline, caddyhttp.Error(http.StatusServiceUnavailable, fmt.Errorf("wagi: no guest slot free within %s", time.Duration(h.MaxWait)))
}

// loadCheckAfter is how long a request waits for a slot before checking whether its
// module is still loading.
const loadCheckAfter = 100 * time.Millisecond

// tlsProtocolName names a TLS version as Apache's mod_ssl does in SSL_PROTOCOL.
func tlsProtocolName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLSv1"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return ""
}
