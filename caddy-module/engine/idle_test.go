package engine

import "testing"

func TestIdleTurnsOnlyFromBusyToIdle(t *testing.T) {
	var turns idleTurns
	for i, c := range []struct {
		loaded uint64
		want   bool
	}{
		{0, false}, // idle from the start: nothing was used
		{2, false}, // busy
		{1, false}, // still busy
		{0, true},  // the turn
		{0, false}, // stays idle: once per turn
		{3, false},
		{0, true},
	} {
		if got := turns.turnedIdle(c.loaded); got != c.want {
			t.Errorf("step %d (loaded %d): %v, want %v", i, c.loaded, got, c.want)
		}
	}
}
