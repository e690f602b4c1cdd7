package main

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
	"github.com/vigil-sensor/vigil/sensor/sink/format"
	"github.com/vigil-sensor/vigil/sensor/sink/jsonl"
	"github.com/vigil-sensor/vigil/sensor/sink/otlp"
	"github.com/vigil-sensor/vigil/sensor/sink/queue"
	"github.com/vigil-sensor/vigil/sensor/sink/route"
	"github.com/vigil-sensor/vigil/sensor/sink/sign"
	"github.com/vigil-sensor/vigil/sensor/sink/store"
)

// outputs are what `vigil run` writes: the events and, apart, untrusted telemetry (JSONL),
// the embedded store of both, and the OTLP export of both.
type outputs struct {
	events    *jsonl.Writer
	untrusted *jsonl.Writer // nil: untrusted telemetry goes to events
	// floods takes the kernel lines budget marks past their agent tree's line budget (the
	// pipeline's Flood); both nil: they stay in events.
	floods *jsonl.Writer
	budget sensor.FloodBudget
	jsonl  sensor.Sink  // the JSONL files, as one sink, in output.format
	store  *store.Store // nil: output.store is ""
	// storeQueue writes to the store on a goroutine of its own, so that the store's pace
	// (~55–65k lines/s on one core) never sets the sensor's: what it cannot take is its
	// loss kind sink_store, never kernel loss.
	storeQueue *queue.Sink
	otlp       *otlp.Exporter // nil: output.otlp.endpoint is ""
	// otlpQueue gives the exporter a goroutine of its own like the store's; the exporter
	// itself never waits on the network (it spools), so its queue only fills when the spool's
	// disk is slower than the sensor.
	otlpQueue *queue.Sink
}

// openOutputs opens the JSONL files and the store cfg names. Untrusted telemetry shares the
// events file when output.untrusted_jsonl is "" or the events go to standard output; the
// store takes every record. With output.format ocsf both JSONL files get OCSF lines; the store
// still takes the native records, so vigil query --db reads it either way.
func openOutputs(cfg sensor.Config, log zerolog.Logger) (*outputs, error) {
	onForeign := func(path string, uid int) {
		log.Warn().Str("path", path).Int("owner_uid", uid).Msg("output file owned by another user: removed and created anew, never written into")
	}
	eventsSign, err := openSigner(cfg, cfg.Output.JSONL, log)
	if err != nil {
		return nil, fmt.Errorf("open JSONL output: %w", err)
	}
	events, err := jsonl.Open(jsonl.Options{
		Path:         cfg.Output.JSONL,
		MaxSizeBytes: int64(cfg.Output.MaxSizeMB) << 20,
		MaxFiles:     cfg.Output.MaxFiles,
		OnForeign:    onForeign,
		Sign:         eventsSign,
	})
	if err != nil {
		return nil, fmt.Errorf("open JSONL output: %w", err)
	}
	o := &outputs{events: events}
	var files sensor.LineSink = events
	if cfg.Output.JSONL != jsonl.Stdout {
		if cfg.Output.FloodJSONL != "" {
			o.floods, err = openSideFile(cfg, cfg.Output.FloodJSONL, cfg.Output.FloodMaxSizeMB, cfg.Output.FloodMaxFiles, onForeign, log)
			if err != nil {
				return nil, errors.Join(fmt.Errorf("open flood JSONL output: %w", err), files.Close())
			}
			files = &route.Split{Main: files, Side: o.floods, ToSide: route.Flooded}
			o.budget = route.NewBudget(cfg.Output.TreeLinesPerMinute, 0)
		}
		if cfg.Output.UntrustedJSONL != "" {
			o.untrusted, err = openSideFile(cfg, cfg.Output.UntrustedJSONL, cfg.Output.UntrustedMaxSizeMB, cfg.Output.UntrustedMaxFiles, onForeign, log)
			if err != nil {
				return nil, errors.Join(fmt.Errorf("open untrusted JSONL output: %w", err), files.Close())
			}
			files = &route.Split{Main: files, Side: o.untrusted, ToSide: route.Untrusted}
		}
	}
	o.jsonl = files
	if cfg.Output.Format == sensor.FormatOCSF {
		o.jsonl = format.NewOCSF(files, version)
	}
	if cfg.Output.Store != "" {
		o.store, err = store.Open(store.Options{
			Path:      cfg.Output.Store,
			MaxAge:    time.Duration(cfg.Output.StoreMaxDays) * 24 * time.Hour,
			MaxBytes:  int64(cfg.Output.StoreMaxMB) << 20,
			OnForeign: onForeign,
		})
		if err != nil {
			return nil, errors.Join(fmt.Errorf("open store output: %w", err), o.jsonl.Close())
		}
		o.storeQueue = queue.New(o.store, queue.Options{Name: "store", Log: log})
	}
	if c := cfg.Output.OTLP; c.Endpoint != "" {
		o.otlp, err = otlp.Open(otlp.HostResource(otlp.Options{
			Endpoint:       c.Endpoint,
			Protocol:       otlp.Protocol(c.Protocol),
			Headers:        c.Headers,
			TLS:            otlp.TLS{CAFile: c.TLS.CAFile, CertFile: c.TLS.CertFile, KeyFile: c.TLS.KeyFile, Insecure: c.TLS.Insecure},
			Timeout:        time.Duration(c.TimeoutSeconds) * time.Second,
			SpoolDir:       c.SpoolDir,
			SpoolMaxBytes:  int64(c.SpoolMaxMB) << 20,
			ServiceVersion: version,
			Log:            log,
		}))
		if err != nil {
			return nil, errors.Join(fmt.Errorf("open OTLP output: %w", err), o.close())
		}
		var exporter sensor.Sink = o.otlp
		if cfg.Output.Format == sensor.FormatOCSF {
			// Encoded on the queue's goroutine, not the pipeline's: an OCSF line costs
			// about 10 µs (docs/ocsf.md).
			exporter = format.NewOCSF(o.otlp, version)
		}
		o.otlpQueue = queue.New(exporter, queue.Options{Name: "otlp", Log: log})
	}
	return o, nil
}

