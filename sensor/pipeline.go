package sensor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/proto/compact"
)

// PipelineOptions wire a source to the sinks.
type PipelineOptions struct {
	Source Source
	Table  *ProcessTable
	Sinks  []Sink
	// Host is written into every record.
	Host proto.Host
	// QueueSize bounds the events between the source's reader and the sinks. When it is full
	// the reader waits; the kernel's ring buffer then fills and counts what it cannot hold,
	// so loss stays visible instead of growing memory without bound.
	QueueSize int
	// FlushInterval bounds how long a written event may sit in a sink's buffer.
	FlushInterval time.Duration
	// LostInterval is how often the loss counters are checked for a lost record.
	LostInterval time.Duration
	// Stage, when set, receives every enriched kernel event instead of the sinks and is
	// asked every ReleaseInterval (or at once when Push reports it full) for what is ready
	// to write.
	Stage           Stage
	ReleaseInterval time.Duration
	// Journal, with a Stage, keeps what the Stage holds on disk until it is written; Run
	// first writes what an earlier, killed run left in it (vigil.recovered).
	Journal HoldJournal
	// Losses are loss counters besides the source's (e.g. undelivered hooks), cumulative per
	// kind like Source.Lost; their increases go into the same lost records.
	Losses []func() map[string]uint64
	// Detector, when set, sees every record written and its alerts are written after it.
	Detector Detector
	// Records are records made away from the pipeline's goroutine (the inventory scan reads
	// many files and must not stall it): each batch received is written as it is, in order,
	// and flushed.
	Records <-chan []*proto.Event
	// DrainTimeout bounds how long Run goes on writing after ctx is cancelled. What is still
	// queued then is counted, not written: one last lost record says how many (kind
	// "shutdown"). 0: 2 s.
	DrainTimeout time.Duration
	// Publish, when set, is called on the pipeline's goroutine every LostInterval, so that
	// state only that goroutine may read (the Detector's) can be copied for readers on other
	// goroutines (the metrics endpoint) without a lock on the per-event path.
	Publish func()
	// Flood, when set, marks the kernel lines past their agent tree's budget (vigil.flood,
	// route.Budget) before they are written, for a route.Split to send them apart.
	Flood FloodBudget
	// CompactScope, when set, turns on compact kernel lines (proto/compact) for the sinks
	// that write lines (LineSink, LineEncoder), and says before each line which file it goes
	// to (an index: the events file, the flood file) and that file's jsonl.Writer.Scope: at a
	// new generation every process states its context again in that file, so every file
	// reads alone; a line that may not fit the room left begins the next file, so it is
	// written whole. Sinks that keep records (the store) always get the whole event.
	CompactScope func(e *proto.Event) (file int, generation uint64, room int64)
	Log          zerolog.Logger
}

// FloodBudget is route.Budget: whether a line is past its agent tree's budget.
type FloodBudget interface {
	Over(e *proto.Event) bool
}

// drainBatch bounds the events Run takes from the queue between two looks at its other
// channels (tickers, records, the stop).
const drainBatch = 256

// PipelineStats are the pipeline's own counters.
type PipelineStats struct {
	Received   uint64 // events taken from the source
	Written    uint64 // records every sink accepted
	SinkErrors uint64 // failed sink writes or flushes (the sink counts its own detail)
	// Recovered counts the records an earlier run held and never wrote, written by this one
	// from the hold journal.
	Recovered uint64
	// Alerts counts the alert records the Detector raised.
	Alerts uint64
}

