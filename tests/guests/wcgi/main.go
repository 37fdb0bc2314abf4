// wcgi is the test guest for WCGI mode, written the way go-wagi's guests are: a yamux
// server over stdin/stdout serving net/http, and the `wagi_wcgi` export that marks it.
// Started without WAGI_WCGI=true (mode cgi), it serves one request as plain CGI.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
)

//go:wasmexport wagi_wcgi
func wagiWcgi() {}

// instanceID tells instances apart: each start picks a new one.
var instanceID = func() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}()

// stdio joins stdin and stdout into the connection yamux serves on.
type stdio struct{}

func (stdio) Read(p []byte) (int, error)  { return os.Stdin.Read(p) }
func (stdio) Write(p []byte) (int, error) { return os.Stdout.Write(p) }
func (stdio) Close() error                { return nil }

func main() {
	mux := routes()
	if os.Getenv("WAGI_WCGI") != "true" {
		if err := cgi.Serve(mux); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		return
	}
	fmt.Fprintln(os.Stderr, "wcgi guest starting", instanceID)
	session, err := yamux.Server(stdio{}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	server := &http.Server{Handler: mux, ConnContext: numberConn}
	err = server.Serve(session)
	fmt.Fprintln(os.Stderr, "wcgi guest stopping:", err)
}

// connKey holds the number of the yamux stream a request came on: /conn tells whether the
// host sends requests on streams it kept (HTTP/1.1 keep-alive).
type connKey struct{}

var conns atomic.Int64

func numberConn(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, conns.Add(1))
}

var (
	waitersMu sync.Mutex
	waiters   = map[string]chan string{}
)

func waiter(key string) chan string {
	waitersMu.Lock()
	defer waitersMu.Unlock()
	if waiters[key] == nil {
		waiters[key] = make(chan string)
	}
	return waiters[key]
}

