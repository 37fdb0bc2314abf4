package wagi

import (
	"errors"
	"io"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// A guest may answer before it has read the whole request body, or never read it. On
// HTTP/1 the rest of the body then still sits on the connection, in front of the client's
// next request, and must never be parsed as one (request smuggling). net/http discards or
// closes by itself, unless the handler asked for full duplex, which a guest that streams
// its answer while still reading needs; and Caddy's body wrappers hide an early close from
// net/http's reuse check. So the exchange does what net/http would: after the guest, it
// reads and drops at most drainLimit bytes within drainTimeout to keep the connection,
// and otherwise has it closed. A guest that read its body whole, the common case, costs
// nothing of this.

// drainLimit is the most of an unread body read and thrown away to keep the connection;
// net/http's maxPostHandlerReadBytes.
const drainLimit = 256 << 10

// drainTimeout bounds that reading, for a client that stops sending.
const drainTimeout = 2 * time.Second

// streamRestOfBody is called as the head goes out while body bytes may still be on the
// connection: the guest may read on, so full duplex keeps net/http from cutting the body
// off. When more than drainLimit is left, or the client still waits for a 100 Continue to
// send it, the head also asks to close the connection after the response.
func (e *exchange) streamRestOfBody() {
	if e.rc.EnableFullDuplex() != nil {
		return
	}
	e.fullDuplex = true
	read := e.bodyRead.Load()
	if e.r.ContentLength < 0 || e.r.ContentLength-read > drainLimit ||
		(read == 0 && e.r.Header.Get("Expect") != "") {
		e.w.Header().Set("Connection", "close")
		e.closing = true
	}
}

// settleBody runs after the guest ended with its response sent, while full duplex left
// body bytes on the connection. It reads them through http.MaxBytesReader on net/http's
// own ResponseWriter: past the limit (none when the connection closes anyway) that has
// net/http close the connection after the response, lingering so that the client reads
// the response before the close resets it. A client that stops sending is cut off: its
// response already went out without asking to close the connection.
func (e *exchange) settleBody() {
	if !e.fullDuplex || !e.onWire.Load() {
		return
	}
	// The response is complete: it goes out now, not after the drain, so a client that
	// waits for it before sending the rest of its body gets it (whole, when its length is
	// known) instead of waiting out drainTimeout.
	_ = e.rc.Flush()
	closing := e.closing || e.r.Close
	limit := int64(drainLimit)
	if closing {
		limit = 0
	}
	_ = e.rc.SetReadDeadline(time.Now().Add(drainTimeout))
	_, err := io.Copy(io.Discard, http.MaxBytesReader(innermost(e.w), e.r.Body, limit))
	_ = e.rc.SetReadDeadline(time.Time{})
	var over *http.MaxBytesError
	if err == nil || closing || errors.As(err, &over) {
		return
	}
	e.logger.Warn("client stopped sending a request body the guest left unread; closing the connection",
		zap.String("module", e.module), zap.Error(err))
	panic(http.ErrAbortHandler)
}

// innermost unwraps w to net/http's own ResponseWriter, as http.ResponseController does;
// Caddy's wrappers would hide from http.MaxBytesReader that it can close the connection.
func innermost(w http.ResponseWriter) http.ResponseWriter {
	for {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return w
		}
		w = u.Unwrap()
	}
}
