package wagi

import (
	"io/fs"
	"path/filepath"
	"strings"

	"go.uber.org/zap"

	"github.com/caddy-wagi/caddy-wagi/caddy-module/engine"
)

// warmUp loads every module under root in the background, once per root: files with a
// split extension, and the index file. The engine logs each load.
func (h *Handler) warmUp(root string) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return
	}
	if _, done := h.warmed.LoadOrStore(abs, struct{}{}); done {
		return
	}
	go func() {
		var rec engine.Record
		_ = filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !h.isModuleName(d.Name()) {
				return nil
			}
			rec.Reset()
			rec.Add(engine.FieldModulePath, p)
			h.describeCache(&rec)
			if failure := h.engine.Prepare(&rec); failure != nil {
				h.logger.Warn("precompile failed", zap.String("module", p), zap.String("error", failure.Error()))
			}
			return nil
		})
	}()
}

func (h *Handler) isModuleName(name string) bool {
	if h.Index != indexOff && name == h.Index {
		return true
	}
	lower := strings.ToLower(name)
	for _, ext := range h.SplitPath {
		if strings.HasSuffix(lower, ext) {
			return true
		}
	}
	return false
}
