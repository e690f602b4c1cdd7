package main

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/linux"
	"github.com/vigil-sensor/vigil/sensor"
)

// newSource loads the kernel event source cfg.Source names. auto tries a real eBPF load and,
// when the kernel refuses it, falls back to the audit subsystem with one line saying why.
func newSource(cfg sensor.Config, cat *sensor.Catalog, log zerolog.Logger) (sensor.Source, error) {
	switch cfg.Source {
	case "ebpf":
		return newEBPFSource(cfg, cat, log)
	case "audit":
		return newAuditSource(cfg, cat, log)
	case sensor.SourceAuto:
		src, err := newEBPFSource(cfg, cat, log)
		if err == nil {
			return src, nil
		}
		log.Warn().Str("ebpf_error", err.Error()).Msg("eBPF cannot load here; falling back to the audit subsystem, which costs more per event and sees less (docs/schema.md, \"The audit source\")")
		audit, auditErr := newAuditSource(cfg, cat, log)
		if auditErr != nil {
			return nil, fmt.Errorf("no kernel event source loads: %w; and %w", err, auditErr)
		}
		return audit, nil
	}
	return nil, fmt.Errorf("source %q: not available live on Linux (ebpf, audit or auto); eslogger replays a macOS capture given with --eslogger-input", cfg.Source)
}

func newEBPFSource(cfg sensor.Config, cat *sensor.Catalog, log zerolog.Logger) (sensor.Source, error) {
	src, err := linux.NewEBPF(linux.Options{
		Catalog:         cat,
		RingBufferBytes: cfg.Kernel.RingBufferKB << 10,
		WakeupBytes:     cfg.Kernel.WakeupBytes,
		PollInterval:    time.Duration(cfg.Kernel.PollIntervalMs) * time.Millisecond,
		Log:             log,
	})
	if err != nil {
		return nil, fmt.Errorf("start eBPF source: %w", err)
	}
	return src, nil
}

func newAuditSource(cfg sensor.Config, cat *sensor.Catalog, log zerolog.Logger) (sensor.Source, error) {
	src, err := linux.NewAudit(linux.AuditOptions{
		Catalog:      cat,
		PollInterval: time.Duration(cfg.Kernel.PollIntervalMs) * time.Millisecond,
		Scope:        cfg.Kernel.AuditScope,
		Log:          log,
	})
	if err != nil {
		return nil, fmt.Errorf("start audit source: %w", err)
	}
	return src, nil
}