// Pipeline moves events from a Source through redaction and the process table to the sinks,
// numbering records and turning increases of the source's loss counters into lost records.
type Pipeline struct {
	o        PipelineOptions
	seq      uint64
	lastLost map[string]uint64
	// host is stamped on every record. It is shared by all of them, so it is read-only.
	host *proto.Host

	received, written, sinkErrors, recovered, alerts atomic.Uint64
	// actions counts the source's events per action; published the loss counters as last
	// reported (pipeline_stats.go).
	actions   actionCounters
	published publishedLoss
	// queue holds the events between the source's reader and Run's loop.
	queue chan *proto.Event
	// abandoned counts the events still queued when the drain ran out of time.
	abandoned uint64
	// line is the record being written, encoded once for the sinks that take lines.
	line []byte
	// compact leaves unchanged process context out of kernel lines, with a writer for each
	// file CompactScope names (empty: off).
	compact []compactFile
	// crashed counts what an earlier run lost beyond what its journal gave back.
	crashed uint64

	// staged are the events handed to the Stage and not yet written, oldest first from
	// stagedHead; stagedWritten counts those written, which is what the journal commits.
	staged        []*proto.Event
	stagedHead    int
	stagedWritten uint64
}

// NewPipeline checks the options and applies defaults.
func NewPipeline(o PipelineOptions) (*Pipeline, error) {
	if o.Source == nil || o.Table == nil || len(o.Sinks) == 0 {
		return nil, errors.New("pipeline needs a source, a process table and at least one sink")
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 1024
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 200 * time.Millisecond
	}
	if o.LostInterval <= 0 {
		o.LostInterval = time.Second
	}
	if o.ReleaseInterval <= 0 {
		o.ReleaseInterval = 100 * time.Millisecond
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 2 * time.Second
	}
	host := o.Host
	return &Pipeline{o: o, lastLost: map[string]uint64{}, host: &host, queue: make(chan *proto.Event, o.QueueSize)}, nil
}

// Stats returns a snapshot of the pipeline's counters.
func (p *Pipeline) Stats() PipelineStats {
	return PipelineStats{Received: p.received.Load(), Written: p.written.Load(), SinkErrors: p.sinkErrors.Load(), Recovered: p.recovered.Load(), Alerts: p.alerts.Load()}
}

// Run streams until ctx is cancelled and the source has returned, then writes what is
// queued, a final lost record if anything was lost since the last one, and flushes. Past
// DrainTimeout after the cancel, what is still queued is counted instead of written
// (lost kind "shutdown"), so a stop under a backlog loses nothing silently.
func (p *Pipeline) Run(ctx context.Context) error {
	if p.o.Journal != nil && p.o.Stage != nil {
		p.writeRecovered()
	}
	queue := p.queue
	srcErr := make(chan error, 1)
	go func() {
		defer close(queue)
		srcErr <- p.o.Source.Run(ctx, func(e *proto.Event) { queue <- e })
	}()

	flush := time.NewTicker(p.o.FlushInterval)
	defer flush.Stop()
	lost := time.NewTicker(p.o.LostInterval)
	defer lost.Stop()
	release := time.NewTicker(p.o.ReleaseInterval)
	defer release.Stop()
	stopping := ctx.Done()
	var drained <-chan time.Time
	for {
		select {
		case <-stopping:
			stopping, drained = nil, time.After(p.o.DrainTimeout)
		case <-drained:
			// Out of time: count the rest (the source closes the queue once its reader has
			// stopped), write what the stage holds, and say how many were not written.
			for range queue {
				p.abandoned++
			}
			p.release(true)
			p.reportLost()
			p.flush()
			return <-srcErr
		case e, ok := <-queue:
			if !ok {
				p.release(true)
				p.reportLost()
				p.flush()
				return <-srcErr
			}
			p.received.Add(1)
			p.process(e)
			// Take what else the reader queued without a select over every channel
			// (only this goroutine receives, so a non-empty queue cannot block), up to
			// drainBatch so the tickers and the stop are still seen under a flood.
			for n := 1; n < drainBatch && len(queue) > 0; n++ {
				p.received.Add(1)
				p.process(<-queue)
			}
			if len(queue) == 0 {
				p.flush()
			}
		case <-flush.C:
			p.flush()
		case <-lost.C:
			p.reportLost()
			if p.o.Publish != nil {
				p.o.Publish()
			}
		case <-release.C:
			p.release(false)
		case records := <-p.o.Records:
			for _, e := range records {
				p.write(e)
			}
			p.flush()
		}
	}
}