// openSigner opens the signer of the JSONL file at path when output.sign is on (nil when it is
// off). Each file has its own key, named after the file, so the two files' seals never evolve
// one key under each other. A new key's pin is logged: the admin copies it off the machine.
// Standard output (vigil run --jsonl -) cannot be signed, which is logged too.
func openSigner(cfg sensor.Config, path string, log zerolog.Logger) (*sign.Signer, error) {
	if !cfg.Output.Sign {
		return nil, nil
	}
	if path == jsonl.Stdout {
		log.Warn().Msg("output.sign is on but events go to standard output, which cannot be signed: not signed")
		return nil, nil
	}
	s, err := sign.Open(sign.Options{
		KeyDir:   cfg.Output.SignKeyDir,
		Name:     filepath.Base(path),
		Interval: time.Duration(cfg.Output.SealIntervalSeconds) * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	if s.Created() {
		pin, err := s.Pin()
		if err != nil {
			return nil, fmt.Errorf("sign: %w", err)
		}
		log.Warn().Str("path", path).Str("key_log", sign.KeyLogPath(cfg.Output.SignKeyDir, filepath.Base(path))).Str("chain_id", pin.Chain.String()).Str("pubkey", pin.PublicKey()).
			Msg("new signing key: keep its pin off this machine and verify with vigil verify --pubkey (docs/integrity.md)")
	}
	return s, nil
}

// sinks are what the pipeline writes to, in order: the JSONL first (the SIEM's feed), then
// the store, then the OTLP export.
func (o *outputs) sinks() []sensor.Sink {
	s := []sensor.Sink{o.jsonl}
	if o.store != nil {
		var store sensor.Sink = o.storeQueue
		if o.floods != nil {
			store = &route.Filter{Inner: o.storeQueue, Keep: route.NotFlooded} // docs/schema.md, "Floods"
		}
		s = append(s, store)
	}
	if o.otlp != nil {
		s = append(s, o.otlpQueue)
	}
	return s
}

// openSideFile opens a JSONL file kept apart from the events file, with its own rotation and
// its own signing key.
func openSideFile(cfg sensor.Config, path string, maxSizeMB, maxFiles int, onForeign func(string, int), log zerolog.Logger) (*jsonl.Writer, error) {
	signer, err := openSigner(cfg, path, log)
	if err != nil {
		return nil, err
	}
	return jsonl.Open(jsonl.Options{
		Path:         path,
		MaxSizeBytes: int64(maxSizeMB) << 20,
		MaxFiles:     maxFiles,
		OnForeign:    onForeign,
		Sign:         signer,
	})
}

// compactScope is the pipeline's CompactScope, with output.compact on: the flood file's
// scope for a flood line, the events file's for the rest (untrusted telemetry, the third
// file, is never compact).
func (o *outputs) compactScope(cfg sensor.Config) func(*proto.Event) (int, uint64, int64) {
	if !cfg.Output.Compact {
		return nil
	}
	return func(e *proto.Event) (int, uint64, int64) {
		if e.Vigil.Flood && o.floods != nil {
			gen, room := o.floods.Scope()
			return 1, gen, room
		}
		gen, room := o.events.Scope()
		return 0, gen, room
	}
}

// losses counts, per output, the records it could not take (a full disk past the JSONL
// sink's reserve, a failed store transaction, OTLP records past the spool's bound or refused
// by the endpoint).
func (o *outputs) losses() map[string]uint64 {
	_, _, dropped := o.events.Stats()
	m := map[string]uint64{"output": dropped}
	if o.untrusted != nil {
		_, _, dropped := o.untrusted.Stats()
		m["output_untrusted"] = dropped
	}
	if o.floods != nil {
		_, _, dropped := o.floods.Stats()
		m["output_floods"] = dropped
	}
	if o.store != nil {
		m["output_store"] = o.store.Stats().Errors
		maps.Copy(m, o.storeQueue.Losses())
	}
	if o.otlp != nil {
		maps.Copy(m, o.otlp.Losses())
		maps.Copy(m, o.otlpQueue.Losses())
	}
	return m
}

// sinkOf names the output each of losses' kinds belongs to.
var sinkOf = func() map[string]string {
	m := map[string]string{"output": "jsonl", "output_untrusted": "untrusted_jsonl", "output_floods": "flood_jsonl",
		"output_store": "store", "sink_store": "store", "sink_otlp": "otlp"}
	for _, r := range otlp.DropReasons {
		m[otlp.LossKind(r)] = "otlp"
	}
	return m
}()

// sinkLost is losses per output (vigil_sink_lost_total): the store's full-queue drops and its
// failed writes together.
func (o *outputs) sinkLost() map[string]uint64 {
	m := map[string]uint64{}
	for kind, n := range o.losses() {
		m[sinkOf[kind]] += n
	}
	return m
}

// written is what the JSONL files really hold, and what they dropped.
func (o *outputs) written() (written, dropped uint64) {
	written, _, dropped = o.events.Stats()
	for _, f := range []*jsonl.Writer{o.untrusted, o.floods} {
		if f != nil {
			w, _, d := f.Stats()
			written, dropped = written+w, dropped+d
		}
	}
	return written, dropped
}

// floodLines is what the flood file took: the lines past their tree's budget.
func (o *outputs) floodLines() uint64 {
	if o.floods == nil {
		return 0
	}
	written, _, _ := o.floods.Stats()
	return written
}

// storeStats are the store's counters and the records its full queue dropped (zero without a
// store).
func (o *outputs) storeStats() (store.Stats, uint64) {
	if o.store == nil {
		return store.Stats{}, 0
	}
	return o.store.Stats(), o.storeQueue.Stats().Dropped
}

// close closes every output, even when one fails. The OTLP export gets its exporter's close
// timeout to send what it holds; the rest stays in its spool for the next run.
func (o *outputs) close() error {
	err := o.jsonl.Close()
	if o.store != nil {
		err = errors.Join(err, o.storeQueue.Close()) // writes what is queued, then closes the store
	}
	if o.otlp != nil {
		err = errors.Join(err, o.otlpQueue.Close()) // writes what is queued, then closes the exporter
	}
	return err
}
