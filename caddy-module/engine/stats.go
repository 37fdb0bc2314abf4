package engine

/*
#include "wagi.h"
*/
import "C"

// Stats are the engine's counters (since it was created) and gauges (now), for metrics.
type Stats struct {
	Compiles         uint64
	CompileSeconds   float64
	DiskCacheHits    uint64
	DiskCacheMisses  uint64
	DiskCacheRejects uint64
	ModulesLoaded    uint64
	WCGIRunning      uint64
	WCGIStarted      uint64
	WCGIReplaced     uint64
	WCGIMemoryBytes  uint64
	OutboundOpened   uint64
	OutboundRefused  uint64
	OutboundFailed   uint64
	OutboundOpen     uint64
}

// Stats reads the engine's counters; false once the engine is freed.
func (e *Engine) Stats() (Stats, bool) {
	e.calls.RLock()
	defer e.calls.RUnlock()
	if e.ptr == nil {
		return Stats{}, false
	}
	var s C.wagi_stats
	var cerr *C.wagi_error
	if C.wagi_engine_stats(e.ptr, &s, &cerr) != C.WAGI_OK {
		takeError(cerr)
		return Stats{}, false
	}
	return Stats{
		Compiles:         uint64(s.compiles),
		CompileSeconds:   float64(s.compile_seconds),
		DiskCacheHits:    uint64(s.disk_cache_hits),
		DiskCacheMisses:  uint64(s.disk_cache_misses),
		DiskCacheRejects: uint64(s.disk_cache_rejects),
		ModulesLoaded:    uint64(s.modules_loaded),
		WCGIRunning:      uint64(s.wcgi_running),
		WCGIStarted:      uint64(s.wcgi_started),
		WCGIReplaced:     uint64(s.wcgi_replaced),
		WCGIMemoryBytes:  uint64(s.wcgi_memory_bytes),
		OutboundOpened:   uint64(s.outbound_opened),
		OutboundRefused:  uint64(s.outbound_refused),
		OutboundFailed:   uint64(s.outbound_failed),
		OutboundOpen:     uint64(s.outbound_open),
	}, true
}
