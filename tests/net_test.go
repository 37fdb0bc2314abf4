package tests

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// netWorld is the Caddy and the loopback backends the outbound-network tests share.
var netWorld struct {
	once    sync.Once
	err     error
	caddy   *ownCaddy
	backend *httptest.Server
	// tlsBackend serves HTTPS with a certificate for 127.0.0.1 and example.com, trusted
	// through the "tls" site's ca_file only.
	tlsBackend *httptest.Server
	// slowStarted receives once per request to the backend's /slow, which then waits for
	// slowRelease.
	slowStarted chan struct{}
	slowRelease chan struct{}
}

// netSites are the sites of the shared Caddy: each runs the netclient guest from one
// root, so it compiles once.
func netSites(backendPort, caFile string) map[string]string {
	wagi := func(opts string) string {
		return "\twagi net.wasm {\n\t\troot $DIR/guest\n\t\t" + strings.ReplaceAll(opts, "\n", "\n\t\t") + "\n\t}"
	}
	return map[string]string{
		"cgi":  wagi("mode cgi\nnetwork {\n\tallow 127.0.0.1\n}"),
		"wcgi": wagi("mode wcgi\nnetwork {\n\tallow 127.0.0.1\n\tmax_connections 256\n}"),
		"off":  wagi("mode cgi"),
		// Its own copy of the module, so replacing it leaves the other sites alone.
		"wcgirepl": "\twagi net.wasm {\n\t\tmode wcgi\n\t\ttimeout 1s\n\t\tnetwork 127.0.0.1\n\t}",
		"wcgislow": wagi("mode wcgi\nnetwork {\n\tallow 127.0.0.1\n\tconnect_timeout 1s\n}"),
		"gost":     wagi("mode cgi\nenv WASI_NET bypass=127.0.0.1"),
		"gostinv":  wagi("mode cgi\nenv WASI_NET bypass=~10.0.0.0/8"),
		"names":    wagi("mode cgi\nnetwork {\n\tallow localhost 10.0.0.0/8\n}"),
		"namesok":  wagi("mode cgi\nnetwork {\n\tallow localhost 127.0.0.0/8 ::1\n}"),
		"cidr":     wagi("mode cgi\nnetwork 127.0.0.0/8"),
		"port":     wagi("mode cgi\nnetwork {\n\tallow 127.0.0.1:" + backendPort + "\n}"),
		"limits":   wagi("mode cgi\ntimeout 2s\nnetwork {\n\tallow 127.0.0.1\n\tmax_connections 3\n\tconnect_timeout 500ms\n}"),
		"tls":      wagi("mode cgi\nnetwork {\n\tallow localhost 127.0.0.1 ::1\n\tca_file " + caFile + "\n}"),
		"selfcgi":  wagi("mode cgi\nmax_instances 1\nmax_wait 500ms\nnetwork {\n\tallow 127.0.0.1\n}"),
	}
}

// startNetWorld builds the guest, starts the backend and the shared Caddy (once).
func startNetWorld(t *testing.T) {
	t.Helper()
	netWorld.once.Do(func() {
		netWorld.slowStarted = make(chan struct{}, 16)
		netWorld.slowRelease = make(chan struct{})
		mux := http.NewServeMux()
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "backend says hi")
		})
		mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
			netWorld.slowStarted <- struct{}{}
			select {
			case <-netWorld.slowRelease:
			case <-time.After(30 * time.Second):
			}
			fmt.Fprint(w, "slow done")
		})
		netWorld.backend = httptest.NewServer(mux) // 127.0.0.1
		netWorld.tlsBackend = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "tls backend says hi")
		}))
		var caPEM []byte
		caPEM, netWorld.tlsBackend.TLS, netWorld.err = testCA("127.0.0.1", "example.com")
		if netWorld.err != nil {
			return
		}
		netWorld.tlsBackend.StartTLS()
		dir := filepath.Join(world.work, "net")
		caFile := filepath.Join(dir, "ca.pem")
		if netWorld.err = os.MkdirAll(dir, 0o755); netWorld.err != nil {
			return
		}
		if netWorld.err = os.WriteFile(caFile, caPEM, 0o644); netWorld.err != nil {
			return
		}
		guest := filepath.Join(dir, "guest", "net.wasm")
		if netWorld.err = os.MkdirAll(filepath.Dir(guest), 0o755); netWorld.err != nil {
			return
		}
		netWorld.err = buildGuest(filepath.Join(repoRoot, "tests", "guests", "netclient"), ".", guest)
		if netWorld.err != nil {
			return
		}
		_, port, _ := net.SplitHostPort(netWorld.backend.Listener.Addr().String())
		sites := netSites(port, caFile)
		for name := range sites {
			if netWorld.err = os.MkdirAll(filepath.Join(dir, name), 0o755); netWorld.err != nil {
				return
			}
		}
		if netWorld.err = copyGuest(guest, filepath.Join(dir, "wcgirepl", "net.wasm")); netWorld.err != nil {
			return
		}
		netWorld.caddy, netWorld.err = startFilewideCaddy(dir, "\tdebug\n", sites)
	})
	if netWorld.err != nil {
		t.Fatal(netWorld.err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- caddy log (network tests) ---\n%s", netWorld.caddy.proc.logs)
		}
	})
}

