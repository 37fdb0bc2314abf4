package wagi

import (
	"context"
	"sync"
)

// background runs a handler's background work (the precompile warm-up) tied to the
// handler's Caddy context: the work sees ctx end when its config is unloaded, and close
// ends the context too and waits for the work to return, so nothing runs on a handler
// after its Cleanup.
type background struct {
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func newBackground(parent context.Context) *background {
	ctx, cancel := context.WithCancel(parent)
	return &background{ctx: ctx, cancel: cancel}
}

// start runs work in a goroutine with the handler's context; false, without running it,
// once close has begun.
func (b *background) start(work func(ctx context.Context)) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		work(b.ctx)
	}()
	return true
}

// close refuses new work, ends the context (Caddy has usually ended it already, but not
// for a handler whose own Provision failed) and waits for running work, which checks the
// context between steps.
func (b *background) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.cancel()
	b.wg.Wait()
}
