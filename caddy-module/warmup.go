package wagi

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"go.uber.org/zap"
)

// maxWarmRoots bounds how many roots one handler precompiles. With a per-request root
// (`root /srv/{host}`) the roots come from what clients send; only existing directories
// count, and past the bound further roots load their modules at their first request.
const maxWarmRoots = 1024

// warmedRoots remembers the roots already precompiled, up to a bound.
type warmedRoots struct {
	mu    sync.RWMutex
	roots map[string]struct{}
	max   int
}

func newWarmedRoots(max int) *warmedRoots {
	return &warmedRoots{roots: make(map[string]struct{}), max: max}
}

// seen reports whether root needs no warm-up: done already, or the bound is reached.
func (w *warmedRoots) seen(root string) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	_, done := w.roots[root]
	return done || len(w.roots) >= w.max
}

// add records root; added is false if it was there already or the bound is reached, and
// full is true for the one call that reached the bound.
func (w *warmedRoots) add(root string) (added, full bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, done := w.roots[root]; done || len(w.roots) >= w.max {
		return false, false
	}
	w.roots[root] = struct{}{}
	return true, len(w.roots) == w.max
}

func (w *warmedRoots) len() int {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return len(w.roots)
}

// warmUp loads every module under root (an absolute path) in the background, once per
// root: files with a split extension, and the index file. The engine logs each load.
func (h *Handler) warmUp(root string) {
	if h.warmed.seen(root) {
		return
	}
	if info, err := os.Stat(root); err != nil || !info.IsDir() {
		return
	}
	added, full := h.warmed.add(root)
	if full {
		h.logger.Warn("precompile: root limit reached; modules under further roots load at their first request",
			zap.Int("max_roots", h.warmed.max))
	}
	if !added {
		return
	}
	h.background.start(func(ctx context.Context) { h.warmRoot(ctx, root) })
}

// warmRoot loads the modules under root one after another, until they are all loaded or
// ctx ends; Cleanup waits for it, so at most the module being loaded delays a reload.
func (h *Handler) warmRoot(ctx context.Context, root string) {
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if ctx.Err() != nil {
			return filepath.SkipAll
		}
		// Regular files only: a symlink may lead out of the root.
		if err != nil || !d.Type().IsRegular() || !h.runsAsModule(d.Name()) {
			return nil
		}
		if failure := h.prepare(p); failure != nil {
			h.logger.Warn("precompile failed", zap.String("module", p), zap.String("error", failure.Error()))
		}
		return nil
	})
}
