package wagi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// checkBody enforces MaxBody before the guest runs. A body of known length over the limit
// is refused unread. A body of unknown length (chunked) is read here, counted as it
// arrives and refused as soon as it passes the limit; otherwise it is handed to the guest
// with its length, since a CGI program reads exactly CONTENT_LENGTH bytes of stdin and a
// chunked body would reach it as empty. It is spooled (see spool), so memory does not
// grow with uploads; the caller closes the returned body when the request ends.
func (h *Handler) checkBody(w http.ResponseWriter, r *http.Request, s script) (io.Closer, error) {
	if r.ContentLength > h.MaxBody {
		return nil, h.bodyTooLarge(w, s)
	}
	if r.ContentLength >= 0 || r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	// Spooling holds no guest slot, but it must not last longer than the request may: a
	// client trickling a chunked body is cut off at the same deadline a guest would be.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(time.Duration(h.Timeout)))
	body, n, err := spool(r.Body, h.MaxBody)
	_ = rc.SetReadDeadline(time.Time{})
	if errors.Is(err, os.ErrDeadlineExceeded) {
		h.logger.Warn("request body not received within timeout", zap.String("module", s.filename), zap.Duration("timeout", time.Duration(h.Timeout)))
		w.Header().Set("Connection", "close")
		return nil, caddyhttp.Error(http.StatusRequestTimeout, fmt.Errorf("wagi: request body not received within %s", time.Duration(h.Timeout)))
	}
	if errors.Is(err, errSpoolWrite) {
		h.logger.Error("spooling request body failed", zap.String("module", s.filename), zap.Error(err))
		return nil, caddyhttp.Error(http.StatusInternalServerError, err)
	}
	if err != nil {
		return nil, caddyhttp.Error(http.StatusBadRequest, fmt.Errorf("wagi: reading request body: %w", err))
	}
	if n > h.MaxBody {
		_ = body.Close()
		return nil, h.bodyTooLarge(w, s)
	}
	r.Body = body
	r.ContentLength = n
	return body, nil
}

// bodyTooLarge answers 413 and closes the connection, since the rest of the body is
// still on its way.
func (h *Handler) bodyTooLarge(w http.ResponseWriter, s script) error {
	h.logger.Warn("request body over max_body", zap.String("module", s.filename), zap.Int64("max_body", h.MaxBody))
	w.Header().Set("Connection", "close")
	return caddyhttp.Error(http.StatusRequestEntityTooLarge, fmt.Errorf("wagi: request body over max_body %d", h.MaxBody))
}
