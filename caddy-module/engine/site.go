package engine

/*
#include "wagi.h"
extern const wagi_host wagi_go_host;
*/
import "C"

import (
	"context"
	"errors"
	"sync"
	"time"
	"unsafe"
)

// Site is one configured site of the engine: what its requests share (env, mounts,
// limits, cache, mode) and its long-lived WCGI instances. Sites made from equal records
// are one site in the engine, so a config reload that changes nothing for a site keeps its
// instances.
type Site struct {
	e *Engine
	// mu is held for reading by every call into the site and for writing by Close, so the
	// site is never freed under a running request.
	mu  sync.RWMutex
	ptr *C.wagi_site
	// closing makes Close run once; freed is closed once the site is freed.
	closing sync.Once
	freed   chan struct{}
}

// NewSite makes a site from its configuration record (the fields that hold for every
// request). Records must be encoded canonically: equal configurations, equal bytes.
func (e *Engine) NewSite(rec *Record) (*Site, error) {
	if len(rec.buf) == 0 {
		return nil, errors.New("empty site record")
	}
	e.calls.RLock()
	defer e.calls.RUnlock()
	if e.ptr == nil {
		return nil, errors.New("the engine was freed (config unloaded)")
	}
	var ptr *C.wagi_site
	var cerr *C.wagi_error
	if C.wagi_site_new(e.ptr, (*C.uint8_t)(unsafe.Pointer(&rec.buf[0])), C.size_t(len(rec.buf)), &ptr, &cerr) != C.WAGI_OK {
		return nil, takeError(cerr)
	}
	return &Site{e: e, ptr: ptr, freed: make(chan struct{})}, nil
}

// Close frees the site once the requests running on it are done, without waiting for
// them. Later calls on it fail.
func (s *Site) Close() {
	s.closing.Do(func() {
		go func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			C.wagi_site_free(s.ptr)
			s.ptr = nil
			close(s.freed)
		}()
	})
}

var errSiteClosed = &Error{Status: 503, Failure: FailureInternal, Kind: "internal", Message: "the site was closed by a config reload"}

// Handle runs the request described by rec (its own fields; the site adds its own),
// talking to ex. It waits until deadline for a free slot of the process (as a goroutine,
// holding no OS thread), then blocks its thread in the guest; a request relayed to a
// long-lived WCGI instance waits for the guest's answer as a goroutine too.
func (s *Site) Handle(ctx context.Context, rec *Record, ex Exchange, deadline time.Time) *Error {
	if err := s.e.acquire(ctx, deadline); err != nil {
		return err
	}
	defer s.e.slots.Release()
	id := register(ex)
	defer unregister(id)
	w := takeWaker()
	defer putWaker(w)
	var pending *C.wagi_pending
	// The site stays open until the request is over, its waiting included.
	return s.call(rec, func(ptr *C.wagi_site, buf *C.uint8_t, n C.size_t) *Error {
		var cerr *C.wagi_error
		if C.wagi_handle(ptr, buf, n, &C.wagi_go_host, C.uint64_t(id), w.ptrOrNil(), &pending, &cerr) != C.WAGI_OK {
			return takeError(cerr)
		}
		if pending != nil {
			return finishPending(w, pending)
		}
		return nil
	})
}

// Prepare loads the module named in rec (FieldModulePath) with the site's cache settings,
// without running it, so its first request does not wait for a compile.
func (s *Site) Prepare(rec *Record) *Error {
	return s.call(rec, func(ptr *C.wagi_site, buf *C.uint8_t, n C.size_t) *Error {
		var cerr *C.wagi_error
		if C.wagi_prepare(ptr, buf, n, &cerr) != C.WAGI_OK {
			return takeError(cerr)
		}
		return nil
	})
}

// call runs f, one use of the engine, on the open site with rec, holding the site open
// meanwhile.
func (s *Site) call(rec *Record, f func(*C.wagi_site, *C.uint8_t, C.size_t) *Error) *Error {
	if len(rec.buf) == 0 {
		return &Error{Status: 500, Failure: FailureInternal, Kind: "internal", Message: "empty request record"}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ptr == nil {
		return errSiteClosed
	}
	return f(s.ptr, (*C.uint8_t)(unsafe.Pointer(&rec.buf[0])), C.size_t(len(rec.buf)))
}
