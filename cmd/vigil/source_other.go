//go:build !linux && !darwin

package main

import (
	"errors"
	"runtime"

	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/sensor"
)

// newSource: Vigil has live sources for Linux and macOS only (a recorded eslogger capture
// replays anywhere: --eslogger-input).
func newSource(sensor.Config, *sensor.Catalog, zerolog.Logger) (sensor.Source, error) {
	return nil, errors.New("no kernel event source for " + runtime.GOOS + ": vigil run supports Linux and macOS (or --source eslogger --eslogger-input FILE)")
}
