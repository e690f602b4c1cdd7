package main

import (
	"time"

	"github.com/vigil-sensor/vigil/correlate"
	"github.com/vigil-sensor/vigil/sensor"
)

// platformSource is the loaded kernel source and what it found at start; newSource, one per
// platform, builds it.
type platformSource struct {
	sensor.Source
	seeded []sensor.ProcessInfo
	bootID string
	ready  time.Duration
	close  func() error
	// resolver maps an OTLP connection to its sender's pid.
	resolver correlate.PeerResolver
}
