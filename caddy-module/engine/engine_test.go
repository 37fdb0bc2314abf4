package engine

import (
	"context"
	"testing"
	"time"
)

// newSite makes a site with only a server name: enough for calls to reach the engine.
func newSite(t *testing.T, e *Engine) *Site {
	t.Helper()
	var cfg Record
	cfg.Add(FieldServerSoftware, "test")
	s, err := e.NewSite(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// After Destruct no new site can be made, and a site made before keeps working (it holds
// what it needs of the engine) until it is closed; then its calls fail cleanly.
func TestCallsAfterDestruct(t *testing.T) {
	e, err := New(Config{Slots: 1, MemoryCeiling: 64 << 20, WCGIInstances: 1})
	if err != nil {
		t.Fatal(err)
	}
	site := newSite(t, e)
	if err := e.Destruct(); err != nil {
		t.Fatal(err)
	}
	var cfg Record
	cfg.Add(FieldServerSoftware, "test")
	if _, err := e.NewSite(&cfg); err == nil {
		t.Error("NewSite after Destruct succeeded")
	}
	var rec Record
	rec.Add(FieldModulePath, "/nonexistent/x.wasm")
	if f := site.Prepare(&rec); f == nil || f.Failure != FailureNotFound {
		t.Errorf("Prepare on a site of a destructed engine: %v", f)
	}
	site.Close()
	<-site.freed
	if f := site.Prepare(&rec); f == nil || f.Status != 503 {
		t.Errorf("Prepare on a closed site: %v", f)
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
	site := newSite(t, e)
	defer site.Close()
	e.slots <- struct{}{} // the only slot is taken
	var rec Record
	rec.Add(FieldModulePath, "/nonexistent/x.wasm")
	for _, wait := range []time.Duration{-time.Second, 300 * time.Millisecond} {
		start := time.Now()
		f := site.Handle(context.Background(), &rec, nil, start.Add(wait))
		took := time.Since(start)
		if f == nil || f.Failure != FailureBusy || f.Status != 503 {
			t.Fatalf("deadline %s: %v, want busy", wait, f)
		}
		if took < max(wait, 0) || took > max(wait, 0)+2*time.Second {
			t.Errorf("deadline %s: answered after %s", wait, took)
		}
	}
}
