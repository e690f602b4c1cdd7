package main

import (
	"fmt"

	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/darwin"
	"github.com/vigil-sensor/vigil/sensor"
)

// newSource starts EndpointSecurity through /usr/bin/eslogger, the one source on macOS.
func newSource(cfg sensor.Config, cat *sensor.Catalog, log zerolog.Logger) (sensor.Source, error) {
	if cfg.Source != sensor.SourceAuto && cfg.Source != sensor.SourceEslogger {
		return nil, fmt.Errorf("source %q: not available on macOS (eslogger or auto)", cfg.Source)
	}
	src, err := darwin.NewLive(darwin.Options{Catalog: cat, Log: log})
	if err != nil {
		return nil, fmt.Errorf("start EndpointSecurity source: %w", err)
	}
	return src, nil
}
