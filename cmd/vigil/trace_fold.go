package main

import (
	"strconv"
	"strings"
	"time"

	"github.com/vigil-sensor/vigil/correlate/rules"
	"github.com/vigil-sensor/vigil/correlate/startup"
	"github.com/vigil-sensor/vigil/correlate/workflow"
	"github.com/vigil-sensor/vigil/proto"
)

// traceMaxProcesses bounds the processes the text rendering follows at once (start-up windows,
// scripts): far more than live at once in an agent session.
const traceMaxProcesses = 1 << 16

// The text rendering decides per kernel line what the workflow record decides per file, and
// carries its decision through workflow.Build in the line's path, so that each decision lands
// in the activity (tool call or unexplained) the line lands in, binding records applied:
//
//   - a start-up read (correlate/startup) that is not a secret read gets the path
//     "\x00start-up\x00<kind>\x00<entity id>\x00<exec time>": Build merges the process's reads of
//     one kind into one file whose Opens counts them, and the text shows one counted line per
//     process;
//   - a read of a secret-looking path that the alerts would not count as a secret read
//     (rules.SecretReads: failed, O_PATH, by the secret's own client) gets "\x00plain\x00" before
//     its path: shown, not flagged.
//
// No kernel path holds a NUL byte, so these names never collide with a file's.
const (
	markStartup = "\x00start-up\x00"
	markPlain   = "\x00plain\x00"
)

// textEvents returns the events the text rendering builds its workflows from (the input is
// not modified), the alert lines among them, and how many processes the start-up fold forgot
// to stay within maxProcesses.
func textEvents(events []*proto.Event, maxProcesses int) ([]*proto.Event, []traceAlert, uint64) {
	tracker := startup.New(maxProcesses)
	secrets := rules.NewSecretReads(maxProcesses)
	execs := map[string]time.Time{} // entity id → its image's exec
	out := make([]*proto.Event, 0, len(events))
	var alerts []traceAlert
	for _, e := range events {
		if e.Event.Action == proto.ActionAlert {
			alerts = append(alerts, alertOf(e))
		}
		if e.Event.Dataset != "vigil.kernel" || e.Process == nil {
			out = append(out, e)
			continue
		}
		kind := tracker.Observe(e)
		secret := secrets.Observe(e)
		switch {
		case e.Event.Action == proto.ActionExec && e.Event.Outcome != proto.OutcomeFailure:
			execs[e.Process.EntityID] = e.Timestamp
		case e.Event.Action == proto.ActionExit:
			delete(execs, e.Process.EntityID)
		case e.Event.Action != proto.ActionOpen || e.File == nil || secret || !listedAsRead(e.File):
		case kind != "":
			e = withPath(e, markStartup+string(kind)+"\x00"+e.Process.EntityID+"\x00"+execStamp(execs[e.Process.EntityID]))
		case rules.SecretLooking(e.File.Path):
			e = withPath(e, markPlain+e.File.Path)
		}
		out = append(out, e)
	}
	return out, alerts, tracker.Stats().Evicted
}

// listedAsRead: the open goes to the files read of the workflow record (workflow's writeAccess
// sends the others to the files written).
func listedAsRead(f *proto.File) bool {
	switch f.Access {
	case "write", "read_write":
		return false
	case "read":
		return true
	}
	return !strings.Contains(f.Flags, "O_WRONLY") && !strings.Contains(f.Flags, "O_RDWR")
}

func withPath(e *proto.Event, p string) *proto.Event {
	c, f := *e, *e.File
	f.Path = p
	c.File = &f
	return &c
}

// execStamp names an exec by its time, as workflow.Process has it; "" when it was not seen.
func execStamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixNano(), 10)
}

// startupRead is one process's start-up reads of one kind, as a file of the workflow record.
type startupRead struct {
	kind startup.Kind
	// proc is the process image: entity id and exec stamp.
	proc string
}

// startupOf decodes a start-up file's path.
func startupOf(p string) (startupRead, bool) {
	rest, ok := strings.CutPrefix(p, markStartup)
	if !ok {
		return startupRead{}, false
	}
	kind, proc, _ := strings.Cut(rest, "\x00")
	return startupRead{kind: startup.Kind(kind), proc: proc}, true
}

// procStamp is the start-up key of a process shown by its exec.
func procStamp(p workflow.Process) string {
	return p.EntityID + "\x00" + execStamp(p.Time)
}

// shownPath is the path a file of the record is shown under, and whether it is flagged as a
// secret read.
func shownPath(f workflow.File) (string, bool) {
	if p, ok := strings.CutPrefix(f.Path, markPlain); ok {
		return p, false
	}
	return f.Path, f.Secret
}

// startupFold is one process's start-up reads in one activity.
type startupFold struct {
	process string
	pid     int
	total   int
	byKind  map[startup.Kind]int
}

// counts says the reads in words: "23 (loader 3, locale 19, shell 1)".
func (f *startupFold) counts() string {
	parts := make([]string, 0, len(startup.Kinds))
	for _, k := range startup.Kinds {
		if n := f.byKind[k]; n > 0 {
			parts = append(parts, string(k)+" "+strconv.Itoa(n))
		}
	}
	return strconv.Itoa(f.total) + " (" + strings.Join(parts, ", ") + ")"
}

// startupFolds are the start-up reads of an activity's processes, in first-read order.
type startupFolds struct {
	order  []string
	byProc map[string]*startupFold
}

func foldStartup(files []workflow.File) *startupFolds {
	s := &startupFolds{byProc: map[string]*startupFold{}}
	for _, f := range files {
		r, ok := startupOf(f.Path)
		if !ok {
			continue
		}
		fold := s.byProc[r.proc]
		if fold == nil {
			fold = &startupFold{process: f.Process, pid: f.Pid, byKind: map[startup.Kind]int{}}
			s.byProc[r.proc] = fold
			s.order = append(s.order, r.proc)
		}
		fold.total += f.Opens
		fold.byKind[r.kind] += f.Opens
	}
	return s
}

// take returns the reads of the process image proc (procStamp) and removes them.
func (s *startupFolds) take(proc string) *startupFold {
	f := s.byProc[proc]
	delete(s.byProc, proc)
	return f
}

// rest returns the reads not taken.
func (s *startupFolds) rest() []*startupFold {
	var out []*startupFold
	for _, p := range s.order {
		if f := s.byProc[p]; f != nil {
			out = append(out, f)
		}
	}
	return out
}
