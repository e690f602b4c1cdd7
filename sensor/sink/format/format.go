// Package format writes records to a line sink in an output format other than the native
// one: OCSF (output.format: ocsf), for SIEMs and lakes that ingest OCSF natively. The wrapped
// sink (the JSONL files) writes the lines it is given as they are, rotation and loss
// counting included.
package format

import (
	"fmt"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/proto/ocsf"
	"github.com/vigil-sensor/vigil/sensor"
)

// OCSF encodes each record as an OCSF event (proto/ocsf) and hands that line to the sink it
// wraps. It is a plain sensor.Sink, not a sensor.LineSink: the pipeline's shared line is the
// native encoding, which is not what it writes, and taking it would make the pipeline encode
// a line no sink uses. Like the sinks it wraps, it is called from the pipeline's goroutine.
type OCSF struct {
	inner   sensor.LineSink
	version string
	line    []byte // reused: a line is only valid during the inner sink's WriteLine
}

// NewOCSF writes OCSF lines to inner. Only a sink that takes lines can be given: any other
// would encode the record natively itself. version is Vigil's, metadata.product.version.
func NewOCSF(inner sensor.LineSink, version string) *OCSF {
	return &OCSF{inner: inner, version: version}
}

// Write encodes e as one OCSF line and writes it to the inner sink.
func (s *OCSF) Write(e *proto.Event) error {
	line, err := ocsf.AppendLine(s.line[:0], e, s.version)
	if err != nil {
		return fmt.Errorf("ocsf sink: %w", err)
	}
	s.line = line
	return s.inner.WriteLine(e, line)
}

// EncodesLines marks it a sensor.LineEncoder: it writes lines, so it is given compact
// records (proto/compact) like the sinks that take the native line.
func (s *OCSF) EncodesLines() {}

// Flush flushes the inner sink.
func (s *OCSF) Flush() error { return s.inner.Flush() }

// Close closes the inner sink.
func (s *OCSF) Close() error { return s.inner.Close() }
