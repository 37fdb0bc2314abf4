// Package engine is the only cgo package of caddy-wagi: it links libwagi.a (the Rust
// engine, built by xcaddy.sh into target/release) and exposes it as plain Go.
package engine

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: ${SRCDIR}/../../target/release/libwagi.a -lm -ldl -lrt -lutil -pthread
#include "wagi.h"
*/
import "C"
