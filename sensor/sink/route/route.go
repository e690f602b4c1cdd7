// Package route sends each record to one of two sinks. Its use: agent telemetry the kernel
// does not vouch for (agent.untrusted_telemetry) goes to a file of its own with its own
// rotation, so that whoever can post to the OTLP ports cannot rotate the agents' evidence out
// of the main file however much it sends.
package route

import (
	"errors"
	"fmt"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
)

// Split writes the records ToSide picks to Side and every other record to Main. It is a
// sensor.LineSink: a line encoded once reaches whichever of the two takes lines.
type Split struct {
	Main, Side sensor.Sink
	ToSide     func(*proto.Event) bool
}

// Untrusted picks the lines of telemetry no agent process vouches for, and their senders'
// rate-limit summaries.
func Untrusted(e *proto.Event) bool {
	return e.Event.Action == proto.ActionAgentUntrusted
}

// Write hands e to the sink it belongs to.
func (s *Split) Write(e *proto.Event) error {
	if s.ToSide(e) {
		return s.Side.Write(e)
	}
	return s.Main.Write(e)
}

// WriteLine hands e and its encoded line to the sink it belongs to, which encodes it itself
// when it does not take lines.
func (s *Split) WriteLine(e *proto.Event, line []byte) error {
	to := s.Main
	if s.ToSide(e) {
		to = s.Side
	}
	if ls, ok := to.(sensor.LineSink); ok {
		return ls.WriteLine(e, line)
	}
	return to.Write(e)
}

// Flush flushes both sinks, even when the first fails.
func (s *Split) Flush() error {
	return join("flush", s.Main.Flush(), s.Side.Flush())
}

// Close closes both sinks, even when the first fails.
func (s *Split) Close() error {
	return join("close", s.Main.Close(), s.Side.Close())
}

// join names the step and which sink failed.
func join(step string, mainErr, sideErr error) error {
	var errs []error
	if mainErr != nil {
		errs = append(errs, fmt.Errorf("%s main sink: %w", step, mainErr))
	}
	if sideErr != nil {
		errs = append(errs, fmt.Errorf("%s side sink: %w", step, sideErr))
	}
	return errors.Join(errs...)
}
