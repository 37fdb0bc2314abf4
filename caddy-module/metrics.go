package wagi

import (
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-wagi/caddy-wagi/caddy-module/engine"
)

// Prometheus metrics, all named wagi_*. The collectors live for the process, so counters
// keep counting across config reloads; each config's registry (Caddy makes one per
// config, served on the admin endpoint's /metrics) gets them registered once. Labels stay
// bounded: module paths are relative to the site root and name files that exist, statuses
// and failure kinds are few; no request path is a label.
var metrics struct {
	once     sync.Once
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	engine   *engineCollector
}

// waiting counts requests waiting for one of their handler's guest slots.
var waiting atomic.Int64

func initMetrics() {
	metrics.once.Do(func() {
		metrics.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wagi_requests_total",
			Help: "Requests that ran (or tried to run) a module, by module, status and failure kind (none when it succeeded).",
		}, []string{"module", "status", "kind"})
		metrics.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wagi_request_duration_seconds",
			Help:    "Time from a request reaching the module to its response being done, by module.",
			Buckets: prometheus.DefBuckets,
		}, []string{"module"})
		metrics.engine = &engineCollector{}
	})
}

// registerMetrics adds the wagi collectors to a config's registry, once.
func registerMetrics(registry *prometheus.Registry) error {
	initMetrics()
	if registry == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{metrics.requests, metrics.duration, metrics.engine} {
		if err := registry.Register(c); err != nil {
			var dup prometheus.AlreadyRegisteredError
			if !errors.As(err, &dup) {
				return err
			}
		}
	}
	return nil
}

// outcome is what became of one request, for wagi_requests_total.
type outcome struct {
	module string
	status int
	kind   string
	start  time.Time
}

// newOutcome starts observing a request for module s under root.
func newOutcome(root string, s script) *outcome {
	return &outcome{module: moduleLabel(root, s.filename), kind: "none", start: time.Now()}
}

// fail records a failure of kind answered with status, or with err's status when err is
// a caddyhttp.HandlerError.
func (o *outcome) fail(kind string, status int, err error) {
	o.kind = kind
	o.status = status
	var he caddyhttp.HandlerError
	if errors.As(err, &he) && he.StatusCode != 0 {
		o.status = he.StatusCode
	}
}

// done counts the request.
func (o *outcome) done() {
	initMetrics()
	metrics.requests.WithLabelValues(o.module, strconv.Itoa(o.status), o.kind).Inc()
	metrics.duration.WithLabelValues(o.module).Observe(time.Since(o.start).Seconds())
}

// moduleLabel names a module by its path relative to the site root (its absolute path
// when it lies outside, as a `module` set in the config may).
func moduleLabel(root, filename string) string {
	// Both are clean absolute paths: the common case needs no filepath.Rel.
	if rest, ok := strings.CutPrefix(filename, root); ok && len(rest) > 1 && rest[0] == filepath.Separator && filepath.IsLocal(rest[1:]) {
		return filepath.ToSlash(rest[1:])
	}
	if rel, err := filepath.Rel(root, filename); err == nil && filepath.IsLocal(rel) {
		return filepath.ToSlash(rel)
	}
	return filename
}

// engineCollector reports the running engine's counters and gauges when scraped.
type engineCollector struct{}

var (
	descCompiles       = prometheus.NewDesc("wagi_compiles_total", "Modules compiled from wasm.", nil, nil)
	descCompileSeconds = prometheus.NewDesc("wagi_compile_seconds_total", "Time spent compiling modules.", nil, nil)
	descDiskCache      = prometheus.NewDesc("wagi_disk_cache_lookups_total", "Module loads by what the disk cache of precompiled modules gave: hit, miss (compiled) or reject (file found but refused).", []string{"result"}, nil)
	descModules        = prometheus.NewDesc("wagi_modules_loaded", "Modules loaded in memory.", nil, nil)
	descRunning        = prometheus.NewDesc("wagi_guests_running", "Guests running on the process's guest slots (per-request instances, and requests not yet handed to a WCGI instance).", nil, nil)
	descWaiting        = prometheus.NewDesc("wagi_guests_waiting", "Requests waiting for a guest slot.", nil, nil)
	descWCGIRunning    = prometheus.NewDesc("wagi_wcgi_instances_running", "Long-lived (WCGI) instances alive.", nil, nil)
	descWCGIStarted    = prometheus.NewDesc("wagi_wcgi_instances_started_total", "Long-lived (WCGI) instances started.", nil, nil)
	descWCGIReplaced   = prometheus.NewDesc("wagi_wcgi_instances_replaced_total", "Long-lived (WCGI) instances replaced: module changed, instance ended or wedged, or restarted through the admin API.", nil, nil)
	descWCGIMemory     = prometheus.NewDesc("wagi_wcgi_memory_bytes", "Linear memory of the alive long-lived (WCGI) instances.", nil, nil)
	descOutbound       = prometheus.NewDesc("wagi_outbound_connections_total", "Outbound connections guests asked for, by result: opened, refused (rules or cap) or failed (resolve, connect, handshake).", []string{"result"}, nil)
	descOutboundOpen   = prometheus.NewDesc("wagi_outbound_connections_open", "Outbound connections open now.", nil, nil)
)

func (c *engineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCompiles, descCompileSeconds, descDiskCache, descModules, descRunning,
		descWaiting, descWCGIRunning, descWCGIStarted, descWCGIReplaced, descWCGIMemory, descOutbound, descOutboundOpen} {
		ch <- d
	}
}

func (c *engineCollector) Collect(ch chan<- prometheus.Metric) {
	e := runningEngine()
	if e == nil {
		return
	}
	s, ok := e.Stats()
	if !ok {
		return
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter(descCompiles, float64(s.Compiles))
	counter(descCompileSeconds, s.CompileSeconds)
	counter(descDiskCache, float64(s.DiskCacheHits), "hit")
	counter(descDiskCache, float64(s.DiskCacheMisses), "miss")
	counter(descDiskCache, float64(s.DiskCacheRejects), "reject")
	gauge(descModules, float64(s.ModulesLoaded))
	running, engineWaiting := e.Busy()
	gauge(descRunning, float64(running))
	gauge(descWaiting, float64(engineWaiting+waiting.Load()))
	gauge(descWCGIRunning, float64(s.WCGIRunning))
	counter(descWCGIStarted, float64(s.WCGIStarted))
	counter(descWCGIReplaced, float64(s.WCGIReplaced))
	gauge(descWCGIMemory, float64(s.WCGIMemoryBytes))
	counter(descOutbound, float64(s.OutboundOpened), "opened")
	counter(descOutbound, float64(s.OutboundRefused), "refused")
	counter(descOutbound, float64(s.OutboundFailed), "failed")
	gauge(descOutboundOpen, float64(s.OutboundOpen))
}

var _ prometheus.Collector = (*engineCollector)(nil)

// running is the wagi app of the running config: the admin API and the metrics reach
// its engine through it.
var running atomic.Pointer[App]

// runningEngine is the engine of the running config, or nil.
func runningEngine() *engine.Engine {
	if a := running.Load(); a != nil {
		return a.engine
	}
	return nil
}