func routes() *http.ServeMux {
	mux := http.NewServeMux()
	text := func(s string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, s) }
	}
	mux.HandleFunc("/", text("index"))
	mux.HandleFunc("/hello1", text("hello1"))
	mux.HandleFunc("/hello2", text("hello2"))
	mux.HandleFunc("/mode", func(w http.ResponseWriter, r *http.Request) {
		mode := "cgi"
		if os.Getenv("WAGI_WCGI") == "true" {
			mode = "wcgi"
		}
		fmt.Fprintln(w, mode, instanceID)
	})
	mux.HandleFunc("/request", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s %s\nHost: %s\nX-Forwarded-For: %s\nX-Forwarded-Proto: %s\nX-Probe: %s\n",
			r.Method, r.URL.Path, r.URL.RawQuery, r.Host,
			r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Probe"))
	})
	mux.HandleFunc("/sleep", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		time.Sleep(time.Duration(ms) * time.Millisecond)
		fmt.Fprintln(w, "slept", ms)
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		for i := 0; i < n; i++ {
			fmt.Fprintf(w, "tick %d\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(20 * time.Millisecond)
		}
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		io.Copy(w, r.Body)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		chunk := make([]byte, 64<<10)
		for i := range chunk {
			chunk[i] = byte(i % 251)
		}
		for n > 0 {
			k := min(n, len(chunk))
			w.Write(chunk[:k])
			n -= k
		}
	})
	// /wait blocks until another request calls /signal with the same key.
	mux.HandleFunc("/wait", func(w http.ResponseWriter, r *http.Request) {
		select {
		case v := <-waiter(r.URL.Query().Get("key")):
			fmt.Fprintln(w, "got", v)
		case <-time.After(20 * time.Second):
			http.Error(w, "no signal", http.StatusGatewayTimeout)
		}
	})
	// /signal hands a value to a parked /wait; with none parked it answers 409.
	mux.HandleFunc("/signal", func(w http.ResponseWriter, r *http.Request) {
		select {
		case waiter(r.URL.Query().Get("key")) <- r.URL.Query().Get("value"):
			fmt.Fprintln(w, "signalled")
		case <-time.After(50 * time.Millisecond):
			http.Error(w, "nobody waiting", http.StatusConflict)
		}
	})
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		for _, kv := range os.Environ() {
			fmt.Fprintln(w, kv)
		}
	})
	mux.HandleFunc("/crash", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(os.Stderr, "wcgi guest crashing on purpose")
		os.Exit(3)
	})
	mux.HandleFunc("/stderr", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(os.Stderr, "wcgi says", r.URL.Query().Get("msg"))
		fmt.Fprintln(w, "logged")
	})
	// /forwarded prints every X-Forwarded-* line the guest got, one per line, quoted.
	mux.HandleFunc("/forwarded", func(w http.ResponseWriter, r *http.Request) {
		for _, name := range []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"} {
			for _, v := range r.Header.Values(name) {
				fmt.Fprintf(w, "%s: %q\n", name, v)
			}
		}
	})
	// /deny answers 403 at once, never reading the request body.
	mux.HandleFunc("/deny", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "denied without reading", http.StatusForbidden)
	})
	// /spin never yields: Go's wasm port has no preemption, so the instance is wedged.
	mux.HandleFunc("/spin", func(w http.ResponseWriter, r *http.Request) {
		for n := 0; ; n++ {
			if n < 0 {
				break
			}
		}
	})
	// /flushspin writes and flushes a line, then runs for ?ms= without waiting, allocating
	// or yielding (Go's wasm port has no preemption), then writes another: the first must
	// reach the client while it runs.
	mux.HandleFunc("/flushspin", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		fmt.Fprintln(w, "first")
		w.(http.Flusher).Flush()
		for start := time.Now(); time.Since(start) < time.Duration(ms)*time.Millisecond; {
		}
		fmt.Fprintln(w, "done")
	})
	// /pingflood writes raw yamux pings to stdout in a loop that never reads stdin, as a
	// hostile guest would, to make the host buffer pongs and pings without end.
	mux.HandleFunc("/pingflood", func(w http.ResponseWriter, r *http.Request) {
		const frames = 1024
		buf := make([]byte, 0, frames*12)
		for i := 0; i < frames; i++ {
			// version 0, type 2 (ping), flags 1 (SYN), stream 0, opaque value i.
			buf = append(buf, 0, 2, 0, 1, 0, 0, 0, 0, 0, 0, byte(i>>8), byte(i))
		}
		for {
			if _, err := os.Stdout.Write(buf); err != nil {
				return
			}
		}
	})
	// /noisy writes n bytes of 100-byte lines to stderr.
	mux.HandleFunc("/noisy", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		line := []byte(strings.Repeat("x", 99) + "\n")
		for ; n > 0; n -= len(line) {
			os.Stderr.Write(line)
		}
		fmt.Fprintln(w, "noisy done")
	})
	// /raw writes a hand-made HTTP response straight onto the yamux stream, with heads
	// net/http would never write, so the host's checks of a guest's response are tested.
	mux.HandleFunc("/raw", func(w http.ResponseWriter, r *http.Request) {
		raw, ok := rawResponses[r.URL.Query().Get("kind")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer conn.Close()
		io.WriteString(conn, raw)
		if r.URL.Query().Get("linger") != "" {
			// The stream stays open, as a keep-alive connection would.
			time.Sleep(2 * time.Second)
		}
	})
	// /conn names the stream the request came on (see connKey).
	mux.HandleFunc("/conn", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "conn", r.Context().Value(connKey{}))
	})
	// /close answers and asks for its stream to be closed, as a server going away does.
	mux.HandleFunc("/close", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		fmt.Fprintln(w, "closing")
	})
	// /write writes text to the file at path, reporting the error if the sandbox refuses.
	mux.HandleFunc("/args", func(w http.ResponseWriter, r *http.Request) {
		// The instance's argv, for the argv option: never one visitor's values.
		fmt.Fprintln(w, strings.Join(os.Args, "|"))
	})
	mux.HandleFunc("/write", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if err := os.WriteFile(q.Get("path"), []byte(q.Get("text")), 0o644); err != nil {
			http.Error(w, "error: "+err.Error(), http.StatusForbidden)
			return
		}
		fmt.Fprintln(w, "written")
	})
	return mux
}

// rawResponses are the responses /raw writes, by kind.
var rawResponses = map[string]string{
	"length-conflict": "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nContent-Length: 11\r\n\r\nhello world",
	"switch":          "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	"te-gzip":         "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: gzip\r\n\r\nnot really gzip",
	// A whole response, then a second one nobody asked for, in one write: were the stream
	// used again, the next request would get the second.
	"extra": "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n" +
		"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 7\r\n\r\nforged\n",
	"hop-by-hop": "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: X-Hop\r\nX-Hop: secret\r\n" +
		"Keep-Alive: timeout=999\r\nUpgrade: h2c\r\nContent-Length: 11\r\nX-Kept: yes\r\n\r\nintact body",
}
