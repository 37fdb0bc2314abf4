package wagi

import (
	"testing"

	"github.com/caddy-wagi/caddy-wagi/caddy-module/engine"
)

func TestModuleEntriesJoinInstances(t *testing.T) {
	var l engine.Listing
	l.Modules = []engine.Module{{Path: "/a/index.wasm", Size: 10, LastUsed: 1000},
		{Path: "/b/index.wasm", LoadedAt: 500, WCGIExport: true}}
	l.Instances = []engine.Instance{{Module: "/b/index.wasm", Site: "/b"}, {Module: "/b/index.wasm", Site: "/b"}}
	got := moduleEntries(&l)
	if len(got) != 2 || got[0].Mode != "cgi" || got[0].CompiledAt != nil || len(got[0].Instances) != 0 {
		t.Fatalf("CGI entry %+v", got[0])
	}
	if got[1].Mode != "wcgi" || len(got[1].Instances) != 2 || len(got[1].Sites) != 1 || got[1].CompiledAt == nil {
		t.Fatalf("WCGI entry %+v", got[1])
	}
}

func TestModuleEntriesNameComponentsHTTP(t *testing.T) {
	l := engine.Listing{Modules: []engine.Module{{Path: "/c.wasm", Component: true}}}
	if got := moduleEntries(&l); len(got) != 1 || got[0].Mode != "http" {
		t.Fatalf("component entry %+v, want mode http", got)
	}
}
