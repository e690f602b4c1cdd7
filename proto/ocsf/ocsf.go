// Package ocsf encodes Vigil's records as OCSF events (Open Cybersecurity Schema Framework),
// for SIEMs and lakes that ingest OCSF natively (Amazon Security Lake, Splunk, ...): one JSON
// object per record, under the same line limit as the native ECS-style line.
//
// The mapped schema is OCSF 1.8.0, the newest release (ocsf/ocsf-schema tag 1.8.0, commit
// 6fa6499a0f8c9f449d342816e90e5f687c224b0a). docs/ocsf.md has the mapping; in short: process
// records are Process Activity (1007), file records File System Activity (1001), network
// records Network Activity (4001), detection alerts Detection Finding (2004), and what the
// agents and the correlator say of themselves Base Event (0). Whatever has no OCSF attribute
// is kept in unmapped under its native name, so no value of a record is lost.
//
// The package imports only proto and the standard library.
package ocsf

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/vigil-sensor/vigil/proto"
)

// Version is the OCSF release the events follow, written to metadata.version.
const Version = "1.8.0"

// AppendLine appends e as one OCSF event in compact JSON, and a newline, to dst. The line is
// shorter than proto.MaxLineBytes: when the OCSF line would not be, the native record is cut
// by proto.FitLineTo (the same fields, the same way, named in unmapped.vigil.truncated) until
// it is. sensorVersion is Vigil's own version, metadata.product.version. On error dst is
// returned unchanged in length.
func AppendLine(dst []byte, e *proto.Event, sensorVersion string) ([]byte, error) {
	if e == nil {
		return dst, errors.New("ocsf line: nil event")
	}
	rec, limit := e, proto.MaxLineBytes
	for {
		// The native line of what is mapped: its length sets the next limit, and encoding
		// it checks the record's times have a form (MarshalJSON refuses those that do not).
		native, err := proto.MarshalJSON(rec)
		if err != nil {
			return dst, fmt.Errorf("ocsf line: %w", err)
		}
		if len(native) < limit {
			line, err := encode(rec, sensorVersion)
			if err != nil {
				return dst, fmt.Errorf("ocsf line: %w", err)
			}
			if len(line) < proto.MaxLineBytes {
				return append(append(dst, line...), '\n'), nil
			}
			// The OCSF line is longer than the native one (longer names, the actor's
			// process beside the process): fit the native line tighter by the excess.
			limit = len(native) - (len(line) - proto.MaxLineBytes + 1)
			if limit <= 0 {
				return dst, fmt.Errorf("ocsf line: %d bytes with the native record at its smallest", len(line))
			}
		}
		// Map what FitLineTo keeps. Its line is then under the limit, and the limit only
		// decreases from there, so this ends, at the latest when FitLineTo cannot fit.
		fitted, err := proto.FitLineTo(e, limit)
		if err != nil {
			return dst, fmt.Errorf("ocsf line: %w", err)
		}
		var cut proto.Event
		if err := proto.UnmarshalJSON(fitted, &cut); err != nil {
			return dst, fmt.Errorf("ocsf line: read the fitted record: %w", err)
		}
		rec = &cut
	}
}

// encode maps e to its OCSF event, without a newline.
func encode(e *proto.Event, sensorVersion string) ([]byte, error) {
	m := newMapping(e, sensorVersion)
	switch {
	case isProcess(e):
		m.processActivity()
	case isFile(e):
		m.fileActivity()
	case isNetwork(e):
		m.networkActivity()
	case e.Event.Action == proto.ActionAlert:
		m.detectionFinding()
	default:
		m.baseEvent()
	}
	line := m.out.appendJSON(nil)
	// unmapped goes last, before the event's closing brace.
	n := len(line) - 1
	out, ok, err := m.appendUnmapped(append(line[:n], `,"unmapped":`...))
	if err != nil {
		return nil, fmt.Errorf("marshal unmapped: %w", err)
	}
	if !ok {
		return append(line[:n], '}'), nil
	}
	return append(out, '}'), nil
}

// ocsfPrefix starts every line AppendLine writes (activity_id is the event's first field);
// a native line starts with {"@timestamp":.
var ocsfPrefix = []byte(`{"activity_id":`)

// ErrNotNative is CheckNative's error.
var ErrNotNative = errors.New("an OCSF event (output.format: ocsf), not a native record: " +
	"read the sensor's store (vigil query --db), which holds native records in either format")

// CheckNative returns ErrNotNative when line is an OCSF event AppendLine wrote rather than a
// native record: readers of Vigil's JSONL (vigil trace, vigil query --jsonl) would otherwise
// decode it into an empty record, since proto.UnmarshalJSON ignores names it does not know.
func CheckNative(line []byte) error {
	if bytes.HasPrefix(bytes.TrimLeft(line, " \t\r\n"), ocsfPrefix) {
		return ErrNotNative
	}
	return nil
}
