package engine

import (
	"context"
	"testing"
	"time"
)

// Calls that come after Destruct fail with an error instead of using freed memory.
func TestCallsAfterDestructFail(t *testing.T) {
	e, err := New(Config{Slots: 1, MemoryCeiling: 64 << 20, WCGIInstances: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Destruct(); err != nil {
		t.Fatal(err)
	}
	var rec Record
	rec.Add(FieldModulePath, "/nonexistent/x.wasm")
	if f := e.Prepare(&rec); f == nil || f.Status != 503 {
		t.Errorf("Prepare after Destruct: %v", f)
	}
	if f := e.Handle(context.Background(), &rec, nil, time.Now().Add(time.Second)); f == nil || f.Status != 503 {
		t.Errorf("Handle after Destruct: %v", f)
	}
	if err := e.Destruct(); err != nil {
		t.Errorf("second Destruct: %v", err)
	}
}

// The process's slots are waited for until the request's deadline, not a fresh max_wait;
// a deadline already past gets no wait at all.
func TestHandleWaitsUntilTheDeadline(t *testing.T) {
	e, err := New(Config{Slots: 1, MemoryCeiling: 64 << 20, WCGIInstances: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Destruct()
	e.slots <- struct{}{} // the only slot is taken
	var rec Record
	rec.Add(FieldModulePath, "/nonexistent/x.wasm")
	for _, wait := range []time.Duration{-time.Second, 300 * time.Millisecond} {
		start := time.Now()
		f := e.Handle(context.Background(), &rec, nil, start.Add(wait))
		took := time.Since(start)
		if f == nil || f.Failure != FailureBusy || f.Status != 503 {
			t.Fatalf("deadline %s: %v, want busy", wait, f)
		}
		if took < max(wait, 0) || took > max(wait, 0)+2*time.Second {
			t.Errorf("deadline %s: answered after %s", wait, took)
		}
	}
}
