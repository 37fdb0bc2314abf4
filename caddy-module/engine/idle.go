package engine

import (
	"runtime/debug"
	"time"
)

// When every module has gone idle the engine gives its own memory back (unused modules
// dropped, pool memory renewed, glibc trimmed). The Go heap that serving them grew (request
// records, response buffers) is Caddy's process's too: Go's scavenger returns it only
// slowly, so once the engine goes idle after being used, its free pages are returned at
// once. This runs a garbage collection, at most once per busy-to-idle turn.

// idleCheckEvery is how often the engine is asked whether it went idle.
const idleCheckEvery = 2 * time.Second

// idleTurns tells busy-to-idle turns apart from an engine that stays idle or busy.
type idleTurns struct{ busy bool }

// turnedIdle reports whether the engine, with loaded modules and instances in use now, has
// just gone idle after being busy.
func (t *idleTurns) turnedIdle(loaded uint64) bool {
	was := t.busy
	t.busy = loaded > 0
	return was && !t.busy
}

// releaseWhenIdle returns the Go heap's free pages to the OS whenever the engine goes idle,
// until stop is closed or the engine is freed.
func (e *Engine) releaseWhenIdle(stop <-chan struct{}) {
	tick := time.NewTicker(idleCheckEvery)
	defer tick.Stop()
	var turns idleTurns
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		s, ok := e.Stats()
		if !ok {
			return
		}
		if turns.turnedIdle(s.ModulesLoaded + s.WCGIRunning) {
			debug.FreeOSMemory()
			if log := engineLog.Load(); log != nil {
				(*log)(LogInfo, "returned the Go heap's free memory to the OS", LogFields{})
			}
		}
	}
}
