package workflow

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigil-sensor/vigil/correlate/rules"
	"github.com/vigil-sensor/vigil/correlate/startup"
	"github.com/vigil-sensor/vigil/proto"
)

// kernelDataset is event.dataset of the sensor's kernel lines.
const kernelDataset = "vigil.kernel"

// Build groups correlated events (as vigil run writes them, in any order) into one
// Workflow per session, then one per agent tree that no session was bound to, then one for
// untrusted telemetry claiming no present session. Sessions and trees are ordered by start.
//
// A kernel line goes to its gen_ai.conversation.id; without one, to the session of its
// prompt or tool call id, else to the session bound to its root pid (the latest one started
// by then), else to its root's unattributed workflow. Within a workflow a kernel line is
// bound to its gen_ai.tool.call.id unless vigil.binding is none.
//
// The correlator's records are read as such: a binding record re-attributes the kernel line it
// names (events must be in write order for that, as vigil run writes them: sequences restart
// with every run), a session record places its root's tree in its session from its time on
// (a root with session records is never placed by its kernel lines), prompt and tool-call
// records make the prompts and calls. events is not modified.
//
// Kernel lines are classified in write order, before anything is sorted by time: a start-up
// read (correlate/startup) that is not a secret read is counted in its activity's StartupReads
// instead of listed, and File.Secret marks the secret reads (rules.SecretReads), as the alerts
// count them.
func Build(events []*proto.Event, opts Options) []Workflow {
	out, _ := BuildStats(events, opts)
	return out
}

// BuildStats is Build, also saying what it had to forget to stay within opts.MaxProcesses.
func BuildStats(events []*proto.Event, opts Options) ([]Workflow, Stats) {
	evs := applyBindings(events)
	classes, stats := classify(evs, opts.MaxProcesses)
	slices.SortStableFunc(evs, func(a, b *proto.Event) int { return a.Timestamp.Compare(b.Timestamp) })

	// Pass 1: which session each root, prompt and call belongs to.
	type rootSession struct {
		id    string
		since time.Time
	}
	rootSessions := map[int][]rootSession{}
	addRoot := func(pid int, sid string, since time.Time) {
		if pid > 0 && !slices.ContainsFunc(rootSessions[pid], func(r rootSession) bool { return r.id == sid }) {
			rootSessions[pid] = append(rootSessions[pid], rootSession{sid, since})
		}
	}
	recordRoots := map[int]bool{}
	for _, e := range evs {
		if r, ok := proto.SessionRecordOf(e); ok && r.SessionID != "" && r.Sender.RootPid > 0 {
			recordRoots[r.Sender.RootPid] = true
			addRoot(r.Sender.RootPid, r.SessionID, r.Time)
		}
	}
	promptSession := map[string]string{}
	callSession := map[string]string{}
	for _, e := range evs {
		if isUntrusted(e) || e.Event.Action == proto.ActionLost {
			continue
		}
		sid := conversationID(e)
		if sid == "" {
			continue
		}
		if pid := rootPid(e); !recordRoots[pid] {
			addRoot(pid, sid, e.Timestamp)
		}
		if id := promptID(e); id != "" {
			promptSession[id] = sid
		}
		if id := callID(e); id != "" {
			callSession[id] = sid
		}
	}

	// Pass 2: every line to its workflow.
	type group struct {
		kind, sid string
		root      int
		evs       []*proto.Event
	}
	var groups []*group
	sessions := map[string]*group{}
	trees := map[string]*group{}
	var untrusted, lost []*proto.Event
	for _, e := range evs {
		switch {
		case isUntrusted(e):
			untrusted = append(untrusted, e)
			continue
		case e.Event.Action == proto.ActionLost:
			lost = append(lost, e)
			continue
		}
		sid := conversationID(e)
		if sid == "" {
			sid = promptSession[promptID(e)]
		}
		if sid == "" {
			sid = callSession[callID(e)]
		}
		root := rootPid(e)
		if sid == "" && root > 0 {
			if rs := rootSessions[root]; len(rs) > 0 {
				sid = rs[0].id
				for _, r := range rs[1:] {
					if !r.since.After(e.Timestamp) {
						sid = r.id
					}
				}
			}
		}
		var g *group
		switch {
		case sid != "":
			if g = sessions[sid]; g == nil {
				g = &group{kind: KindSession, sid: sid}
				sessions[sid] = g
				groups = append(groups, g)
			}
		case root > 0:
			key := treeKey(e)
			if g = trees[key]; g == nil {
				g = &group{kind: KindUnattributed, root: root}
				trees[key] = g
				groups = append(groups, g)
			}
		default:
			continue
		}
		g.evs = append(g.evs, e)
	}

	match := sessionMatcher(opts.SessionID, sessions)
	repos := map[string]string{}
	var out []Workflow
	for _, g := range groups {
		if opts.SessionID != "" && (g.kind != KindSession || !match(g.sid)) {
			continue
		}
		w := assemble(g.kind, g.sid, g.evs, classes)
		if g.kind == KindUnattributed {
			w.Title = fmt.Sprintf("Unattributed %s tree (root pid %d)", cmp.Or(w.Agent, "agent"), g.root)
		}
		if opts.RepoOf != nil && w.WorkingDirectory != "" {
			repo, ok := repos[w.WorkingDirectory]
			if !ok {
				repo = opts.RepoOf(w.WorkingDirectory)
				repos[w.WorkingDirectory] = repo
			}
			w.Repository = repo
		}
		out = append(out, w)
	}
	slices.SortStableFunc(out, func(a, b Workflow) int {
		return cmp.Or(cmp.Compare(kindRank(a.Kind), kindRank(b.Kind)), a.Start.Compare(b.Start),
			cmp.Compare(a.SessionID, b.SessionID))
	})

	// Untrusted lines: to the session they claim when it is here, else to one last workflow.
	orphans := Workflow{Kind: KindUntrusted, Title: "Untrusted telemetry (senders outside every agent tree)"}
	for _, e := range untrusted {
		u := untrustedOf(e)
		i := slices.IndexFunc(out, func(w Workflow) bool {
			return w.Kind == KindSession && u.ClaimedSessionID != "" && w.SessionID == u.ClaimedSessionID
		})
		switch {
		case i >= 0:
			out[i].UntrustedTelemetry = append(out[i].UntrustedTelemetry, u)
		case sessions[u.ClaimedSessionID] != nil:
			// The claimed session exists but was filtered out.
		case opts.SessionID == "" || (u.ClaimedSessionID != "" && strings.HasPrefix(u.ClaimedSessionID, opts.SessionID)):
			orphans.UntrustedTelemetry = append(orphans.UntrustedTelemetry, u)
			orphans.Start, orphans.End = span(orphans.Start, orphans.End, u.Time)
		}
	}
	if len(orphans.UntrustedTelemetry) > 0 {
		out = append(out, normalize(orphans))
	}

	// Loss reports count what was lost since the previous report: (prev, t].
	var prev time.Time
	for _, e := range lost {
		for i := range out {
			w := &out[i]
			if w.Kind == KindUntrusted || e.Timestamp.Before(w.Start) || (!prev.IsZero() && !prev.Before(w.End)) {
				continue
			}
			for k, n := range e.Vigil.Lost {
				if n == 0 {
					continue
				}
				if w.Lost == nil {
					w.Lost = map[string]uint64{}
				}
				w.Lost[k] += n
			}
		}
		prev = e.Timestamp
	}
	return out, stats
}