// testCA makes a CA (returned as PEM) and a server configuration whose certificate it
// signed for names (IP addresses or DNS names).
func testCA(names ...string) ([]byte, *tls.Config, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "caddy-wagi test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			leafTmpl.IPAddresses = append(leafTmpl.IPAddresses, ip)
		} else {
			leafTmpl.DNSNames = append(leafTmpl.DNSNames, n)
		}
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caTmpl, &leafKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	cert := tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	return caPEM, &tls.Config{Certificates: []tls.Certificate{cert}}, nil
}

// startFilewideCaddy starts Caddy as startOwnCaddy does, but for all of this file's tests:
// it stops when they are all done, not with t.
func startFilewideCaddy(dir, global string, sites map[string]string) (*ownCaddy, error) {
	admin, err := freePort()
	if err != nil {
		return nil, err
	}
	c := &ownCaddy{dir: dir, urls: map[string]string{}}
	var cf strings.Builder
	fmt.Fprintf(&cf, "{\n\tadmin 127.0.0.1:%d\n\tauto_https off\n%s}\n", admin, global)
	for name, body := range sites {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		c.urls[name] = fmt.Sprintf("http://127.0.0.1:%d", port)
		body = strings.ReplaceAll(body, "$DIR", dir)
		fmt.Fprintf(&cf, "\n%s {\n\troot * %s\n%s\n}\n", c.urls[name], filepath.Join(dir, name), body)
	}
	c.config = cf.String()
	c.proc, err = startCaddy(world.caddy, dir, c.config, fmt.Sprintf("127.0.0.1:%d", admin))
	if err != nil {
		return nil, err
	}
	stopAfterTests(c.proc)
	return c, nil
}

// netURL is a URL of the shared Caddy's site.
func netURL(site, path string, query ...string) string {
	u := netWorld.caddy.urls[site] + path
	for i := 0; i+1 < len(query); i += 2 {
		if i == 0 {
			u += "?"
		} else {
			u += "&"
		}
		u += query[i] + "=" + url.QueryEscape(query[i+1])
	}
	return u
}

// netGet fetches a URL of the shared Caddy, failing the test on a transport error.
func netGet(t *testing.T, site, path string, query ...string) response {
	t.Helper()
	return get(t, netURL(site, path, query...))
}

// warm has site load its module (and start its instance), so timings that follow measure
// the network, not a compile.
func warm(t *testing.T, site string) {
	t.Helper()
	if r := netGet(t, site, "/hello"); r.status != 200 {
		t.Fatalf("%s: warm-up: %d %q", site, r.status, r.body)
	}
}

func backendAddr() (host, port string) {
	host, port, _ = net.SplitHostPort(netWorld.backend.Listener.Addr().String())
	return host, port
}

