package wagi

import (
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-wagi/caddy-wagi/caddy-module/engine"
)

// exchange connects one running guest to Caddy's request and response.
type exchange struct {
	w      http.ResponseWriter
	r      *http.Request
	rc     *http.ResponseController
	logger *zap.Logger
	module string
	// site is the site root, logged with the module.
	site     string
	headSent bool
	// status is what the guest's head said, once sent.
	status int
	// maxBody is the body size allowed; reads past it fail and set tooLarge.
	maxBody int64
	// bodyRead, tooLarge and onWire are written by body reads, which for a component run
	// on a thread of their own while the head goes out from the request's: atomics.
	bodyRead atomic.Int64
	tooLarge atomic.Bool
	// onWire is true while an HTTP/1 request body may still have bytes on the connection,
	// where the client's next request follows it (see unread.go).
	onWire atomic.Bool
	// fullDuplex is set once the head went out before the body was read to its end;
	// closing is set when that head also asked to close the connection.
	fullDuplex bool
	closing    bool
	// release gives back the handler's guest slot; idempotent.
	release func()
	// deadline is when the request must be over (zero: none). It is put on the
	// connection only before I/O that can wait on the client (see armRead, armWriteFor), so
	// a request without a body and with a small answer costs no timer.
	deadline              time.Time
	readArmed, writeArmed bool
	// written counts the body bytes handed to the ResponseWriter.
	written int
}

// newExchange connects a guest to w and r. spooled is true when checkBody read the body
// off the connection already.
func newExchange(w http.ResponseWriter, r *http.Request, logger *zap.Logger, module string, maxBody int64, spooled bool, release func()) *exchange {
	e := &exchange{w: w, r: r, rc: http.NewResponseController(w), logger: logger, module: module, maxBody: maxBody,
		release: release}
	e.onWire.Store(r.ProtoMajor == 1 && r.ContentLength != 0 && !spooled)
	return e
}

func (e *exchange) ReleaseSlot() { e.release() }

// errBodyTooLarge stops a guest reading a body over the limit.
var errBodyTooLarge = errors.New("request body larger than max_body")

func (e *exchange) Read(p []byte) (int, error) {
	if e.tooLarge.Load() {
		return 0, errBodyTooLarge
	}
	// Read at most one byte past the limit: enough to know it was passed.
	if room := e.maxBody - e.bodyRead.Load() + 1; int64(len(p)) > room {
		p = p[:room]
	}
	e.armRead()
	n, err := e.r.Body.Read(p)
	read := e.bodyRead.Add(int64(n))
	if err == io.EOF {
		e.onWire.Store(false)
	}
	if read > e.maxBody {
		e.tooLarge.Store(true)
		return 0, errBodyTooLarge
	}
	return n, err
}

func (e *exchange) Header() http.Header { return e.w.Header() }

func (e *exchange) WriteHead(status int, body []byte, flush bool) bool {
	if e.tooLarge.Load() {
		// The guest answers a body it could not read whole: the answer is 413 instead.
		return false
	}
	e.headSent = true
	e.status = status
	if e.onWire.Load() {
		e.streamRestOfBody()
	}
	e.armWriteFor(len(body), flush)
	e.w.WriteHeader(status)
	if len(body) > 0 {
		if _, err := e.w.Write(body); err != nil {
			return false
		}
	}
	if flush {
		return e.rc.Flush() == nil
	}
	return true
}

func (e *exchange) WriteBody(p []byte, flush bool) bool {
	e.armWriteFor(len(p), flush)
	if _, err := e.w.Write(p); err != nil {
		return false
	}
	if flush {
		return e.rc.Flush() == nil
	}
	return true
}

func (e *exchange) Log(level engine.LogLevel, msg string) {
	module, site := zap.String("module", e.module), zap.String("site", e.site)
	if level == engine.LogGuestStderr {
		e.logger.Info("guest stderr", module, site, zap.String("line", msg))
		return
	}
	logAt(e.logger, level, msg, module, site)
}

// logAt logs msg at the engine's level.
func logAt(logger *zap.Logger, level engine.LogLevel, msg string, fields ...zap.Field) {
	switch level {
	case engine.LogInfo, engine.LogGuestStderr:
		logger.Info(msg, fields...)
	case engine.LogWarn:
		logger.Warn(msg, fields...)
	case engine.LogError:
		logger.Error(msg, fields...)
	default:
		logger.Debug(msg, fields...)
	}
}

func (e *exchange) Cancelled() bool { return e.r.Context().Err() != nil }

// SetDeadline bounds body reads and response writes: a client that trickles its body or
// stops reading the response fails them at the request's deadline instead of holding the
// guest. The connection gets it only once such I/O may wait (armRead, armWriteFor); one that
// did already is moved to t at once. (Either call may be unsupported by the connection;
// then Caddy's own server timeouts are the bound.)
func (e *exchange) SetDeadline(t time.Time) {
	e.deadline = t
	if e.readArmed {
		_ = e.rc.SetReadDeadline(t)
	}
	if e.writeArmed {
		_ = e.rc.SetWriteDeadline(t)
	}
}

// armRead puts the deadline on body reads, before the first one.
func (e *exchange) armRead() {
	if !e.readArmed && !e.deadline.IsZero() {
		e.readArmed = true
		_ = e.rc.SetReadDeadline(e.deadline)
	}
}

// unbufferedAfter is how many body bytes net/http holds before any reach the connection
// (its bufferBeforeChunkingSize, and under HTTP/2's 4 KiB write buffer): writes up to it
// cannot wait on the client.
const unbufferedAfter = 2048

// armWriteFor puts the deadline on response writes before a write of n more body bytes
// that may reach the connection: a flush, or past unbufferedAfter in all.
func (e *exchange) armWriteFor(n int, flush bool) {
	e.written += n
	if !e.writeArmed && !e.deadline.IsZero() && (flush || e.written > unbufferedAfter) {
		e.writeArmed = true
		_ = e.rc.SetWriteDeadline(e.deadline)
	}
}

// liftDeadline undoes what SetDeadline put on the connection once the guest is done, so
// an error page can still be written and a kept-alive connection's next request is not
// cut short.
func (e *exchange) liftDeadline() {
	if e.readArmed {
		_ = e.rc.SetReadDeadline(time.Time{})
	}
	if e.writeArmed {
		_ = e.rc.SetWriteDeadline(time.Time{})
	}
	e.readArmed, e.writeArmed, e.deadline = false, false, time.Time{}
}

var _ engine.Exchange = (*exchange)(nil)
