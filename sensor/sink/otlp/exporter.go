// Package otlp exports Vigil's records as OpenTelemetry logs (OTLP over gRPC, HTTP/protobuf or
// HTTP/JSON) to a collector or a SIEM's OTLP intake, with a bounded spool on disk for when the
// endpoint is slow or down. Every record is one LogRecord whose body is the record's JSON line
// (docs/otlp-export.md).
//
// The exporter sits behind its own queue.Sink: Write, WriteLine and Flush only build batches
// and hand them on, never waiting on the network. A sender goroutine sends batches in order;
// when it is behind, or the endpoint is down, batches go to the spool, and new ones queue
// behind what is spooled so that the endpoint receives records in the order they were written.
// Every record the exporter cannot deliver is counted by reason (Losses), never dropped
// silently.
package otlp

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vigil-sensor/vigil/proto"
)

// readyBatches is how many sealed batches wait in memory for the sender before new ones go to
// the spool: enough to ride out one slow request without touching the disk.
const readyBatches = 4

// Reasons a record is lost, the keys of Stats.Dropped.
const (
	// DropSpoolFull: the spool was at its bound (the endpoint down or slower than the sensor
	// for long enough); the newest batches are the ones refused (spool.go says why).
	DropSpoolFull = "spool_full"
	// DropSpoolError: the spool could not be written (a disk error).
	DropSpoolError = "spool_error"
	// DropSpoolCorrupt: spooled batches that could not be read back (a torn write at a crash,
	// a damaged file).
	DropSpoolCorrupt = "spool_corrupt"
	// DropRejected: the endpoint refused the batch for good (HTTP 400, gRPC INVALID_ARGUMENT,
	// an authentication failure...).
	DropRejected = "rejected"
	// DropPartial: records the endpoint took the batch without (OTLP partial success).
	DropPartial = "partial"
	// DropClosed: records written after Close.
	DropClosed = "closed"
)

// DropReasons are every Drop* reason, the keys of Stats.Dropped.
var DropReasons = []string{DropSpoolFull, DropSpoolError, DropSpoolCorrupt, DropRejected, DropPartial, DropClosed}

// LossKind is the loss kind (Losses' key) of a drop reason.
func LossKind(reason string) string { return "otlp_" + reason }

// ErrClosed is returned (wrapped) by a Write after Close.
var ErrClosed = errors.New("otlp exporter closed")

// batch is records sent together.
type batch struct {
	data    []byte    // the records, each its length and its bytes as appendRecord made them
	count   int       // how many
	bytes   int       // what they take in a request, about (recordOverhead)
	attempt int       // how many times it was sent already
	first   time.Time // when its first record came
	spooled bool      // read from the spool: committed there once sent
}

// add appends one record's bytes.
func (b *batch) add(rec []byte) {
	b.data = protowire.AppendBytes(b.data, rec)
	b.count++
	b.bytes += len(rec) + recordOverhead
}

// each yields the batch's records' bytes (appendRecord's, without the attempt attribute).
func (b *batch) each() iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		data := b.data
		for len(data) > 0 {
			rec, n := protowire.ConsumeBytes(data)
			if n < 0 || !yield(rec) {
				return // n < 0: not for a batch built or checked here (checkRecords)
			}
			data = data[n:]
		}
	}
}

// Stats are the exporter's counters.
type Stats struct {
	// Sent are records the endpoint took (a partial success's rejected ones excluded).
	Sent uint64
	// Retried are records sent again after a failed try (each retry counts).
	Retried uint64
	// SpooledRecords and SpooledBytes are what the spool holds now.
	SpooledRecords uint64
	SpooledBytes   int64
	// Dropped are records lost, by reason (the Drop* constants).
	Dropped map[string]uint64
	// LastError is the last failed export's error ("" when none failed yet).
	LastError string
}

// Exporter is a sensor.LineSink sending records to an OTLP endpoint.
type Exporter struct {
	o   Options
	env envelope
	tr  transport
	sp  *spool

	mu      sync.Mutex // guards cur, n, scratch, last and closed, and orders hand-offs (see hand)
	cur     *batch
	n       uint64
	scratch []byte // the record being added
	last    int    // the data size of the last batch sealed, the next one's first capacity
	closed  bool

	ready  chan *batch   // sealed batches for the sender while the spool is empty
	wake   chan struct{} // a batch went to the spool
	stop   chan struct{} // closed by Close: send what is buffered, then return
	done   chan struct{} // closed when the sender has returned
	ctx    context.Context
	cancel context.CancelFunc // at Close's deadline: give up sending, spool the rest

	sent, retried atomic.Uint64
	dropped       map[string]*atomic.Uint64
	lastErr       atomic.Pointer[string]
}

// Open validates o, opens the spool (what a previous run left in it is sent first) and starts
// the sender. It does not connect: an endpoint that is down at start is retried like one that
// goes down later.
func Open(o Options) (*Exporter, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("open otlp exporter: %w", err)
	}
	env, err := newEnvelope(o)
	if err != nil {
		return nil, fmt.Errorf("open otlp exporter: %w", err)
	}
	sp, lost, err := openSpool(o.SpoolDir, o.SpoolMaxBytes)
	if err != nil {
		return nil, fmt.Errorf("open otlp exporter: %w", err)
	}
	tr, err := newTransport(o)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open otlp exporter: %w", err), sp.close())
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Exporter{
		o: o, env: env, tr: tr, sp: sp,
		ready: make(chan *batch, readyBatches), wake: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}),
		ctx: ctx, cancel: cancel,
		dropped: map[string]*atomic.Uint64{},
	}
	for _, r := range DropReasons {
		e.dropped[r] = new(atomic.Uint64)
	}
	if sp.cut > 0 {
		// A frame torn inside its header lost its count with it: the bytes cut say it happened.
		o.Log.Warn().Int64("bytes", sp.cut).Uint64("records", lost).Str("dir", o.SpoolDir).Msg("otlp: torn or damaged spool tail cut at start")
	}
	if lost > 0 {
		e.drop(DropSpoolCorrupt, lost, errors.New("torn spool tail cut at start"))
	}
	if recs, bytes := sp.size(); recs > 0 {
		o.Log.Info().Uint64("records", recs).Int64("bytes", bytes).Msg("otlp: sending what the spool kept from an earlier run first")
	}
	go e.run()
	return e, nil
}

