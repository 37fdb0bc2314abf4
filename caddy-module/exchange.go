package wagi

import (
	"net/http"

	"go.uber.org/zap"

	"github.com/caddy-wagi/caddy-wagi/caddy-module/engine"
)

// exchange connects one running guest to Caddy's request and response.
type exchange struct {
	w        http.ResponseWriter
	r        *http.Request
	rc       *http.ResponseController
	logger   *zap.Logger
	module   string
	headSent bool
}

func newExchange(w http.ResponseWriter, r *http.Request, logger *zap.Logger, module string) *exchange {
	return &exchange{w: w, r: r, rc: http.NewResponseController(w), logger: logger, module: module}
}

func (e *exchange) Read(p []byte) (int, error) { return e.r.Body.Read(p) }

func (e *exchange) Header() http.Header { return e.w.Header() }

func (e *exchange) WriteHead(status int, flush bool) bool {
	e.headSent = true
	e.w.WriteHeader(status)
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
	module := zap.String("module", e.module)
	switch level {
	case engine.LogGuestStderr:
		e.logger.Info("guest stderr", module, zap.String("line", msg))
	case engine.LogInfo:
		e.logger.Info(msg, module)
	case engine.LogWarn:
		e.logger.Warn(msg, module)
	case engine.LogError:
		e.logger.Error(msg, module)
	default:
		e.logger.Debug(msg, module)
	}
}

func (e *exchange) Cancelled() bool { return e.r.Context().Err() != nil }

var _ engine.Exchange = (*exchange)(nil)
