// Package sensor is Vigil's platform-neutral core: the agent catalog (which binaries root a
// tracked tree), the process table that enriches kernel events, redaction, and the pipeline
// that connects a platform Source to the sinks. It never imports a platform package or the
// correlator; they implement the small interfaces defined here.
package sensor

import (
	"context"
	"net/netip"
	"time"

	"github.com/vigil-sensor/vigil/proto"
)

// Source streams kernel events of tracked agent process trees (eBPF, audit, EndpointSecurity).
type Source interface {
	// Name is the mechanism, written to vigil.source: "ebpf", "audit", "endpointsecurity".
	Name() string
	// Run streams events to emit until ctx is cancelled, then returns after the last one.
	// emit is called from one goroutine and may block; a source must count what it cannot
	// deliver instead of dropping it silently.
	Run(ctx context.Context, emit func(*proto.Event)) error
	// Lost returns cumulative counts of events the source could not deliver, per kind
	// (exec, fork, exit, open, connect, ...). The pipeline turns increases into lost records.
	Lost() map[string]uint64
	// Started is what the source found while it started, before Run.
	Started() Started
	// Close detaches the source from the kernel and undoes what it changed there.
	Close() error
}

// Started is what a source found at start: the agent trees already running, this boot's
// identity, how long loading took, and how to find the sender of a telemetry connection.
type Started struct {
	// Seeded are the processes of agent trees running before the source attached (a
	// bootstrap walk), to seed the process table.
	Seeded []ProcessInfo
	// BootID names this boot of the host: with a pid and a start time it makes process
	// identities unique (EntityID).
	BootID string
	// Ready is the time from the source's start to its probes attached and bootstrap done.
	Ready time.Duration
	// Peers maps a loopback telemetry connection to its sender; nil where the platform
	// cannot, and then no sender is trusted by its process.
	Peers PeerResolver
}

// RingSource is a Source reading a kernel ring buffer (eBPF's) whose fill can be read at any
// time: a ring that stays near full is where kernel loss comes from next.
type RingSource interface {
	Source
	// Ring returns the bytes the kernel wrote and the reader has not read yet, and the
	// ring's size in bytes.
	Ring() (pending, size int)
}

// MergingSource is a Source that merges repeated events in the kernel (the eBPF source's
// opens). BumpMergeEpoch ends every merge run: the correlator calls it at each tool-call
// boundary it learns, so that no merged record spans two tool calls. Safe from any goroutine.
type MergingSource interface {
	Source
	BumpMergeEpoch() error
}

// PeerResolver maps a loopback TCP connection to the pid owning its client socket: local is
// the receiver's end, remote the client's. The correlator asks it who sent telemetry.
type PeerResolver interface {
	PidOf(local, remote netip.AddrPort) (int, error)
}

// Stage sits between the process table and the sinks. It may hold kernel events (the
// correlator waits for telemetry that arrives seconds later) and may add records of its own
// (agent events). Push and Release are called from the pipeline's goroutine.
type Stage interface {
	// Push takes a kernel event; full asks the caller to call Release now, because the stage
	// holds more than it should until the next periodic release.
	Push(e *proto.Event) (full bool)
	// Release returns the records ready to write at now; all releases everything (shutdown).
	// Every pushed event is released exactly once, in the order it was pushed, among the
	// stage's own records (a HoldJournal counts what was written by that order).
	// The caller writes every returned record, which sets its event.sequence, before it calls
	// Release again: a stage may read the sequence of what it released from then on (a
	// binding record names the line it binds by it). Records are not modified once written.
	Release(now time.Time, all bool) []*proto.Event
}

// HoldJournal keeps on disk the kernel events handed to the Stage until they are written, so
// that a sensor killed while the Stage holds them (SIGKILL, the OOM killer) writes them at its
// next start instead of losing them without a trace. Its methods are called from the
// pipeline's goroutine.
type HoldJournal interface {
	// Recovered returns what earlier runs handed to their Stage and never wrote, and how many
	// more they lost (records cut off by the kill or past the recovery bound).
	Recovered() ([]*proto.Event, uint64)
	// ForgetRecovered is called once the recovered records are written and flushed.
	ForgetRecovered() error
	// Add keeps a copy of e, the next event handed to the Stage.
	Add(e *proto.Event) error
	// Commit says the first written events added have been written and flushed by every sink,
	// and makes everything added so far survive the process's death.
	Commit(written uint64) error
}

// Detector watches every record the pipeline writes (detection rules) and returns the alerts
// a record raises. It is called from the pipeline's goroutine right after the record is
// numbered and handed to the sinks, so it sees records in write order with their
// event.sequence; the pipeline writes the alerts (numbered) at once, before the next record.
// Alert records (event.kind alert) are never observed: an alert does not raise alerts.
type Detector interface {
	Observe(e *proto.Event) []*proto.Event
}

// Sink writes finished records (JSONL, the embedded store, OTLP export).
type Sink interface {
	Write(e *proto.Event) error
	Flush() error
	Close() error
}

// LineSink is a Sink that takes a record's JSON line as the pipeline encoded it once for all
// sinks (proto.AppendLine: the line limit applied, newline included) instead of encoding it
// again. line is only valid during the call.
type LineSink interface {
	Sink
	WriteLine(e *proto.Event, line []byte) error
}

// RecordKeeper is a Sink that may take WriteLine but keeps records, not lines (the queue in
// front of the store): it reports so, and with compact lines on the pipeline hands it every
// record whole, through Write.
type RecordKeeper interface {
	Sink
	KeepsRecords() bool
}

// LineEncoder is a Sink that writes lines it encodes itself, in a format of its own
// (format.OCSF): with compact lines on, the pipeline gives it the compact view of a record,
// as it gives a LineSink the compact line. Every other plain Sink (the store) keeps records,
// and gets them whole.
type LineEncoder interface {
	Sink
	EncodesLines()
}

// ProcessInfo is what a source knows about a process that was already running when the
// sensor started (the /proc bootstrap), used to seed the process table.
type ProcessInfo struct {
	Pid         int
	PPid        int
	StartBootNs uint64 // start time since boot, in ns (clock-tick resolution from /proc)
	Name        string // comm
	Executable  string
	Args        []string
	Cwd         string
	UID         int
	GID         int
	RootPid     int    // agent root of the tree this process belongs to
	Agent       string // catalog name of that agent
	// EntityID is set by ProcessTable.Lookup: the process's stable identity (see EntityID).
	// Seed ignores it and computes its own.
	EntityID string
	// Exited is set by ProcessTable.Lookup for a process that has exited but is still
	// remembered (its late telemetry and children's events need it).
	Exited bool

	// The fields below are filled by ProcessTable.Lookup only (a /proc seed has no history).

	// Join holds the join keys the kernel read from the current image's environment at exec.
	Join *proto.JoinKeys
	// ForkSeen: the table saw this process forked from a known parent, so Execs is its whole
	// exec history. False for a process seeded from /proc or first seen mid-life.
	ForkSeen bool
	// Execs are the execs this process made since its fork, oldest first, the current image
	// last; at most MaxExecHistory (ExecsTruncated says older ones were dropped).
	Execs          []ExecRecord
	ExecsTruncated bool
}

// MaxExecHistory bounds the execs remembered per process. A Codex tool shell makes three in
// one pid (process setup, wrapper shell, command shell); a hook at most two (shell, command).
const MaxExecHistory = 4

// ExecRecord is one successful exec as the kernel reported it. Args and Join are shared with
// the process table and must not be modified.
type ExecRecord struct {
	Executable string
	Args       []string
	Join       *proto.JoinKeys // nil when the exec carried none
}
