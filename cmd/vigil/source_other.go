//go:build !linux

package main

import (
	"errors"
	"runtime"

	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/sensor"
)

// newSource: only the Linux source exists so far; the macOS EndpointSecurity source
// (darwin/) is planned in DESIGN.md but not built.
func newSource(sensor.Config, *sensor.Catalog, zerolog.Logger) (sensor.Source, error) {
	return nil, errors.New("no kernel event source for " + runtime.GOOS + " yet: vigil run supports Linux only")
}