// Write adds e, encoded as its JSON line, to the batch being built.
func (e *Exporter) Write(ev *proto.Event) error {
	line, err := proto.AppendLine(nil, ev)
	if err != nil {
		return fmt.Errorf("otlp write: %w", err)
	}
	return e.WriteLine(ev, line)
}

// WriteLine adds e with the line the pipeline encoded (copied: the line is only valid during
// the call) to the batch being built, and hands the batch on when it is full.
func (e *Exporter) WriteLine(ev *proto.Event, line []byte) error {
	now := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		e.drop(DropClosed, 1, nil)
		return fmt.Errorf("otlp write: %w", ErrClosed)
	}
	e.n++
	e.scratch = appendRecord(e.scratch[:0], ev, line, recordID(e.o.InstanceID, e.n), uint64(now.UnixNano()))
	if e.cur != nil && e.cur.bytes+len(e.scratch)+recordOverhead > e.o.MaxBatchBytes {
		e.sealLocked()
	}
	if e.cur == nil {
		e.cur = &batch{first: now, data: make([]byte, 0, max(e.last, 2*len(e.scratch)))}
	}
	e.cur.add(e.scratch)
	if e.cur.count >= e.o.MaxBatchRecords || e.cur.bytes >= e.o.MaxBatchBytes {
		e.sealLocked()
	}
	return nil
}

// Flush hands on the batch being built once its first record is MaxDelay old. The queue in
// front calls Flush whenever it has caught up, which at a low rate is after every record:
// sealing then would send one record per request. The sender seals an older batch on its own.
func (e *Exporter) Flush() error {
	e.sealOld(time.Now())
	return nil
}

func (e *Exporter) sealOld(now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cur != nil && now.Sub(e.cur.first) >= e.o.MaxDelay {
		e.sealLocked()
	}
}

func (e *Exporter) sealLocked() {
	b := e.cur
	e.cur = nil
	if b != nil {
		e.last = len(b.data)
		e.hand(b)
	}
}

// hand gives a sealed batch to the sender, or to the spool when the spool holds batches (it
// must go behind them) or the sender is behind. Called with mu held: a batch goes to ready
// only while the spool is empty, so whatever ready holds is older than whatever the spool
// holds, and the sender, which takes ready first, sends in order.
func (e *Exporter) hand(b *batch) {
	if e.sp.empty() {
		select {
		case e.ready <- b:
			return
		default:
		}
	}
	e.spoolBatch(b)
}

// spoolBatch appends b to the spool, counting its records dropped when it cannot.
func (e *Exporter) spoolBatch(b *batch) {
	err := e.sp.append(encodeBatch(b), b.count)
	switch {
	case errors.Is(err, errSpoolFull):
		e.drop(DropSpoolFull, uint64(b.count), err)
	case err != nil:
		e.drop(DropSpoolError, uint64(b.count), fmt.Errorf("spool batch: %w", err))
	default:
		select {
		case e.wake <- struct{}{}:
		default:
		}
	}
}

// drop counts n records lost for reason; the first loss of a reason, and then one each time
// its count passes a multiple of 10000, are logged with the error.
func (e *Exporter) drop(reason string, n uint64, err error) {
	c := e.dropped[reason]
	before := c.Load()
	after := c.Add(n)
	if before == 0 || before/10000 != after/10000 {
		ev := e.o.Log.Error().Str("sink", "otlp").Str("reason", reason).Uint64("dropped", after)
		if err != nil {
			ev = ev.Err(err)
		}
		ev.Msg("otlp: records dropped")
	}
}

// Close hands on the batch being built and lets the sender send what is buffered and spooled
// for up to CloseTimeout; what is still unsent then stays in (or goes to) the spool for the
// next run.
func (e *Exporter) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.sealLocked()
	e.mu.Unlock()
	close(e.stop)
	t := time.AfterFunc(e.o.CloseTimeout, e.cancel)
	<-e.done
	t.Stop()
	e.cancel()
	return errors.Join(e.sp.close(), e.tr.close())
}

// Stats returns the counters.
func (e *Exporter) Stats() Stats {
	s := Stats{Sent: e.sent.Load(), Retried: e.retried.Load(), Dropped: map[string]uint64{}}
	s.SpooledRecords, s.SpooledBytes = e.sp.size()
	for r, c := range e.dropped {
		s.Dropped[r] = c.Load()
	}
	if p := e.lastErr.Load(); p != nil {
		s.LastError = *p
	}
	return s
}

// Losses are the dropped records as loss kinds (otlp_<reason>) for the pipeline's lost records,
// in the shape queue.Sink's Losses has.
func (e *Exporter) Losses() map[string]uint64 {
	m := map[string]uint64{}
	for r, n := range maps.All(e.Stats().Dropped) {
		m[LossKind(r)] = n
	}
	return m
}
