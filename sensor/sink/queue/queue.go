// Package queue puts a bounded queue and a goroutine of its own in front of a secondary sink
// (the embedded store, an OTLP exporter), so that a slow or stuck one never holds up the
// pipeline: what its full queue cannot take is counted as that sink's drop, never as kernel
// loss. The primary output (the JSONL file) is written directly, with the pipeline's
// back-pressure: it is the record, and must not drop because it is slow.
package queue

import (
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
)

// DefaultSize is the records a queue holds when Options.Size is 0: at the pipeline's full
// rate (~300k records/s) about 30 ms of stall, and about 16 MiB of records at worst.
const DefaultSize = 8192

// Options configure a Sink.
type Options struct {
	// Name names the sink in logs and in its loss kind (sink_<name>).
	Name string
	// Size bounds the queue, in records; 0 means DefaultSize.
	Size int
	Log  zerolog.Logger
}

// Stats are a queue's counters.
type Stats struct {
	Written uint64 // records the inner sink accepted
	Dropped uint64 // records the full queue could not take
	Errors  uint64 // records (or flushes) the inner sink failed
}

// Sink is a sensor.LineSink that hands records to its inner sink on a goroutine of its own.
type Sink struct {
	inner sensor.Sink
	lines sensor.LineSink // inner, when it takes encoded lines
	o     Options
	items chan item
	done  chan struct{}

	closeOnce sync.Once
	written   atomic.Uint64
	dropped   atomic.Uint64
	errors    atomic.Uint64
}

// item is one record, or a request to flush.
type item struct {
	e     *proto.Event
	line  []byte
	flush bool
}

// New starts the goroutine writing to inner; Close stops it and closes inner.
func New(inner sensor.Sink, o Options) *Sink {
	if o.Size <= 0 {
		o.Size = DefaultSize
	}
	s := &Sink{inner: inner, o: o, items: make(chan item, o.Size), done: make(chan struct{})}
	s.lines, _ = inner.(sensor.LineSink)
	go s.run()
	return s
}

// KeepsRecords reports whether the inner sink keeps records rather than lines (the store):
// then the pipeline gives it whole records, never compact ones (sensor.RecordKeeper). A sink
// that takes the native line, or encodes lines of its own (the OCSF export), writes lines.
func (s *Sink) KeepsRecords() bool {
	_, encodes := s.inner.(sensor.LineEncoder)
	return s.lines == nil && !encodes
}

// Write queues e, or counts it dropped when the queue is full. The pipeline does not modify
// a record once written, so the inner sink may read it later.
func (s *Sink) Write(e *proto.Event) error {
	s.put(item{e: e})
	return nil
}

// WriteLine queues e with a copy of its encoded line when the inner sink takes lines.
func (s *Sink) WriteLine(e *proto.Event, line []byte) error {
	it := item{e: e}
	if s.lines != nil {
		it.line = append([]byte(nil), line...)
	}
	s.put(it)
	return nil
}

func (s *Sink) put(it item) {
	select {
	case s.items <- it:
	default:
		if n := s.dropped.Add(1); n == 1 || n%10000 == 0 {
			s.o.Log.Warn().Str("sink", s.o.Name).Uint64("dropped", n).Msg("sink queue full: records dropped for this sink only")
		}
	}
}

// Flush asks the goroutine to flush the inner sink; it does not wait. When the queue is full
// the request is skipped: the goroutine flushes on its own whenever it has caught up.
func (s *Sink) Flush() error {
	select {
	case s.items <- item{flush: true}:
	default:
	}
	return nil
}

// Close writes what is queued, flushes and closes the inner sink.
func (s *Sink) Close() error {
	s.closeOnce.Do(func() { close(s.items) })
	<-s.done
	return s.inner.Close()
}

// Stats returns the counters.
func (s *Sink) Stats() Stats {
	return Stats{Written: s.written.Load(), Dropped: s.dropped.Load(), Errors: s.errors.Load()}
}

// Losses is the drop counter as a loss kind for the pipeline's lost records.
func (s *Sink) Losses() map[string]uint64 {
	return map[string]uint64{"sink_" + s.o.Name: s.dropped.Load()}
}

// run writes queued records, flushing when asked and whenever it has caught up, so that a
// record waits in the inner sink's batch no longer than the queue takes to drain.
func (s *Sink) run() {
	defer close(s.done)
	dirty := false
	for it := range s.items {
		switch {
		case it.flush:
			s.flush()
			dirty = false
		default:
			var err error
			if it.line != nil {
				err = s.lines.WriteLine(it.e, it.line)
			} else {
				err = s.inner.Write(it.e)
			}
			s.count(err, "write")
			dirty = true
		}
		if dirty && len(s.items) == 0 {
			s.flush()
			dirty = false
		}
	}
	s.flush()
}

func (s *Sink) flush() {
	s.count(s.inner.Flush(), "flush")
}

// count tallies one write or flush; the first error and every 1000th are logged.
func (s *Sink) count(err error, step string) {
	if err == nil {
		if step == "write" {
			s.written.Add(1)
		}
		return
	}
	if n := s.errors.Add(1); n == 1 || n%1000 == 0 {
		s.o.Log.Error().Err(err).Str("sink", s.o.Name).Uint64("errors", n).Msg("sink " + step + " failed")
	}
}