// writeRecovered writes what a killed run left in the journal, before anything of this run,
// and then lets the journal forget it. Its records keep the host (boot id) they were seen on.
func (p *Pipeline) writeRecovered() {
	events, lost := p.o.Journal.Recovered()
	for _, e := range events {
		e.Vigil.Recovered = true
		p.write(e)
	}
	p.recovered.Store(uint64(len(events)))
	p.crashed = lost
	if len(events) == 0 && lost == 0 {
		return
	}
	p.o.Log.Warn().Int("recovered", len(events)).Uint64("lost", lost).Msg("the previous run was killed while holding events: wrote them from its hold journal")
	p.flush()
	if err := p.o.Journal.ForgetRecovered(); err != nil {
		p.o.Log.Error().Err(err).Msg("hold journal: the recovered events are written but their segments stay; the next start writes them again")
	}
}

// release writes what the stage has ready.
func (p *Pipeline) release(all bool) {
	if p.o.Stage == nil {
		return
	}
	ready := p.o.Stage.Release(time.Now(), all)
	for _, e := range ready {
		p.write(e)
	}
	if len(ready) > 0 {
		p.flush()
	}
}

// process redacts, enriches and writes one kernel event. Redaction comes first, before the
// hold journal and every sink: proto.FitLine, which cuts long fields to a prefix to fit a
// line, only ever shortens redacted text, so its cut cannot expose part of a secret.
func (p *Pipeline) process(e *proto.Event) {
	p.actions.count(e)
	if e.Process != nil && len(e.Process.Args) > 0 {
		e.Process.Args = RedactArgs(e.Process.Args)
		if slices.Contains(e.Vigil.Truncated, "process.args") {
			last := len(e.Process.Args) - 1
			e.Process.Args[last] = RedactCutTail(e.Process.Args[last])
		}
	}
	p.o.Table.Apply(e)
	if e.Vigil.Source == "" {
		e.Vigil.Source = p.o.Source.Name()
	}
	if p.o.Stage != nil {
		e.Host = p.host // journalled with it, so a recovered line keeps its boot
		if p.o.Journal != nil {
			if err := p.o.Journal.Add(e); err != nil {
				p.sinkError("journal", err)
			}
			p.staged = append(p.staged, e)
		}
		if p.o.Stage.Push(e) {
			p.release(false)
		}
		return
	}
	p.write(e)
}

// write numbers a record, stamps the host and hands it to every sink, then to the Detector,
// whose alerts it writes the same way.
func (p *Pipeline) write(e *proto.Event) {
	p.seq++
	e.Event.Sequence = p.seq
	if !e.Vigil.Recovered { // a recovered record keeps the host (boot) it was seen on
		e.Host = p.host
	}
	if p.stagedHead < len(p.staged) && p.staged[p.stagedHead] == e {
		p.unstage()
	}
	e.Vigil.Schema = proto.SchemaVersion
	p.o.Table.Finish(e)
	if p.o.Flood != nil && p.o.Flood.Over(e) {
		e.Vigil.Flood = true
	}
	ok, encoded := true, false
	lineEvent := p.lineEvent(e)
	for _, s := range p.o.Sinks {
		ls := lineSinkOf(s)
		if ls == nil {
			record := e
			if _, encodes := s.(LineEncoder); encodes {
				record = lineEvent
			}
			if err := s.Write(record); err != nil {
				ok = false
				p.sinkError("write", err)
			}
			continue
		}
		// One encoding for every sink that takes lines (sensor.LineSink).
		if !encoded {
			var err error
			if p.line, err = proto.AppendLine(p.line[:0], lineEvent); err != nil {
				ok = false
				p.sinkError("encode", err)
				break
			}
			encoded = true
		}
		if err := ls.WriteLine(lineEvent, p.line); err != nil {
			ok = false
			p.sinkError("write", err)
		}
	}
	if ok {
		p.written.Add(1)
	}
	if p.o.Detector != nil && e.Event.Kind != proto.KindAlert {
		for _, a := range p.o.Detector.Observe(e) {
			p.alerts.Add(1)
			p.write(a)
		}
	}
}

