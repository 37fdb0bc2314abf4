package engine

/*
#include "wagi.h"
*/
import "C"

import (
	"os"
	"sync"
)

// waker is an eventfd the engine makes readable when a request waiting on a long-lived
// WCGI instance can go on. The request's goroutine waits for it in Go's netpoller, so a
// request waiting for a guest's answer holds no OS thread (and Go's sysmon finds no thread
// stuck in a cgo call to take a processor from).
type waker struct {
	ptr  *C.wagi_waker
	file *os.File
	buf  [8]byte
	// broken is set when waiting on it failed; it is closed, not reused.
	broken bool
}

// keptWakers bounds the wakers kept for reuse (two descriptors each); more are made on
// demand under a burst and closed after it.
const keptWakers = 64

var wakers struct {
	sync.Mutex
	free []*waker
}

// takeWaker returns a free waker, or a new one; nil if none can be made (out of
// descriptors), and the request then waits on its thread as before.
func takeWaker() *waker {
	wakers.Lock()
	if n := len(wakers.free); n > 0 {
		w := wakers.free[n-1]
		wakers.free = wakers.free[:n-1]
		wakers.Unlock()
		return w
	}
	wakers.Unlock()
	var fd C.int32_t
	var ptr *C.wagi_waker
	var cerr *C.wagi_error
	if C.wagi_waker_new(&fd, &ptr, &cerr) != C.WAGI_OK {
		C.wagi_error_free(cerr)
		return nil
	}
	// The descriptor is non-blocking, so os.NewFile registers it with the netpoller.
	return &waker{ptr: ptr, file: os.NewFile(uintptr(fd), "wagi-waker")}
}

// putWaker keeps w for the next request, or frees it when enough are kept.
func putWaker(w *waker) {
	if w == nil {
		return
	}
	wakers.Lock()
	if !w.broken && len(wakers.free) < keptWakers {
		wakers.free = append(wakers.free, w)
		wakers.Unlock()
		return
	}
	wakers.Unlock()
	w.file.Close()
	C.wagi_waker_free(w.ptr)
}

// ptrOrNil is the engine's handle of w, or nil for no waker.
func (w *waker) ptrOrNil() *C.wagi_waker {
	if w == nil {
		return nil
	}
	return w.ptr
}

// wait parks the goroutine until the engine wakes the request; the engine bounds how long
// (its deadline checks wake it at least every epoch tick).
func (w *waker) wait() error {
	_, err := w.file.Read(w.buf[:])
	return err
}

// finishPending polls a request the engine left waiting until it is over. On a failed
// wait the request is abandoned (the guest's stream is reset).
func finishPending(w *waker, pending *C.wagi_pending) *Error {
	for {
		if err := w.wait(); err != nil {
			w.broken = true
			C.wagi_pending_free(pending)
			return &Error{Status: 500, Failure: FailureInternal, Kind: "internal", Message: "waiting for the WCGI instance failed: " + err.Error()}
		}
		var done C.bool
		var cerr *C.wagi_error
		if C.wagi_pending_poll(pending, &done, &cerr) != C.WAGI_OK {
			return takeError(cerr)
		}
		if done {
			return nil
		}
	}
}
