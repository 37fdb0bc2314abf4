// Package engine is the only cgo package of caddy-wagi: it links libwagi.a (the Rust
// engine) and exposes it as plain Go.
//
// The header wagi.h is a checked copy of include/wagi.h, so that this Go module builds
// outside the checkout. The library is found the way FrankenPHP finds libphp: through
// CGO_LDFLAGS (`CGO_LDFLAGS=-L<directory of libwagi.a>`), which cgo searches first; inside
// the checkout, target/release is searched after it, so `go test` works without it.
package engine

/*
#cgo LDFLAGS: -L${SRCDIR}/../../target/release -lwagi -lm -ldl -lrt -lutil -pthread
#include "wagi.h"
*/
import "C"
