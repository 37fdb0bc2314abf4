package wagi

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// With `root /srv/{host}`, every Host a client sends names a root: only existing
// directories are remembered, and no more than maxWarmRoots of them.
func TestWarmedRootsAreBounded(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	h := &Handler{Precompile: true, Index: defaultIndex, SplitPath: []string{".wasm"},
		warmed: newWarmedRoots(maxWarmRoots), logger: zap.New(core), background: newBackground(context.Background())}
	defer h.background.close()
	base := t.TempDir()
	for i := 0; i < 10_000; i++ {
		h.warmUp(filepath.Join(base, fmt.Sprintf("host-%d.example", i)))
	}
	if n := h.warmed.len(); n != 0 {
		t.Fatalf("%d roots remembered that are no directories", n)
	}
	for i := 0; i < maxWarmRoots+200; i++ {
		dir := filepath.Join(base, fmt.Sprintf("host-%d.example", i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 10_000; i++ {
		h.warmUp(filepath.Join(base, fmt.Sprintf("host-%d.example", i)))
	}
	if n := h.warmed.len(); n != maxWarmRoots {
		t.Errorf("%d roots remembered, want the bound %d", n, maxWarmRoots)
	}
	if n := logs.FilterMessageSnippet("root limit reached").Len(); n != 1 {
		t.Errorf("%d log lines about the bound, want 1", n)
	}
}

// A warm-up whose handler's context has ended loads nothing more: with no engine at all,
// reaching Prepare would panic.
func TestWarmUpStopsWhenTheContextEnds(t *testing.T) {
	root := t.TempDir()
	for i := 0; i < 3; i++ {
		if err := os.WriteFile(filepath.Join(root, fmt.Sprintf("m%d.wasm", i)), []byte("\x00asm"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h := &Handler{Index: defaultIndex, SplitPath: []string{".wasm"}, logger: zap.NewNop()}
	h.warmRoot(ctx, root)
}
