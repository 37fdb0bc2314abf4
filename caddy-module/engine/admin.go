package engine

/*
#include "wagi.h"
*/
import "C"

import (
	"encoding/json"
	"errors"
	"fmt"
	"unsafe"
)

// Listing is what the engine holds: its loaded modules and the long-lived instances of
// all its sites (the JSON of wagi_engine_list).
type Listing struct {
	Modules   []Module   `json:"modules"`
	Instances []Instance `json:"instances"`
}

// Module is a module loaded in memory.
type Module struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
	// LoadedAt and LastUsed are milliseconds since the Unix epoch; LoadedAt is 0 when
	// unknown.
	LoadedAt   int64 `json:"loaded_at"`
	LastUsed   int64 `json:"last_used"`
	WCGIExport bool  `json:"wcgi_export"`
	// Tier is the compile tier it serves with now (baseline or optimized), and
	// CodeReadyAt when that code was ready (milliseconds since the Unix epoch).
	Tier        string `json:"tier"`
	CodeReadyAt int64  `json:"code_ready_at"`
	// Component is true for a wasi:http component.
	Component bool `json:"component"`
}

// Instance is a running long-lived (WCGI) instance.
type Instance struct {
	Module string `json:"module"`
	// Site is the site root it serves.
	Site string `json:"site"`
	// StartedAt is milliseconds since the Unix epoch.
	StartedAt   int64 `json:"started_at"`
	Inflight    int   `json:"inflight"`
	MemoryBytes int64 `json:"memory_bytes"`
}

var errFreed = errors.New("the engine was freed (config unloaded)")

// List returns the loaded modules and the running long-lived instances.
func (e *Engine) List() (*Listing, error) {
	e.calls.RLock()
	defer e.calls.RUnlock()
	if e.ptr == nil {
		return nil, errFreed
	}
	buf := make([]byte, 4096)
	// The listing may grow between two calls: a few tries with the size it last had.
	for try := 0; try < 4; try++ {
		var n C.size_t
		var cerr *C.wagi_error
		if C.wagi_engine_list(e.ptr, (*C.uint8_t)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), &n, &cerr) != C.WAGI_OK {
			return nil, takeError(cerr)
		}
		if int(n) <= len(buf) {
			var l Listing
			if err := json.Unmarshal(buf[:n], &l); err != nil {
				return nil, fmt.Errorf("engine listing: %w", err)
			}
			return &l, nil
		}
		buf = make([]byte, 2*int(n))
	}
	return nil, errors.New("engine listing kept growing")
}

// Restart drains the long-lived instances of module (a path as List gives it; all modules
// when empty); the next request starts new ones. It returns how many were drained.
func (e *Engine) Restart(module string) (int, error) {
	return e.byModule(module, func(p *C.uint8_t, n C.size_t, count *C.size_t, cerr **C.wagi_error) bool {
		return C.wagi_engine_restart(e.ptr, p, n, count, cerr) == C.WAGI_OK
	})
}

// Evict drops the loaded module (all when empty), so the next request loads it again. It
// returns how many were dropped.
func (e *Engine) Evict(module string) (int, error) {
	return e.byModule(module, func(p *C.uint8_t, n C.size_t, count *C.size_t, cerr **C.wagi_error) bool {
		return C.wagi_engine_evict(e.ptr, p, n, count, cerr) == C.WAGI_OK
	})
}

func (e *Engine) byModule(module string, f func(*C.uint8_t, C.size_t, *C.size_t, **C.wagi_error) bool) (int, error) {
	e.calls.RLock()
	defer e.calls.RUnlock()
	if e.ptr == nil {
		return 0, errFreed
	}
	var p *C.uint8_t
	if module != "" {
		p = (*C.uint8_t)(unsafe.Pointer(unsafe.StringData(module)))
	}
	var count C.size_t
	var cerr *C.wagi_error
	if !f(p, C.size_t(len(module)), &count, &cerr) {
		return 0, takeError(cerr)
	}
	return int(count), nil
}
