package engine

import "testing"

// A waker goes back to the pool and serves the next request; one whose wait failed is
// closed instead of reused.
func TestWakersAreReusedUnlessBroken(t *testing.T) {
	w := takeWaker()
	if w == nil {
		t.Fatal("no waker")
	}
	putWaker(w)
	again := takeWaker()
	if again != w {
		t.Fatal("a returned waker was not reused")
	}
	again.broken = true
	putWaker(again)
	if next := takeWaker(); next == again {
		t.Fatal("a broken waker was reused")
	} else {
		putWaker(next)
	}
	if err := again.file.Close(); err == nil {
		t.Fatal("a broken waker's descriptor was left open")
	}
}
