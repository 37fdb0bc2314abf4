// reactor is a WASI reactor (built with -buildmode=c-shared): it has no _start, only
// _initialize and the export `serve`, which a site runs with `entrypoint serve`, the way
// deislabs wagi runs a named function.
package main

import (
	"fmt"
	"os"
)

//go:wasmexport serve
func serve() {
	fmt.Printf("Content-Type: text/plain\r\n\r\nserved by serve() with QUERY_STRING=%s\n", os.Getenv("QUERY_STRING"))
}

// main is required by the c-shared build mode and never runs.
func main() {}