// lineClass is what classify decided of one kernel open.
type lineClass struct {
	// startup is the kind of start-up read the open is, "" when it is none or a secret read.
	startup startup.Kind
	// exec is the time of the exec of the image that made the open, zero when not seen.
	exec time.Time
	// secret: a secret read (rules.SecretReads).
	secret bool
}

// classify follows the kernel lines of evs, which are in write order (the order the trackers
// are defined on: the kernel's order for one process, not time order), and returns the class of
// each open that is a start-up or a secret read.
func classify(evs []*proto.Event, maxProcesses int) (map[*proto.Event]lineClass, Stats) {
	if maxProcesses <= 0 {
		maxProcesses = DefaultMaxProcesses
	}
	tracker := startup.New(maxProcesses)
	secrets := rules.NewSecretReads(maxProcesses)
	execs := map[string]time.Time{} // entity id → its current image's exec
	out := map[*proto.Event]lineClass{}
	for _, e := range evs {
		if e.Event.Dataset != kernelDataset || e.Process == nil {
			continue
		}
		kind := tracker.Observe(e)
		secret := secrets.Observe(e)
		switch e.Event.Action {
		case proto.ActionExec:
			if e.Event.Outcome != proto.OutcomeFailure {
				execs[e.Process.EntityID] = e.Timestamp
			}
		case proto.ActionExit:
			delete(execs, e.Process.EntityID)
		case proto.ActionOpen:
			switch {
			case secret:
				out[e] = lineClass{secret: true}
			case kind != "":
				out[e] = lineClass{startup: kind, exec: execs[e.Process.EntityID]}
			}
		}
	}
	return out, Stats{ProcessesForgotten: tracker.Stats().Evicted}
}

func kindRank(kind string) int {
	switch kind {
	case KindSession:
		return 0
	case KindUnattributed:
		return 1
	}
	return 2
}

// sessionMatcher: the exact id when present, else every id with the prefix.
func sessionMatcher[V any](want string, sessions map[string]V) func(string) bool {
	if _, ok := sessions[want]; ok {
		return func(id string) bool { return id == want }
	}
	return func(id string) bool { return strings.HasPrefix(id, want) }
}

// applyBindings returns the non-nil events without binding records, each kernel line named by
// one replaced by a copy with the record applied (proto.BindingRecord.Apply; later records
// win). A record names its line by event.sequence, which restarts at 1 with every sensor
// run: events are in write order and a record always follows its line in the same run, so a
// sequence that does not increase starts a new run. Records whose line is not in the input
// (an older, rotated file) are dropped.
func applyBindings(events []*proto.Event) []*proto.Event {
	out := make([]*proto.Event, 0, len(events))
	bySeq := map[uint64]int{} // sequence → index in out, this run
	var last uint64
	for _, e := range events {
		if e == nil {
			continue
		}
		if e.Event.Sequence <= last {
			clear(bySeq)
		}
		last = e.Event.Sequence
		r, ok := proto.BindingRecordOf(e)
		if !ok {
			bySeq[e.Event.Sequence] = len(out)
			out = append(out, e)
			continue
		}
		i, found := bySeq[r.Sequence]
		if !found {
			continue
		}
		line := *out[i]
		if line.GenAI != nil {
			g := *line.GenAI
			line.GenAI = &g
		}
		r.Apply(&line)
		out[i] = &line
	}
	return out
}
