// The seed example: a Go net/http program served as CGI. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -o site/index.wasm .
//
// and Caddy's `wagi` directive runs it for every path of the site.
package main

import (
	"fmt"
	"net/http"
	"net/http/cgi"
	"os"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "index")
	})
	http.HandleFunc("/hello1", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello1")
	})
	http.HandleFunc("/hello2", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello2")
	})
	// http.ListenAndServe becomes cgi.Serve: one request per run.
	if err := cgi.Serve(nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
}
