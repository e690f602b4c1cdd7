//go:build !linux

package main

import (
	"errors"
	"runtime"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/correlate"
	"github.com/vigil-sensor/vigil/sensor"
)

// platformSource mirrors the Linux one so run.go builds everywhere.
type platformSource struct {
	sensor.Source
	seeded []sensor.ProcessInfo
	bootID string
	ready  time.Duration
	close  func() error
	// resolver maps an OTLP connection to its sender's pid.
	resolver correlate.PeerResolver
}

// newSource: only the Linux source exists so far; the macOS EndpointSecurity source
// (darwin/) is planned in DESIGN.md but not built.
func newSource(sensor.Config, *sensor.Catalog, zerolog.Logger) (*platformSource, error) {
	return nil, errors.New("no kernel event source for " + runtime.GOOS + " yet: vigil run supports Linux only")
}
