package main

import (
	"errors"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/sensor"
	"github.com/vigil-sensor/vigil/sensor/sink/jsonl"
	"github.com/vigil-sensor/vigil/sensor/sink/route"
)

// outputs are the files `vigil run` writes: the events and, apart, untrusted telemetry.
type outputs struct {
	events    *jsonl.Writer
	untrusted *jsonl.Writer // nil: untrusted telemetry goes to events
	sink      sensor.Sink   // what the pipeline writes to
}

// openOutputs opens the JSONL files cfg names. Untrusted telemetry shares the events file
// when output.untrusted_jsonl is "" or the events go to standard output.
func openOutputs(cfg sensor.Config, log zerolog.Logger) (*outputs, error) {
	onForeign := func(path string, uid int) {
		log.Warn().Str("path", path).Int("owner_uid", uid).Msg("output file owned by another user: removed and created anew, never written into")
	}
	events, err := jsonl.Open(jsonl.Options{
		Path:         cfg.Output.JSONL,
		MaxSizeBytes: int64(cfg.Output.MaxSizeMB) << 20,
		MaxFiles:     cfg.Output.MaxFiles,
		OnForeign:    onForeign,
	})
	if err != nil {
		return nil, fmt.Errorf("open JSONL output: %w", err)
	}
	o := &outputs{events: events, sink: events}
	if cfg.Output.UntrustedJSONL == "" || cfg.Output.JSONL == jsonl.Stdout {
		return o, nil
	}
	o.untrusted, err = jsonl.Open(jsonl.Options{
		Path:         cfg.Output.UntrustedJSONL,
		MaxSizeBytes: int64(cfg.Output.UntrustedMaxSizeMB) << 20,
		MaxFiles:     cfg.Output.UntrustedMaxFiles,
		OnForeign:    onForeign,
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open untrusted JSONL output: %w", err), events.Close())
	}
	o.sink = &route.Split{Main: events, Side: o.untrusted, ToSide: route.Untrusted}
	return o, nil
}

// losses counts, per file, the records it could not take (a full disk past its reserve).
func (o *outputs) losses() map[string]uint64 {
	_, _, dropped := o.events.Stats()
	m := map[string]uint64{"output": dropped}
	if o.untrusted != nil {
		_, _, dropped := o.untrusted.Stats()
		m["output_untrusted"] = dropped
	}
	return m
}

// written is what the files really hold, and what they dropped.
func (o *outputs) written() (written, dropped uint64) {
	written, _, dropped = o.events.Stats()
	if o.untrusted != nil {
		w, _, d := o.untrusted.Stats()
		written, dropped = written+w, dropped+d
	}
	return written, dropped
}

func (o *outputs) close() error {
	return o.sink.Close()
}
