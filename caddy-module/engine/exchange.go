package engine

import (
	"io"
	"net/http"
	"sync"
	"time"
)

// LogLevel is the severity of a line the engine logs about a request.
type LogLevel int

// Levels as the engine sends them (see wagi_host.log in wagi.h).
const (
	LogDebug LogLevel = 0
	LogInfo  LogLevel = 1
	LogWarn  LogLevel = 2
	LogError LogLevel = 3
	// LogGuestStderr marks a line the guest wrote to stderr.
	LogGuestStderr LogLevel = 4
)

// Exchange is the server side of one request while the engine runs it. Its methods are
// called on the goroutine that called Site.Handle.
type Exchange interface {
	// Read reads the request body.
	io.Reader
	// Header is the response header map, filled before WriteHead.
	Header() http.Header
	// WriteHead sends the status, Header() and the first body bytes (possibly none; only
	// valid during the call); false if the client is gone.
	WriteHead(status int, body []byte, flush bool) bool
	// WriteBody sends body bytes; false if the client is gone. p is only valid during the call.
	WriteBody(p []byte, flush bool) bool
	// Log records a line about the request: guest stderr at LogGuestStderr.
	Log(level LogLevel, msg string)
	// Cancelled reports whether the client has gone away.
	Cancelled() bool
	// ReleaseSlot is called when the request runs on a long-lived instance and no longer
	// needs the concurrency slot it waited for.
	ReleaseSlot()
	// SetDeadline is when the request must be over: Read, WriteHead and WriteBody must
	// fail rather than block past it. The caller of Site.Handle lifts it afterwards.
	SetDeadline(t time.Time)
}

// exchanges maps the ctx value passed through C to the Exchange of a running request, so
// no Go pointer crosses the boundary.
var exchanges = struct {
	sync.Mutex
	next uint64
	live map[uint64]Exchange
}{live: make(map[uint64]Exchange)}

func register(ex Exchange) uint64 {
	exchanges.Lock()
	defer exchanges.Unlock()
	exchanges.next++
	exchanges.live[exchanges.next] = ex
	return exchanges.next
}

func unregister(id uint64) {
	exchanges.Lock()
	delete(exchanges.live, id)
	exchanges.Unlock()
}

func lookup(id uint64) Exchange {
	exchanges.Lock()
	defer exchanges.Unlock()
	return exchanges.live[id]
}
