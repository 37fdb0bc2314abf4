package wagi

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/caddy-wagi/caddy-wagi/caddy-module/engine"
)

// Mount is a host directory made visible to the guest.
type Mount struct {
	// Host is the directory on the host. It is made absolute, with symlinks resolved.
	Host string `json:"host"`
	// Guest is where the guest sees it. Default: the same absolute path as Host.
	Guest string `json:"guest,omitempty"`
	// Writable lets the guest create and change files there. Default: read-only.
	Writable bool `json:"writable,omitempty"`
}

// provisionMounts canonicalises the mounts: the guest cannot reach outside a mount (WASI
// resolves every path under its directory handle), and a symlinked mount point is pinned
// to what it pointed at when the config loaded.
func (h *Handler) provisionMounts() error {
	for i := range h.Mounts {
		m := &h.Mounts[i]
		abs, err := filepath.Abs(m.Host)
		if err != nil {
			return fmt.Errorf("wagi: mount %q: %w", m.Host, err)
		}
		real, err := filepath.EvalSymlinks(abs)
		if err != nil {
			return fmt.Errorf("wagi: mount %q: %w", m.Host, err)
		}
		if m.Guest == "" {
			m.Guest = abs
		}
		if !strings.HasPrefix(m.Guest, "/") {
			return fmt.Errorf("wagi: mount %q: guest path %q must be absolute", m.Host, m.Guest)
		}
		m.Host = real
	}
	return nil
}

// describeRootMount adds the site root, read-only at its own path (so SCRIPT_FILENAME and
// DOCUMENT_ROOT are real paths in the guest), unless a configured mount (in the site
// record) already places something there. The root may differ per request.
func (h *Handler) describeRootMount(rec *engine.Record, root string) {
	for _, m := range h.Mounts {
		if m.Guest == root {
			return
		}
	}
	rec.Add2(engine.FieldMountRO, root, root)
}
