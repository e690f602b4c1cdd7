package main

import (
	"fmt"

	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/darwin"
	"github.com/vigil-sensor/vigil/sensor"
)

// openSource starts the kernel event source: with esloggerInput, the replay of a recorded
// eslogger capture on any OS (the run ends with the capture), else the platform's live source
// the configuration names (newSource).
func openSource(cfg sensor.Config, cat *sensor.Catalog, esloggerInput string, log zerolog.Logger) (sensor.Source, error) {
	if esloggerInput == "" {
		return newSource(cfg, cat, log)
	}
	if cfg.Source != sensor.SourceEslogger && cfg.Source != sensor.SourceAuto {
		return nil, fmt.Errorf("--eslogger-input replays an eslogger capture: it needs --source eslogger, not %s", cfg.Source)
	}
	src, err := darwin.NewReplay(esloggerInput, darwin.Options{Catalog: cat, Log: log})
	if err != nil {
		return nil, fmt.Errorf("start eslogger replay: %w", err)
	}
	return src, nil
}