// lineSinkOf is s as a sink that takes the shared line, or nil when it takes records through
// Write: a plain Sink, or a RecordKeeper in front of one (the store's queue), which must get
// every record whole, never a compact view.
func lineSinkOf(s Sink) LineSink {
	if rk, ok := s.(RecordKeeper); ok && rk.KeepsRecords() {
		return nil
	}
	ls, _ := s.(LineSink)
	return ls
}

// compactMargin is the room a file must have left for a line to be compact: a line may
// take proto.MaxLineBytes, and a signed file adds its chain field.
const compactMargin = 2 * proto.MaxLineBytes

// compactFile is the compact lines' state of one file: the contexts stated in it, since
// the generation it had when they were.
type compactFile struct {
	w   *compact.Writer
	gen uint64
}

// lineEvent is what the sinks that write lines get for e: with compact lines on, e or its
// compact view (proto/compact), as the file it goes to has stated its process's context.
func (p *Pipeline) lineEvent(e *proto.Event) *proto.Event {
	if p.o.CompactScope == nil {
		return e
	}
	file, gen, room := p.o.CompactScope(e)
	for len(p.compact) <= file {
		p.compact = append(p.compact, compactFile{w: compact.NewWriter(0)})
	}
	f := &p.compact[file]
	if gen != f.gen {
		f.w.Reset()
		f.gen = gen
	}
	if room < compactMargin {
		return e // may begin the next file, which must state its context
	}
	return f.w.Line(e)
}

// unstage notes that the oldest staged event is written.
func (p *Pipeline) unstage() {
	p.staged[p.stagedHead] = nil
	p.stagedHead++
	p.stagedWritten++
	// Move the rest to the front once the written half is large: amortised, each pointer is
	// copied about once.
	if p.stagedHead >= 1024 && p.stagedHead*2 >= len(p.staged) {
		n := copy(p.staged, p.staged[p.stagedHead:])
		clear(p.staged[n:]) // written events must not stay reachable
		p.staged, p.stagedHead = p.staged[:n], 0
	}
}

// flush flushes every sink, then tells the journal what is written (and that what it was
// given since the last flush must reach its file).
func (p *Pipeline) flush() {
	for _, s := range p.o.Sinks {
		if err := s.Flush(); err != nil {
			p.sinkError("flush", err)
		}
	}
	if p.o.Journal != nil {
		if err := p.o.Journal.Commit(p.stagedWritten); err != nil {
			p.sinkError("journal commit", err)
		}
	}
}

func (p *Pipeline) sinkError(step string, err error) {
	n := p.sinkErrors.Add(1)
	// A broken sink can fail on every event; log the first and then every 1000th.
	if n == 1 || n%1000 == 0 {
		p.o.Log.Error().Err(err).Uint64("sink_errors", n).Msg(fmt.Sprintf("sink %s failed", step))
	}
}

// reportLost writes a lost record with the increase of each loss counter since the last
// report, if any increased.
func (p *Pipeline) reportLost() {
	now := map[string]uint64{}
	for kind, n := range p.o.Source.Lost() {
		now[kind] = n
	}
	for _, counters := range p.o.Losses {
		for kind, n := range counters() {
			now[kind] += n
		}
	}
	if p.abandoned > 0 {
		now["shutdown"] = p.abandoned
	}
	if p.crashed > 0 {
		now["crash"] = p.crashed
	}
	delta := map[string]uint64{}
	for kind, n := range now {
		if n > p.lastLost[kind] {
			delta[kind] = n - p.lastLost[kind]
		}
		p.lastLost[kind] = n
	}
	p.published.mu.Lock()
	p.published.lost = maps.Clone(p.lastLost)
	p.published.mu.Unlock()
	if len(delta) == 0 {
		return
	}
	kinds := make([]string, 0, len(delta))
	for k := range delta {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	p.o.Log.Warn().Strs("kinds", kinds).Interface("lost", delta).Msg("events lost")
	p.write(&proto.Event{
		Timestamp: time.Now().UTC(),
		Event:     proto.EventMeta{Action: proto.ActionLost, Kind: "metric", Dataset: "vigil.sensor"},
		Vigil:     proto.Vigil{Lost: delta, Source: p.o.Source.Name()},
	})
}
