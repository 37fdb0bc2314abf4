package engine

/*
#include "wagi.h"
extern void wagiGoEngineLog(uint8_t level, uint8_t *msg, size_t len, uint8_t *module, size_t module_len, uint8_t *site, size_t site_len);
static void wagi_set_engine_log(wagi_engine_config *c) {
	c->log = (void (*)(uint8_t, const uint8_t *, size_t, const uint8_t *, size_t, const uint8_t *, size_t))wagiGoEngineLog;
}
*/
import "C"

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// engineLog receives engine-level log lines (wagiGoEngineLog).
var engineLog atomic.Pointer[EngineLogFunc]

// EngineLogFunc receives a line the engine logs outside any request, with the module path
// and site root it is about (each empty when it is about none).
type EngineLogFunc func(level LogLevel, msg string, fields LogFields)

// LogFields says what an engine-level log line is about.
type LogFields struct {
	// Module is the module's path.
	Module string
	// Site is the site root of the WCGI instance concerned.
	Site string
}

// Config holds the settings fixed for an engine's life.
type Config struct {
	// Slots is how many guests may run at once; more requests wait for a slot.
	Slots int
	// MemoryCeiling is the largest linear memory any guest may have, in bytes (0: 4 GiB).
	MemoryCeiling uint64
	// WCGIInstances is how many long-lived instances may live at once (0: 64).
	WCGIInstances int
	// CompileConcurrency is how many modules may compile at once (0: half the CPUs).
	CompileConcurrency int
	// Log receives what the engine logs outside requests (idle modules dropped, modules
	// prepared, WCGI instances ending and their stderr). It is called from the engine's
	// own threads.
	Log EngineLogFunc
}

// Engine is a loaded Rust engine: module cache, instance pool, time limits.
type Engine struct {
	ptr   *C.wagi_engine
	slots Slots
	// calls is held shared by every call into the engine and exclusively by Destruct, so
	// the engine is never freed under a running request or precompile; calls after it
	// fail instead of using freed memory.
	calls sync.RWMutex
	// waiting counts requests waiting for one of the process's slots.
	waiting atomic.Int64
	// stopIdle ends releaseWhenIdle; closed by Destruct.
	stopIdle chan struct{}
}

// Failure says what failed; the values are wagi.h's wagi_failure.
type Failure int

// Failures the handler tells apart.
const (
	FailureNotFound   Failure = C.WAGI_FAILURE_NOT_FOUND
	FailureTimeout    Failure = C.WAGI_FAILURE_TIMEOUT
	FailureClientGone Failure = C.WAGI_FAILURE_CLIENT_GONE
	FailureBusy       Failure = C.WAGI_FAILURE_BUSY
	FailureInternal   Failure = C.WAGI_FAILURE_INTERNAL
)

// Error is a failed request as the engine reports it.
type Error struct {
	// Status is the HTTP status to answer with while no head was sent.
	Status int
	// Failure is what failed, for comparisons.
	Failure Failure
	// Kind is a stable name such as "timeout" or "trap", for logs.
	Kind string
	// Message explains the failure for the log.
	Message string
}

func (e *Error) Error() string { return e.Kind + ": " + e.Message }

// New creates an engine.
func New(cfg Config) (*Engine, error) {
	if cfg.Slots <= 0 {
		return nil, fmt.Errorf("engine needs at least one slot")
	}
	c := C.wagi_engine_config{
		instance_slots:       C.uint32_t(cfg.Slots),
		memory_ceiling_bytes: C.uint64_t(cfg.MemoryCeiling),
		wcgi_instance_slots:  C.uint32_t(cfg.WCGIInstances),
		compile_concurrency:  C.uint32_t(cfg.CompileConcurrency),
	}
	if cfg.Log != nil {
		engineLog.Store(&cfg.Log)
		C.wagi_set_engine_log(&c)
	}
	var ptr *C.wagi_engine
	var cerr *C.wagi_error
	if C.wagi_engine_new(&c, &ptr, &cerr) != C.WAGI_OK {
		return nil, takeError(cerr)
	}
	e := &Engine{ptr: ptr, slots: NewSlots(cfg.Slots), stopIdle: make(chan struct{})}
	go e.releaseWhenIdle(e.stopIdle)
	return e, nil
}

// Destruct frees the engine once the calls into it have returned; it implements
// caddy.Destructor.
func (e *Engine) Destruct() error {
	e.calls.Lock()
	defer e.calls.Unlock()
	if e.ptr != nil {
		close(e.stopIdle)
		C.wagi_engine_free(e.ptr)
		e.ptr = nil
	}
	return nil
}

// acquire takes one of the process's guest slots, waiting until deadline: what is left of
// the request's max_wait after it waited for its handler's slot.
func (e *Engine) acquire(ctx context.Context, deadline time.Time) *Error {
	e.waiting.Add(1)
	got := e.slots.Acquire(ctx, time.Until(deadline))
	e.waiting.Add(-1)
	if got {
		return nil
	}
	if ctx.Err() != nil {
		return &Error{Status: 499, Failure: FailureClientGone, Kind: "client_gone", Message: "client went away while waiting for a slot"}
	}
	return &Error{Status: 503, Failure: FailureBusy, Kind: "busy",
		Message: fmt.Sprintf("all %d guest slots of the process stayed busy for the request's max_wait", cap(e.slots))}
}

// Busy reports how many of the process's guest slots are taken and how many requests
// wait for one.
func (e *Engine) Busy() (running, waiting int64) {
	return int64(len(e.slots)), e.waiting.Load()
}

// takeError converts and frees an engine error.
func takeError(cerr *C.wagi_error) *Error {
	if cerr == nil {
		return &Error{Status: 500, Failure: FailureInternal, Kind: "internal", Message: "engine failed without an error"}
	}
	defer C.wagi_error_free(cerr)
	var n C.size_t
	msg := C.wagi_error_message(cerr, &n)
	return &Error{
		Status:  int(C.wagi_error_status(cerr)),
		Failure: Failure(C.wagi_error_failure(cerr)),
		Kind:    C.GoString(C.wagi_error_kind(cerr)),
		Message: C.GoStringN((*C.char)(unsafe.Pointer(msg)), C.int(n)),
	}
}
