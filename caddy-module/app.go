package wagi

import (
	"fmt"
	"math"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-wagi/caddy-wagi/caddy-module/engine"
)

func init() {
	caddy.RegisterModule(App{})
}

// App is the Caddy app `wagi`: it owns the process's one engine and the settings that
// bound all sites together. Handlers get it with `ctx.App("wagi")`; a config without
// `apps.wagi` gets one with the defaults.
type App struct {
	// InstanceSlots is how many guests may run at once in the whole process, over all
	// sites; a request waits for one within its handler's `max_wait`, then answers 503.
	// Default: 256.
	InstanceSlots int `json:"instance_slots,omitempty"`

	// WCGIInstances is how many long-lived (WCGI) instances may be alive at once in the
	// whole process; a request needing one more answers 503. Default: 64.
	WCGIInstances int `json:"wcgi_instances,omitempty"`

	// MemoryCeiling is the largest linear memory any guest may have, in bytes; a site's
	// `memory` above it is refused when the config loads. Default: 4 GiB.
	MemoryCeiling int64 `json:"memory_ceiling,omitempty"`

	// CompileConcurrency is how many modules may compile at once. Default: 0, the
	// engine's choice (half the CPUs, at least 1).
	CompileConcurrency int `json:"compile_concurrency,omitempty"`

	engine *engine.Engine
	key    string
}

// Defaults, documented on the fields above.
const (
	defaultInstanceSlots = 256
	defaultWCGIInstances = 64
	defaultMemoryCeiling = 4 << 30
)

// engines holds the process's engines by their settings. A reload with the same
// settings shares the running engine, so compiled modules survive it; changed settings
// make a new one, and an engine is freed when the last app using it is cleaned up.
var engines = caddy.NewUsagePool()

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "wagi",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision sets defaults and acquires the engine for these settings.
func (a *App) Provision(ctx caddy.Context) error {
	if a.InstanceSlots == 0 {
		a.InstanceSlots = defaultInstanceSlots
	}
	if a.WCGIInstances == 0 {
		a.WCGIInstances = defaultWCGIInstances
	}
	if a.MemoryCeiling == 0 {
		a.MemoryCeiling = defaultMemoryCeiling
	}
	// Caddy provisions before it validates; the engine must not see bad settings.
	if err := a.Validate(); err != nil {
		return err
	}
	cfg := engine.Config{
		Slots:              a.InstanceSlots,
		MemoryCeiling:      uint64(a.MemoryCeiling),
		WCGIInstances:      a.WCGIInstances,
		CompileConcurrency: a.CompileConcurrency,
	}
	a.key = fmt.Sprintf("engine slots=%d wcgi=%d memory=%d compile=%d",
		cfg.Slots, cfg.WCGIInstances, cfg.MemoryCeiling, cfg.CompileConcurrency)
	// The engine may outlive this config and its logger: log through the default logger
	// of the moment.
	cfg.Log = logEngineLine
	e, _, err := engines.LoadOrNew(a.key, func() (caddy.Destructor, error) { return engine.New(cfg) })
	if err != nil {
		a.key = ""
		return fmt.Errorf("wagi: creating engine: %w", err)
	}
	a.engine = e.(*engine.Engine)
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("wagi: registering metrics: %w", err)
	}
	return nil
}

// logEngineLine logs a line of the engine's own (no request) with the module and site it
// is about, through the default logger of the moment: the engine may outlive this config
// and its logger.
func logEngineLine(level engine.LogLevel, msg string, f engine.LogFields) {
	var fields []zap.Field
	if f.Module != "" {
		fields = append(fields, zap.String("module", f.Module))
	}
	if f.Site != "" {
		fields = append(fields, zap.String("site", f.Site))
	}
	logger := caddy.Log().Named("wagi")
	if level == engine.LogGuestStderr {
		logger.Info("guest stderr", append(fields, zap.String("line", msg))...)
		return
	}
	logAt(logger, level, msg, fields...)
}

// Validate checks the settings.
func (a *App) Validate() error {
	for _, n := range []struct {
		name  string
		value int
	}{
		{"instance_slots", a.InstanceSlots},
		{"wcgi_instances", a.WCGIInstances},
		{"compile_concurrency", a.CompileConcurrency},
	} {
		if n.value < 0 || int64(n.value) > math.MaxUint32 {
			return fmt.Errorf("wagi: %s %d out of range", n.name, n.value)
		}
	}
	if a.MemoryCeiling < 0 {
		return fmt.Errorf("wagi: memory_ceiling must not be negative")
	}
	return nil
}

// Start makes this config's engine the one the admin API and the metrics report on; the
// engine itself starts with Provision, and requests reach it through the handlers.
func (a *App) Start() error {
	running.Store(a)
	return nil
}

// Stop lets the admin API and the metrics go of this config's engine, unless a newer
// config took them already (Caddy starts the new config before stopping the old). The
// engine outlives a reload, and is freed by Cleanup.
func (a *App) Stop() error {
	running.CompareAndSwap(a, nil)
	return nil
}

// Cleanup releases this config's use of the engine; the last use frees it, after the
// calls into it still running have returned.
func (a *App) Cleanup() error {
	if a.key == "" {
		return nil
	}
	_, err := engines.Delete(a.key)
	a.key = ""
	return err
}

// checkMemory refuses a guest memory limit above the process's ceiling.
func (a *App) checkMemory(bytes int64) error {
	if bytes > a.MemoryCeiling {
		return fmt.Errorf("wagi: memory %d bytes is above the process's memory_ceiling of %d bytes (global option `wagi { memory_ceiling <size> }`)",
			bytes, a.MemoryCeiling)
	}
	return nil
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
