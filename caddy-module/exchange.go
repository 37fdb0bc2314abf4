package wagi

import (
	"errors"
	"io"
	"net/http"
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
	maxBody  int64
	bodyRead int64
	tooLarge bool
	// onWire is true while an HTTP/1 request body may still have bytes on the connection,
	// where the client's next request follows it (see unread.go).
	onWire bool
	// fullDuplex is set once the head went out before the body was read to its end;
	// closing is set when that head also asked to close the connection.
	fullDuplex bool
	closing    bool
	// release gives back the handler's guest slot; idempotent.
	release func()
}

// newExchange connects a guest to w and r. spooled is true when checkBody read the body
// off the connection already.
func newExchange(w http.ResponseWriter, r *http.Request, logger *zap.Logger, module string, maxBody int64, spooled bool, release func()) *exchange {
	return &exchange{w: w, r: r, rc: http.NewResponseController(w), logger: logger, module: module, maxBody: maxBody,
		onWire: r.ProtoMajor == 1 && r.ContentLength != 0 && !spooled, release: release}
}

func (e *exchange) ReleaseSlot() { e.release() }

// errBodyTooLarge stops a guest reading a body over the limit.
var errBodyTooLarge = errors.New("request body larger than max_body")

func (e *exchange) Read(p []byte) (int, error) {
	if e.tooLarge {
		return 0, errBodyTooLarge
	}
	// Read at most one byte past the limit: enough to know it was passed.
	if room := e.maxBody - e.bodyRead + 1; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := e.r.Body.Read(p)
	e.bodyRead += int64(n)
	if err == io.EOF {
		e.onWire = false
	}
	if e.bodyRead > e.maxBody {
		e.tooLarge = true
		return 0, errBodyTooLarge
	}
	return n, err
}

func (e *exchange) Header() http.Header { return e.w.Header() }

func (e *exchange) WriteHead(status int, body []byte, flush bool) bool {
	if e.tooLarge {
		// The guest answers a body it could not read whole: the answer is 413 instead.
		return false
	}
	e.headSent = true
	e.status = status
	if e.onWire {
		e.streamRestOfBody()
	}
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
// guest. (Either call may be unsupported by the connection; then Caddy's own server
// timeouts are the bound.)
func (e *exchange) SetDeadline(t time.Time) {
	_ = e.rc.SetReadDeadline(t)
	_ = e.rc.SetWriteDeadline(t)
}

// liftDeadline undoes SetDeadline once the guest is done.
func (e *exchange) liftDeadline() { e.SetDeadline(time.Time{}) }

var _ engine.Exchange = (*exchange)(nil)
