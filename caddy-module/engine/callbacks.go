package engine

/*
#include "wagi.h"
*/
import "C"

import (
	"bytes"
	"errors"
	"io"
	"time"
	"unsafe"
)

// The functions below are called by the Rust engine during wagi_handle. Each recovers
// from panics: a panic must not unwind through Rust frames.

//export wagiGoReadBody
func wagiGoReadBody(ctx C.uint64_t, buf *C.uint8_t, n C.size_t) (count C.int64_t) {
	defer func() {
		if recover() != nil {
			count = -1
		}
	}()
	ex := lookup(uint64(ctx))
	if ex == nil || n == 0 {
		return -1
	}
	p := unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(n))
	for {
		got, err := ex.Read(p)
		if got > 0 {
			return C.int64_t(got)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return 0
			}
			return -1
		}
	}
}

//export wagiGoSendHead
func wagiGoSendHead(ctx C.uint64_t, status C.uint16_t, fields *C.uint8_t, n C.size_t, body *C.uint8_t, bodyLen C.size_t, flush C.bool) C.bool {
	return withExchange(ctx, func(ex Exchange) bool {
		return sendHead(ex, int(status), fields, n, body, bodyLen, bool(flush))
	})
}

func sendHead(ex Exchange, status int, fields *C.uint8_t, n C.size_t, body *C.uint8_t, bodyLen C.size_t, flush bool) bool {
	h := ex.Header()
	// Fields are `name NUL value NUL` pairs (see wagi_host.send_head).
	rest := unsafe.Slice((*byte)(unsafe.Pointer(fields)), int(n))
	for len(rest) > 0 {
		name, afterName, _ := bytes.Cut(rest, []byte{0})
		value, afterValue, _ := bytes.Cut(afterName, []byte{0})
		h.Add(string(name), string(value))
		rest = afterValue
	}
	var first []byte
	if bodyLen > 0 {
		first = unsafe.Slice((*byte)(unsafe.Pointer(body)), int(bodyLen))
	}
	return ex.WriteHead(status, first, flush)
}

//export wagiGoWriteBody
func wagiGoWriteBody(ctx C.uint64_t, data *C.uint8_t, n C.size_t, flush C.bool) C.bool {
	return withExchange(ctx, func(ex Exchange) bool {
		return ex.WriteBody(unsafe.Slice((*byte)(unsafe.Pointer(data)), int(n)), bool(flush))
	})
}

// withExchange runs f with the request's Exchange; a missing request or a panic in f
// reports false (the client is treated as gone).
func withExchange(ctx C.uint64_t, f func(Exchange) bool) (ok C.bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	ex := lookup(uint64(ctx))
	return C.bool(ex != nil && f(ex))
}

//export wagiGoEngineLog
func wagiGoEngineLog(level C.uint8_t, msg *C.uint8_t, n C.size_t, module *C.uint8_t, moduleLen C.size_t, site *C.uint8_t, siteLen C.size_t) {
	defer func() { _ = recover() }()
	log := engineLog.Load()
	if log == nil {
		return
	}
	str := func(p *C.uint8_t, n C.size_t) string { return C.GoStringN((*C.char)(unsafe.Pointer(p)), C.int(n)) }
	(*log)(LogLevel(level), str(msg, n), LogFields{Module: str(module, moduleLen), Site: str(site, siteLen)})
}

//export wagiGoLog
func wagiGoLog(ctx C.uint64_t, level C.uint8_t, msg *C.uint8_t, n C.size_t) {
	defer func() { _ = recover() }()
	text := C.GoStringN((*C.char)(unsafe.Pointer(msg)), C.int(n))
	if ex := lookup(uint64(ctx)); ex != nil {
		ex.Log(LogLevel(level), text)
	}
}

//export wagiGoReleaseSlot
func wagiGoReleaseSlot(ctx C.uint64_t) {
	withExchange(ctx, func(ex Exchange) bool {
		ex.ReleaseSlot()
		return true
	})
}

//export wagiGoCancelled
func wagiGoCancelled(ctx C.uint64_t) (gone C.bool) {
	defer func() {
		if r := recover(); r != nil {
			gone = true
		}
	}()
	ex := lookup(uint64(ctx))
	return C.bool(ex == nil || ex.Cancelled())
}

//export wagiGoSetDeadline
func wagiGoSetDeadline(ctx C.uint64_t, ms C.uint64_t) {
	withExchange(ctx, func(ex Exchange) bool {
		ex.SetDeadline(time.Now().Add(time.Duration(ms) * time.Millisecond))
		return true
	})
}