// go-wagi's example pattern: dev.Transport fetches a backend and the guest's own site, in
// CGI and WCGI mode.
func TestNetFetchBackendAndOwnSite(t *testing.T) {
	startNetWorld(t)
	for _, site := range []string{"cgi", "wcgi"} {
		r := netGet(t, site, "/fetch", "url", netWorld.backend.URL+"/")
		if r.status != 200 || string(r.body) != "200\nbackend says hi" {
			t.Fatalf("%s: backend fetch: %d %q", site, r.status, r.body)
		}
		r = netGet(t, site, "/fetch", "url", netURL(site, "/hello"))
		if r.status != 200 || string(r.body) != "200\nhello from the guest" {
			t.Fatalf("%s: self fetch: %d %q", site, r.status, r.body)
		}
	}
	if !netWorld.caddy.proc.logs.WaitFor(5*time.Second, "network: opened tcp 127.0.0.1:") {
		t.Fatalf("no debug line for an opened connection")
	}
}

// Without networking there is no /dev at all, as under go-wagi.
func TestNetOffHasNoDev(t *testing.T) {
	startNetWorld(t)
	_, port := backendAddr()
	r := netGet(t, "off", "/open", "path", "/dev/tcp/127.0.0.1/"+port)
	// Go finds no preopen for the path (EBADF here; wazero: not exist): no connection.
	if !strings.HasPrefix(string(r.body), "error: ") {
		t.Fatalf("open without network: %q", r.body)
	}
}

// Rules in both readings, on loopback only: refusals happen before any dial.
func TestNetRules(t *testing.T) {
	startNetWorld(t)
	_, port := backendAddr()
	cases := []struct {
		site, host, port string
		ok               bool
	}{
		{"cgi", "127.0.0.1", port, true},
		{"cgi", "127.0.0.2", port, false},  // not the allowed address
		{"cgi", "localhost", port, false},  // a name is not an address
		{"gost", "127.0.0.1", port, true},  // go-wagi's README rule
		{"gost", "localhost", port, false}, // gost does not resolve names
		{"gostinv", "127.0.0.1", port, true},
		{"names", "localhost", port, false}, // resolves to 127.0.0.1, outside 10/8
		{"namesok", "localhost", port, true},
		{"cidr", "127.0.0.1", port, true},
		{"port", "127.0.0.1", port, true},
		{"port", "127.0.0.1", "1", false},
	}
	for _, c := range cases {
		path := "/dev/tcp/" + c.host + "/" + c.port
		body := string(netGet(t, c.site, "/open", "path", path).body)
		if c.ok && body != "opened" || !c.ok && !strings.HasPrefix(body, "error: notexist") {
			t.Errorf("%s %s: %q", c.site, path, body)
		}
	}
	if !netWorld.caddy.proc.logs.WaitFor(5*time.Second, "network: refused tcp localhost:"+port+": resolves to ") {
		t.Errorf("no debug line for the refused name")
	}
}

