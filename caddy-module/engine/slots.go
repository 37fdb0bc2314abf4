package engine

import (
	"context"
	"time"
)

// Slots is a counting semaphore whose waiters are goroutines, so a request waiting for
// a guest slot holds no OS thread.
type Slots chan struct{}

// NewSlots makes n slots.
func NewSlots(n int) Slots { return make(Slots, n) }

// Acquire takes a slot, waiting up to d (none if d is not positive); false if none came
// in time or ctx ended.
func (s Slots) Acquire(ctx context.Context, d time.Duration) bool {
	select {
	case s <- struct{}{}:
		return true
	default:
	}
	if d <= 0 {
		return false
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case s <- struct{}{}:
		return true
	case <-timer.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// Release gives a slot back.
func (s Slots) Release() { <-s }
