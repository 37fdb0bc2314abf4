package wagi

import (
	"context"
	"testing"
	"time"
)

// close ends the work's context, waits for the work to return, and refuses later work.
func TestBackgroundCloseWaitsForWork(t *testing.T) {
	b := newBackground(context.Background())
	started := make(chan struct{})
	returned := false
	if !b.start(func(ctx context.Context) {
		close(started)
		<-ctx.Done()
		returned = true
	}) {
		t.Fatal("work refused before close")
	}
	<-started
	b.close()
	if !returned {
		t.Fatal("close returned while the work was still running")
	}
	if b.start(func(context.Context) { t.Error("work ran after close") }) {
		t.Error("work accepted after close")
	}
}

// The work sees the parent context (the handler's Caddy context) end.
func TestBackgroundFollowsTheParentContext(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	b := newBackground(parent)
	defer b.close()
	ended := make(chan struct{})
	b.start(func(ctx context.Context) {
		<-ctx.Done()
		close(ended)
	})
	cancel()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the work did not see its parent context end")
	}
}