// WCGI: 50 guests' goroutines calling their own site at once all succeed.
func TestNetWCGIConcurrentSelfCalls(t *testing.T) {
	startNetWorld(t)
	var wg sync.WaitGroup
	errs := make(chan string, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			resp, err := client.Get(netURL("wcgi", "/fetch", "url", netURL("wcgi", "/hello")))
			if err != nil {
				errs <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "200\nhello from the guest" {
				errs <- fmt.Sprintf("%d %q", resp.StatusCode, b)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// A slow backend on one request does not delay others on the same WCGI instance.
func TestNetSlowBackendDoesNotBlockWCGI(t *testing.T) {
	startNetWorld(t)
	done := make(chan response, 1)
	go func() { done <- get(t, netURL("wcgi", "/fetch", "url", netWorld.backend.URL+"/slow")) }()
	select {
	case <-netWorld.slowStarted:
	case <-time.After(30 * time.Second):
		t.Fatal("the slow request never reached the backend")
	}
	for i := 0; i < 5; i++ {
		start := time.Now()
		r := netGet(t, "wcgi", "/hello")
		if r.status != 200 || time.Since(start) > time.Second {
			t.Fatalf("while a request waits on the network: %d after %v", r.status, time.Since(start))
		}
	}
	select {
	case r := <-done:
		t.Fatalf("the slow request ended early: %d %q", r.status, r.body)
	default:
	}
	close(netWorld.slowRelease)
	r := <-done
	if r.status != 200 || string(r.body) != "200\nslow done" {
		t.Fatalf("slow request: %d %q", r.status, r.body)
	}
}

// A guest may hold max_connections files; the next open fails cleanly.
func TestNetConnectionCap(t *testing.T) {
	startNetWorld(t)
	_, port := backendAddr()
	body := string(netGet(t, "limits", "/hold", "path", "/dev/tcp/127.0.0.1/"+port, "n", "5").body)
	if !strings.HasPrefix(body, "opened 3; error: ") || !strings.Contains(strings.ToLower(body), "too many open files") {
		t.Fatalf("cap: %q", body)
	}
}

// fullListener is a loopback listener that never accepts, with its backlog filled: a
// connect to it waits for ever.
func fullListener(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	for i := 0; i < 8; i++ {
		c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err != nil {
			return addr // the backlog is full
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatal("could not fill the listener's backlog")
	return ""
}

// loopbackPeer listens on a loopback port for the guest to dial and runs serve on each
// connection in turn; the listener closes with the test. Returns the port.
func loopbackPeer(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			serve(c)
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// Connecting is bounded by connect_timeout.
func TestNetConnectTimeout(t *testing.T) {
	startNetWorld(t)
	warm(t, "limits")
	host, port, _ := net.SplitHostPort(fullListener(t))
	start := time.Now()
	body := string(netGet(t, "limits", "/open", "path", "/dev/tcp/"+host+"/"+port).body)
	took := time.Since(start)
	if !strings.Contains(body, "timed out") || took > 1900*time.Millisecond {
		t.Fatalf("connect to a full listener: %q after %v", body, took)
	}
}

// The request's deadline ends a guest blocked reading a connection, and closes the
// connections it opened.
func TestNetDeadlineClosesConnections(t *testing.T) {
	startNetWorld(t)
	accepted := make(chan net.Conn, 1)
	port := loopbackPeer(t, func(c net.Conn) { accepted <- c })
	warm(t, "limits")
	start := time.Now()
	r := netGet(t, "limits", "/hold", "path", "/dev/tcp/127.0.0.1/"+port, "n", "1", "read", "1")
	if r.status != 504 || time.Since(start) > 4*time.Second {
		t.Fatalf("blocked read: %d %q after %v", r.status, r.body, time.Since(start))
	}
	c := <-accepted
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the backend's side after the deadline: %d %v (want EOF: closed)", n, err)
	}
}

// TCP and UDP files carry the bytes both ways.
func TestNetEchoTCPAndUDP(t *testing.T) {
	startNetWorld(t)
	port := loopbackPeer(t, func(c net.Conn) {
		buf := make([]byte, 4)
		io.ReadFull(c, buf)
		fmt.Fprintf(c, "tcp:%s", buf)
		c.Close()
	})
	if b := string(netGet(t, "cgi", "/echo", "path", "/dev/tcp/127.0.0.1/"+port, "msg", "ping").body); b != "tcp:ping" {
		t.Fatalf("tcp echo: %q", b)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 64)
		n, from, err := pc.ReadFrom(buf)
		if err == nil {
			pc.WriteTo(append([]byte("udp:"), buf[:n]...), from)
		}
	}()
	_, uport, _ := net.SplitHostPort(pc.LocalAddr().String())
	if b := string(netGet(t, "cgi", "/echo", "path", "/dev/udp/127.0.0.1/"+uport, "msg", "ping", "udp", "1").body); b != "udp:ping" {
		t.Fatalf("udp echo: %q", b)
	}
}

// A CGI guest calling its own site when max_instances leaves no free slot gets the
// self-call's 503 (its wait for a slot is bounded by max_wait) instead of hanging.
func TestNetSelfCallWithoutFreeSlot(t *testing.T) {
	startNetWorld(t)
	warm(t, "selfcgi")
	start := time.Now()
	r := netGet(t, "selfcgi", "/fetch", "url", netURL("selfcgi", "/hello"))
	if r.status != 200 || !strings.HasPrefix(string(r.body), "503\n") || time.Since(start) > 10*time.Second {
		t.Fatalf("self-call with one slot: %d %q after %v", r.status, r.body, time.Since(start))
	}
}

// /tls: the host does TLS, trusting the site's ca_file; the name the guest wrote must be
// the certificate's.
func TestNetTLS(t *testing.T) {
	startNetWorld(t)
	r := netGet(t, "tls", "/fetch", "url", netWorld.tlsBackend.URL+"/")
	if r.status != 200 || string(r.body) != "200\ntls backend says hi" {
		t.Fatalf("https fetch: %d %q", r.status, r.body)
	}
	_, port, _ := net.SplitHostPort(netWorld.tlsBackend.Listener.Addr().String())
	if b := string(netGet(t, "tls", "/open", "path", "/dev/tcp/localhost/"+port+"/tls").body); !strings.HasPrefix(b, "error: ") {
		t.Fatalf("a name the certificate does not hold: %q", b)
	}
	if !netWorld.caddy.proc.logs.WaitFor(5*time.Second, "network: failed tcp localhost:"+port+"/tls: TLS handshake") {
		t.Fatalf("no debug line for the failed handshake")
	}
	if b := string(netGet(t, "cgi", "/open", "path", "/dev/tcp/127.0.0.1/"+port+"/tls").body); !strings.HasPrefix(b, "error: ") {
		t.Fatalf("a site without the CA: %q", b)
	}
}

// What a guest wrote before closing still reaches the peer: closing lets the connection
// send it (bounded), then closes.
func TestNetWriteThenClose(t *testing.T) {
	startNetWorld(t)
	got := make(chan int64, 1)
	port := loopbackPeer(t, func(c net.Conn) {
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, _ := io.Copy(io.Discard, c)
		got <- n
	})
	const size = 200000
	for _, site := range []string{"cgi", "wcgi"} {
		if b := string(netGet(t, site, "/send", "path", "/dev/tcp/127.0.0.1/"+port, "size", fmt.Sprint(size)).body); b != fmt.Sprintf("sent %d", size) {
			t.Fatalf("%s: %q", site, b)
		}
		if n := <-got; n != size {
			t.Fatalf("%s: the peer got %d of %d bytes", site, n, size)
		}
	}
}

// A WCGI instance connects in the background: one request's connect to a listener that
// never answers does not stop the instance's other requests, and fails at connect_timeout
// as a read error.
func TestNetWCGIConnectDoesNotBlock(t *testing.T) {
	startNetWorld(t)
	warm(t, "wcgislow")
	host, port, _ := net.SplitHostPort(fullListener(t))
	done := make(chan response, 1)
	start := time.Now()
	go func() {
		done <- get(t, netURL("wcgislow", "/echo", "path", "/dev/tcp/"+host+"/"+port, "msg", "hi"))
	}()
	served := 0
	for {
		select {
		case r := <-done:
			took := time.Since(start)
			if !strings.Contains(string(r.body), "read error") || !strings.Contains(string(r.body), "timed out") || took < 900*time.Millisecond {
				t.Fatalf("connect to a full listener: %d %q after %v", r.status, r.body, took)
			}
			if served < 3 {
				t.Fatalf("only %d other requests were served meanwhile", served)
			}
			return
		default:
		}
		one := time.Now()
		if r := netGet(t, "wcgislow", "/hello"); r.status != 200 || time.Since(one) > 500*time.Millisecond {
			t.Fatalf("while another request connects: %d after %v", r.status, time.Since(one))
		}
		served++
	}
}

// copyGuest writes the module at from to to (a new file version each time).
func copyGuest(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	tmp := to + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, to)
}

// A WCGI instance's connections belong to it, not to the request that opened them; they
// close when the instance is replaced (here: its module file is).
func TestNetWCGIReplacementClosesConnections(t *testing.T) {
	startNetWorld(t)
	warm(t, "wcgirepl")
	accepted := make(chan net.Conn, 1)
	port := loopbackPeer(t, func(c net.Conn) { accepted <- c })
	// The request times out; the goroutine reading the connection keeps it.
	if r := netGet(t, "wcgirepl", "/hold", "path", "/dev/tcp/127.0.0.1/"+port, "n", "1", "read", "1"); r.status != 504 {
		t.Fatalf("a request reading a silent peer: %d %q", r.status, r.body)
	}
	c := <-accepted
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the instance's connection after its request ended: %v (want still open)", err)
	}
	site := filepath.Join(netWorld.caddy.dir, "wcgirepl", "net.wasm")
	if err := copyGuest(site, site); err != nil {
		t.Fatal(err)
	}
	warm(t, "wcgirepl") // a new instance of the new version; the old one is drained
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the replaced instance's connection: %d %v (want EOF: closed)", n, err)
	}
}
