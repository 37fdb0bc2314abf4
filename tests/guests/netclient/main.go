// netclient is the test guest for outbound network, written the way go-wagi's guests are:
// HTTP through go-fsnet's dev.Transport (which opens /dev/tcp/<host>/<port> files), and
// connection files opened directly. It serves CGI, or WCGI (yamux over stdio) when started
// with WAGI_WCGI=true.
package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/cgi"
	"os"
	"strconv"

	"github.com/hashicorp/yamux"
	"github.com/shynome/go-fsnet/dev"
)

//go:wasmexport wagi_wcgi
func wagiWcgi() {}

type stdio struct{}

func (stdio) Read(p []byte) (int, error)  { return os.Stdin.Read(p) }
func (stdio) Write(p []byte) (int, error) { return os.Stdout.Write(p) }
func (stdio) Close() error                { return nil }

func main() {
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello from the guest")
	})
	mux.HandleFunc("/fetch", fetch)
	mux.HandleFunc("/open", open)
	mux.HandleFunc("/hold", hold)
	mux.HandleFunc("/echo", echo)
	mux.HandleFunc("/send", send)
	if os.Getenv("WAGI_WCGI") != "true" {
		if err := cgi.Serve(mux); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		return
	}
	session, err := yamux.Server(stdio{}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	http.Serve(session, mux)
}

// fetch GETs ?url= through dev.Transport and answers "<status>\n<body>".
func fetch(w http.ResponseWriter, r *http.Request) {
	req, err := http.NewRequest(http.MethodGet, r.URL.Query().Get("url"), nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// dev.Transport never closes its connection file; asking the server to close makes it
	// end, so the guest's file table does not fill (the file closes when collected).
	req.Close = true
	resp, err := (&http.Client{Transport: dev.Transport}).Do(req)
	if err != nil {
		http.Error(w, "fetch error: "+describe(err), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		http.Error(w, "read error: "+err.Error(), http.StatusBadGateway)
		return
	}
	fmt.Fprintf(w, "%d\n%s", resp.StatusCode, body)
}

// describe names an error, and says "notexist" for fs.ErrNotExist (go-wagi's refusal).
func describe(err error) string {
	if errors.Is(err, fs.ErrNotExist) {
		return "notexist: " + err.Error()
	}
	return err.Error()
}

// open opens ?path= read-write and closes it: "opened" or the error.
func open(w http.ResponseWriter, r *http.Request) {
	f, err := os.OpenFile(r.URL.Query().Get("path"), os.O_RDWR, 0)
	if err != nil {
		fmt.Fprint(w, "error: "+describe(err))
		return
	}
	f.Close()
	fmt.Fprint(w, "opened")
}

// hold opens ?path= ?n= times, keeping them open, and answers how many opened and the
// first error; with ?read=1 it then reads the first one until it ends.
func hold(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	var files []*os.File
	var firstErr error
	for i := 0; i < n; i++ {
		f, err := os.OpenFile(r.URL.Query().Get("path"), os.O_RDWR, 0)
		if err != nil {
			firstErr = err
			break
		}
		files = append(files, f)
	}
	if r.URL.Query().Get("read") == "1" && len(files) > 0 {
		io.Copy(io.Discard, files[0])
	}
	msg := fmt.Sprintf("opened %d", len(files))
	if firstErr != nil {
		msg += "; error: " + describe(firstErr)
	}
	for _, f := range files {
		f.Close()
	}
	fmt.Fprint(w, msg)
}

// echo writes ?msg= to the connection file ?path=, reads the reply until the peer
// closes, and answers it.
func echo(w http.ResponseWriter, r *http.Request) {
	f, err := os.OpenFile(r.URL.Query().Get("path"), os.O_RDWR, 0)
	if err != nil {
		fmt.Fprint(w, "error: "+describe(err))
		return
	}
	defer f.Close()
	if _, err := io.WriteString(f, r.URL.Query().Get("msg")); err != nil {
		fmt.Fprint(w, "write error: "+err.Error())
		return
	}
	if r.URL.Query().Get("udp") == "1" {
		buf := make([]byte, 2048)
		n, err := f.Read(buf)
		if err != nil {
			fmt.Fprint(w, "read error: "+err.Error())
			return
		}
		w.Write(buf[:n])
		return
	}
	if _, err := io.Copy(w, f); err != nil {
		fmt.Fprint(w, "read error: "+err.Error())
	}
}

// send writes ?size= bytes to the connection file ?path= and closes it at once.
func send(w http.ResponseWriter, r *http.Request) {
	size, _ := strconv.Atoi(r.URL.Query().Get("size"))
	f, err := os.OpenFile(r.URL.Query().Get("path"), os.O_RDWR, 0)
	if err != nil {
		fmt.Fprint(w, "error: "+describe(err))
		return
	}
	n, err := f.Write(make([]byte, size))
	f.Close()
	if err != nil {
		fmt.Fprint(w, "write error: "+err.Error())
		return
	}
	fmt.Fprintf(w, "sent %d", n)
}
