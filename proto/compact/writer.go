package compact

import "github.com/vigil-sensor/vigil/proto"

// DefaultMaxProcesses bounds the processes a Writer or Restorer remembers: the process
// table's default bound, so every process the sensor follows at once fits.
const DefaultMaxProcesses = 1 << 16

// Writer remembers the context each process stated in the file being written. Its methods
// are called from one goroutine (the pipeline's).
type Writer struct {
	stated map[string]context
	max    int
}

// view is a compact line's event and the groups it does not share with the full event, in
// one allocation. A new one for every line: sinks that queue lines (the OTLP export) keep
// the event until their goroutine has sent it.
type view struct {
	ev   proto.Event
	proc proto.Process
	user proto.User
	host proto.Host
	root proto.Root
}

// NewWriter returns a Writer that remembers at most max processes (DefaultMaxProcesses when
// max ≤ 0); past it, it starts over, so some processes state their context again.
func NewWriter(max int) *Writer {
	if max <= 0 {
		max = DefaultMaxProcesses
	}
	return &Writer{stated: map[string]context{}, max: max}
}

// Reset forgets every stated context: a new file begins, and each process's next line in it
// states its context again.
func (w *Writer) Reset() {
	clear(w.stated)
}

// Line returns what to encode for e: e itself when the line states its process's context
// (its first kernel line since Reset, an exec, or a line whose context changed), else a
// view of e without the unchanged context and with vigil.compact set, sharing e's memory.
// Neither is ever modified.
func (w *Writer) Line(e *proto.Event) *proto.Event {
	if !kernelProcessLine(e) {
		return e
	}
	id := e.Process.EntityID
	c := contextOf(e)
	if e.Event.Action == proto.ActionExit {
		defer delete(w.stated, id) // its last line: nothing of it is written after
	}
	if prev, ok := w.stated[id]; ok && e.Event.Action != proto.ActionExec && prev.equal(&c) {
		return compact(e)
	}
	if len(w.stated) >= w.max {
		w.Reset()
	}
	w.stated[id] = c
	return e
}

// compact makes the view: e's fields, less the context.
func compact(e *proto.Event) *proto.Event {
	v := &view{ev: *e}
	v.proc = proto.Process{Pid: e.Process.Pid, EntityID: e.Process.EntityID, Thread: e.Process.Thread,
		Name: e.Process.Name, ExitCode: e.Process.ExitCode, StartBootNs: e.Process.StartBootNs}
	v.ev.Process = &v.proc
	if e.User != nil {
		v.user = proto.User{ID: e.User.ID}
		v.ev.User = &v.user
	}
	if e.Host != nil {
		v.host = proto.Host{Name: e.Host.Name}
		v.ev.Host = &v.host
	}
	if e.Vigil.Root != nil {
		v.root = proto.Root{Pid: e.Vigil.Root.Pid}
		v.ev.Vigil.Root = &v.root
	}
	v.ev.Vigil.Compact = true
	return &v.ev
}
