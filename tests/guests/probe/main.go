// probe is the test guest: one Go wasip1 CGI module whose behaviour is chosen by the
// `do` query parameter, so every routing case can run the same compiled module.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/cgi"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	if raw(os.Getenv("QUERY_STRING")) {
		return
	}
	if err := cgi.Serve(http.HandlerFunc(serve)); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
}

// raw answers cases that net/http/cgi cannot express, writing CGI output by hand.
func raw(query string) bool {
	switch query {
	case "do=raw-location":
		os.Stdout.WriteString("Location: /elsewhere\r\n\r\n")
	case "do=raw-lf":
		os.Stdout.WriteString("Content-Type: text/plain\nX-Raw: lf\n\nraw body")
	case "do=raw-garbage":
		os.Stdout.WriteString("this is not a CGI header\n\nbody")
	case "do=raw-status-100", "do=raw-status-103", "do=raw-status-199":
		// Interim statuses: the client must never see them as a response of their own.
		code := strings.TrimPrefix(query, "do=raw-status-")
		os.Stdout.WriteString("Status: " + code + "\r\nContent-Type: text/plain\r\n\r\nbody after " + code)
	case "do=raw-status-101":
		os.Stdout.WriteString("Status: 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	case "do=raw-length-conflict":
		os.Stdout.WriteString("Content-Type: text/plain\r\nContent-Length: 5\r\nContent-Length: 11\r\n\r\nhello world")
	case "do=raw-length-agree":
		os.Stdout.WriteString("Content-Type: text/plain\r\nContent-Length: 11\r\ncontent-length: 011\r\n\r\nhello world")
	case "do=raw-hop-by-hop":
		// Headers about the connection and its framing, which only the server may set.
		os.Stdout.WriteString("Content-Type: text/plain\r\nTransfer-Encoding: gzip\r\n" +
			"Connection: keep-alive, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=999\r\n" +
			"Upgrade: h2c\r\nProxy-Connection: keep-alive\r\nTrailer: X-Late\r\nX-Kept: yes\r\n\r\n" +
			"intact body, not gzip")
	default:
		return false
	}
	return true
}

func serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch q.Get("do") {
	case "env":
		env := os.Environ()
		sort.Strings(env)
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, strings.Join(env, "\n"))
	case "echo":
		w.Header().Set("Content-Type", "application/octet-stream")
		io.Copy(w, r.Body)
	case "sha":
		// Reads the body in pieces, reporting progress on stderr, then prints its hash.
		h := sha256.New()
		total := 0
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Body.Read(buf)
			h.Write(buf[:n])
			total += n
			if n > 0 {
				fmt.Fprintf(os.Stderr, "probe read total=%d\n", total)
			}
			if err != nil {
				break
			}
		}
		fmt.Fprintf(w, "%d %s\n", total, hex.EncodeToString(h.Sum(nil)))
	case "big":
		n, _ := strconv.Atoi(q.Get("n"))
		w.Header().Set("Content-Type", "application/octet-stream")
		chunk := make([]byte, 64<<10)
		for i := range chunk {
			chunk[i] = byte(i % 251)
		}
		for n > 0 {
			k := min(n, len(chunk))
			w.Write(chunk[:k])
			n -= k
		}
	case "status":
		w.Header().Set("Location", "/created/1")
		w.Header().Add("Set-Cookie", "a=1; Path=/")
		w.Header().Add("Set-Cookie", "b=2; Path=/")
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintln(w, "created")
	case "headers":
		w.Header().Set("Content-Type", "text/plain")
		for _, k := range sortedKeys(r.Header) {
			fmt.Fprintf(w, "%s: %s\n", k, strings.Join(r.Header[k], " | "))
		}
	case "read":
		data, err := os.ReadFile(q.Get("path"))
		if err != nil {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintln(w, "error:", err)
			return
		}
		w.Write(data)
	case "loop":
		for n := 0; ; n++ {
			if n < 0 {
				break
			}
		}
	case "alloc":
		mb, _ := strconv.Atoi(q.Get("mb"))
		var keep [][]byte
		for i := 0; i < mb; i++ {
			b := make([]byte, 1<<20)
			for j := range b {
				b[j] = byte(j)
			}
			keep = append(keep, b)
		}
		fmt.Fprintln(w, "allocated", len(keep))
	case "panic":
		panic("probe panics on purpose")
	case "big-then-panic":
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(make([]byte, 1<<20))
		w.(http.Flusher).Flush()
		panic("probe panics after its head")
	case "sleep":
		ms, _ := strconv.Atoi(q.Get("ms"))
		time.Sleep(time.Duration(ms) * time.Millisecond)
		fmt.Fprintln(w, "slept")
	case "write":
		if err := os.WriteFile(q.Get("path"), []byte(q.Get("text")), 0o644); err != nil {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintln(w, "error:", err)
			return
		}
		fmt.Fprintln(w, "written")
	case "stderr":
		fmt.Fprintln(os.Stderr, "probe says", q.Get("msg"))
		fmt.Fprintln(w, "logged")
	case "symlink":
		// Creates link -> target as the guest asks; the host decides whether it may.
		if err := os.Symlink(q.Get("target"), q.Get("link")); err != nil {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintln(w, "error:", err)
			return
		}
		fmt.Fprintln(w, "linked")
	case "announce-sleep":
		// Says on stderr that it has started, so a test knows the guest is running.
		fmt.Fprintln(os.Stderr, "probe sleeping", q.Get("id"))
		ms, _ := strconv.Atoi(q.Get("ms"))
		time.Sleep(time.Duration(ms) * time.Millisecond)
		fmt.Fprintln(w, "slept")
	case "args":
		// The guest's argv, for the argv option.
		fmt.Fprintln(w, strings.Join(os.Args, "|"))
	default:
		fmt.Fprintf(w, "probe %s\n", r.URL.Path)
	}
}

func sortedKeys(h http.Header) []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
