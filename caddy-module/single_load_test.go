package wagi

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
)

func TestSingleLoadRunsOneLoadPerKey(t *testing.T) {
	s := &singleLoad{running: map[string]chan struct{}{}}
	release := make(chan struct{})
	var inFirst, overlapped atomic.Bool
	var wg sync.WaitGroup
	started := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.wait(context.Background(), "a", func() {
			inFirst.Store(true)
			close(started)
			<-release
			inFirst.Store(false)
		})
	}()
	<-started
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Arriving while the first load runs, a caller waits for it; arriving after,
			// it may run its own. Never both at once.
			s.wait(context.Background(), "a", func() { overlapped.Store(overlapped.Load() || inFirst.Load()) })
		}()
	}
	close(release)
	wg.Wait()
	if overlapped.Load() {
		t.Fatal("a second load of the same key ran while the first was running")
	}
	// A cancelled waiter returns without waiting for the load.
	block := make(chan struct{})
	go s.wait(context.Background(), "b", func() { <-block })
	for {
		s.mu.Lock()
		_, running := s.running["b"]
		s.mu.Unlock()
		if running {
			break
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.wait(ctx, "b", func() { t.Error("second load ran while the first was running") })
	close(block)
}
