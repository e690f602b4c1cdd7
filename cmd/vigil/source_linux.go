package main

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/linux"
	"github.com/vigil-sensor/vigil/sensor"
)

// newSource loads the kernel event source.
func newSource(cfg sensor.Config, cat *sensor.Catalog, log zerolog.Logger) (sensor.Source, error) {
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
