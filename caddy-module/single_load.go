package wagi

import (
	"context"
	"sync"
)

// singleLoad runs one module load per path at a time; other callers wait for it as
// goroutines, so a crowd waiting for one compile holds one OS thread, not one each.
type singleLoad struct {
	mu      sync.Mutex
	running map[string]chan struct{}
}

// wait runs load for key unless one is running, then waits for it (or for ctx).
func (s *singleLoad) wait(ctx context.Context, key string, load func()) {
	s.mu.Lock()
	done, running := s.running[key]
	if !running {
		done = make(chan struct{})
		s.running[key] = done
	}
	s.mu.Unlock()
	if !running {
		defer func() {
			s.mu.Lock()
			delete(s.running, key)
			s.mu.Unlock()
			close(done)
		}()
		load()
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
}
