package wagi

import (
	"io/fs"
	"syscall"

	"github.com/caddy-wagi/caddy-wagi/caddy-module/engine"
)

// addModuleIdentity passes on the module file's identity as resolving the request found
// it, so that the engine does not stat the file a second time to check its version.
func addModuleIdentity(rec *engine.Record, info fs.FileInfo) {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		rec.AddModuleIdentity(uint64(st.Dev), uint64(st.Ino), st.Size, st.Mtim.Nano(), st.Ctim.Nano())
	}
}
