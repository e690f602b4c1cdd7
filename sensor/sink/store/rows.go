package store

import (
	"fmt"
	"math"
	"time"

	segjson "github.com/segmentio/encoding/json"

	"github.com/vigil-sensor/vigil/proto"
)

// eventRow is one line as a row of event_rows, before its process and path are resolved to
// the ids of their deduplicated rows.
type eventRow struct {
	seq        uint64 // 0: the line has none
	timestamp  string
	action     string
	kind       string
	outcome    string
	errno      int
	tid        int
	exitCode   *int
	path       string
	access     string
	flags      string
	pathSource string
	destIP     string
	destPort   int
	destAddr   string
	sessionID  string
	promptID   string
	callID     string
	toolName   string
	binding    string
	confidence string
	bindsSeq   uint64
	recovered  bool
	source     string
	extra      []byte // nil: nothing beyond the columns
	// A merged open line's vigil.merged count, first and last (0 and "": not merged).
	mergedCount             uint64
	mergedFirst, mergedLast string

	hasProc bool
	proc    procRow
}

// procRow is a process as a line describes it: a row of processes. Identical descriptions
// (every line of a process between two of its execs) share one row.
type procRow struct {
	procKey
	args []string
}

// procKey is a process's description without its argv, comparable so that it can key the
// store's map of rows; the argv is compared apart, and encoded only for a row that is new.
type procKey struct {
	bootID, entityID                             string
	pid                                          int
	name, executable                             string
	argsCount                                    int
	cwd, sha256                                  string
	start                                        time.Time // UTC, formatted for a new row only
	hasStart                                     bool
	parentPid                                    int
	parentEntityID, parentExecutable, parentName string
	userID, userName, groupID                    string
	rootPid                                      int
	rootEntityID, agent                          string
}

func (p *procRow) key() procKey { return p.procKey }

// startText is the start column: process.start in proto.TimeLayout, NULL for none. It is
// formatted only for a new processes row, not for every line that names the process.
func (k *procKey) startText() any {
	if !k.hasStart {
		return nil
	}
	return k.start.Format(proto.TimeLayout)
}

// procEntry is a remembered processes row: its argv and id.
type procEntry struct {
	args []string
	id   int64
}

// extraLine holds the fields of a line that have no column, under their names on the line, so
// that json_extract(extra, '$.vigil.join.traceparent') reads what the JSONL calls
// vigil.join.traceparent. Left out: what a column or a record table holds, vigil.schema,
// event.category, .type and .dataset (fixed by the action) and host.name (runs.host_name).
type extraLine struct {
	Event *extraEvent `json:"event,omitempty"`
	// Host is the boot a line without a process was seen on (a process row holds it
	// otherwise): a tool-call or session alert.
	Host    *proto.Host    `json:"host,omitempty"`
	File    *extraFile     `json:"file,omitempty"`
	Network *proto.Network `json:"network,omitempty"`
	GenAI   *extraGenAI    `json:"gen_ai,omitempty"`
	// Rule, Tags and Threat are on detection alerts only (the alerts table has the rule's id,
	// name and severity as columns too).
	Rule   *proto.Rule   `json:"rule,omitempty"`
	Tags   []string      `json:"tags,omitempty"`
	Threat *proto.Threat `json:"threat,omitempty"`
	Vigil  *extraVigil   `json:"vigil,omitempty"`
}

// empty reports whether nothing is set, so that most kernel lines store NULL.
func (x *extraLine) empty() bool {
	return x.Event == nil && x.Host == nil && x.File == nil && x.Network == nil && x.GenAI == nil && x.Rule == nil &&
		len(x.Tags) == 0 && x.Threat == nil && x.Vigil == nil
}

// extraEvent is event.severity, on detection alerts.
type extraEvent struct {
	Severity int `json:"severity,omitempty"`
}

type extraFile struct {
	TargetPath string `json:"target_path,omitempty"`
	Mode       string `json:"mode,omitempty"`
	UID        string `json:"uid,omitempty"`
	GID        string `json:"gid,omitempty"`
	Size       *int64 `json:"size,omitempty"`
}

type extraGenAI struct {
	// Agent, Conversation and Tool are set on untrusted lines only: there they are claims,
	// which no column holds.
	Agent        *proto.GenAIAgent        `json:"agent,omitempty"`
	Conversation *proto.GenAIConversation `json:"conversation,omitempty"`
	Tool         *proto.GenAITool         `json:"tool,omitempty"`
	Request      *proto.GenAIRequest      `json:"request,omitempty"`
	Usage        *proto.GenAIUsage        `json:"usage,omitempty"`
}

type extraVigil struct {
	Join          *proto.JoinKeys   `json:"join,omitempty"`
	Truncated     []string          `json:"truncated,omitempty"`
	AddressSource string            `json:"address_source,omitempty"`
	Syscall       string            `json:"syscall,omitempty"`
	Rename        *proto.Rename     `json:"rename,omitempty"`
	Setid         bool              `json:"setid,omitempty"`
	Exe           *proto.Exe        `json:"exe,omitempty"`
	Merged        *extraMerged      `json:"merged,omitempty"`
	Lost          map[string]uint64 `json:"lost,omitempty"`
	Telemetry     *proto.Telemetry  `json:"telemetry,omitempty"`
	LateMs        int64             `json:"late_ms,omitempty"`
	// Prompt and Tool are set on untrusted lines only (claims); on trusted lines the prompts
	// and tool_calls tables hold them.
	Prompt *proto.PromptRef `json:"prompt,omitempty"`
	Tool   *proto.ToolCall  `json:"tool,omitempty"`
	// Alert is a detection alert's severity word, scope, triggering sequences and evidence.
	Alert *proto.Alert `json:"alert,omitempty"`
	// Root is the agent tree of a line without a process (a tool-call or session alert); a
	// process row holds it otherwise.
	Root *proto.Root `json:"root,omitempty"`
}

// extraMerged is what of vigil.merged has no column: the file's device and inode.
type extraMerged struct {
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
}

// empty reports whether nothing is set, so that most kernel lines store NULL.
func (v *extraVigil) empty() bool {
	return v.Join.Empty() && len(v.Truncated) == 0 && v.AddressSource == "" && v.Syscall == "" &&
		v.Rename == nil && !v.Setid && v.Exe == nil && v.Merged == nil && len(v.Lost) == 0 && v.Telemetry == nil &&
		v.LateMs == 0 && v.Prompt == nil && v.Tool == nil && v.Alert == nil && v.Root == nil
}

// rowOf maps a line to its row. What the kernel vouches for goes into columns; on untrusted
// telemetry (agent.untrusted_telemetry) only the time, the sender's pid and the transport do,
// and everything the sender claimed (agent, session, tool, command, prompt) stays in extra, so
// that no query on the binding columns ever returns a claim. stamp is the buffer the
// timestamp's text is made in, reused from line to line.
func rowOf(e *proto.Event, stamp *[]byte) (eventRow, error) {
	*stamp = proto.AppendTimeText((*stamp)[:0], e.Timestamp)
	untrusted := e.Event.Action == proto.ActionAgentUntrusted
	r := eventRow{
		seq:        e.Event.Sequence,
		timestamp:  string(*stamp),
		action:     e.Event.Action,
		kind:       e.Event.Kind,
		outcome:    e.Event.Outcome,
		errno:      e.Vigil.Errno,
		pathSource: e.Vigil.PathSource,
		recovered:  e.Vigil.Recovered,
		source:     e.Vigil.Source,
	}
	var x extraLine
	v := extraVigil{
		Join: e.Vigil.Join, Truncated: e.Vigil.Truncated, AddressSource: e.Vigil.AddressSource,
		Syscall: e.Vigil.Syscall, Rename: e.Vigil.Rename, Setid: e.Vigil.Setid, Exe: e.Vigil.Exe,
		Lost: e.Vigil.Lost, Telemetry: e.Vigil.Telemetry, LateMs: e.Vigil.LateMs, Alert: e.Vigil.Alert,
	}
	if m := e.Vigil.Merged; m != nil {
		r.mergedCount, r.mergedFirst, r.mergedLast = m.Count, m.First, m.Last
		v.Merged = &extraMerged{Dev: m.Dev, Ino: m.Ino}
	}
	x.Rule, x.Tags, x.Threat = e.Rule, e.Tags, e.Threat
	if e.Event.Severity != 0 {
		x.Event = &extraEvent{Severity: e.Event.Severity}
	}
	if e.Event.Action == proto.ActionAlert {
		// An alert's copy of its call (command, decision) is what the rule saw when it fired;
		// the tool_calls row may say more later.
		v.Tool = e.Vigil.Tool
	}
	if e.Process == nil && !untrusted {
		v.Root = e.Vigil.Root
		if e.Host != nil && e.Host.BootID != "" {
			x.Host = &proto.Host{BootID: e.Host.BootID}
		}
	}
	if p := e.Process; p != nil {
		r.hasProc = true
		r.exitCode = p.ExitCode
		if p.Thread != nil {
			r.tid = p.Thread.ID
		}
		r.proc = procRow{procKey: procKey{entityID: p.EntityID, pid: p.Pid, name: p.Name, executable: p.Executable,
			argsCount: p.ArgsCount, cwd: p.WorkingDirectory}, args: p.Args}
		if p.Hash != nil {
			r.proc.sha256 = p.Hash.SHA256
		}
		if p.Start != nil {
			r.proc.start, r.proc.hasStart = p.Start.UTC(), true
		}
		if pp := p.Parent; pp != nil {
			r.proc.parentPid, r.proc.parentEntityID, r.proc.parentExecutable, r.proc.parentName = pp.Pid, pp.EntityID, pp.Executable, pp.Name
		}
		if e.Host != nil {
			r.proc.bootID = e.Host.BootID
		}
		if u := e.User; u != nil {
			r.proc.userID, r.proc.userName = u.ID, u.Name
			if u.Group != nil {
				r.proc.groupID = u.Group.ID
			}
		}
		if e.Vigil.Root != nil {
			r.proc.rootPid, r.proc.rootEntityID = e.Vigil.Root.Pid, e.Vigil.Root.EntityID
		}
	}
	if f := e.File; f != nil {
		r.path, r.access, r.flags = f.Path, f.Access, f.Flags
		if f.TargetPath != "" || f.Mode != "" || f.UID != "" || f.GID != "" || f.Size != nil {
			x.File = &extraFile{TargetPath: f.TargetPath, Mode: f.Mode, UID: f.UID, GID: f.GID, Size: f.Size}
		}
	}
	if d := e.Destination; d != nil {
		r.destIP, r.destPort, r.destAddr = d.IP, d.Port, d.Address
	}
	if e.Network != nil && *e.Network != (proto.Network{}) {
		x.Network = e.Network
	}
	var g extraGenAI
	if a := e.GenAI; a != nil {
		g.Request, g.Usage = a.Request, a.Usage
		if untrusted {
			g.Agent, g.Conversation, g.Tool = a.Agent, a.Conversation, a.Tool
		} else {
			if e.Process == nil {
				g.Agent = a.Agent // no process row to hold it
			}
			if a.Agent != nil {
				r.proc.agent = a.Agent.Name
			}
			if a.Conversation != nil {
				r.sessionID = a.Conversation.ID
			}
			if a.Tool != nil {
				r.toolName = a.Tool.Name
				if a.Tool.Call != nil {
					r.callID = a.Tool.Call.ID
				}
			}
		}
	}
	if untrusted {
		v.Prompt, v.Tool = e.Vigil.Prompt, e.Vigil.Tool
	} else {
		// The prompt's text and the call's details live in the prompts and tool_calls tables.
		if e.Vigil.Prompt != nil {
			r.promptID = e.Vigil.Prompt.ID
		}
		r.binding, r.confidence = e.Vigil.Binding, e.Vigil.Confidence
	}
	if e.Vigil.Binds != nil {
		r.bindsSeq = e.Vigil.Binds.Sequence
	}
	if g != (extraGenAI{}) {
		x.GenAI = &g
	}
	if !v.empty() {
		x.Vigil = &v
	}
	if !x.empty() {
		b, err := segjson.Append(nil, &x, segjson.SortMapKeys)
		if err != nil {
			return eventRow{}, fmt.Errorf("encode extra fields: %w", err)
		}
		r.extra = b
	}
	return r, nil
}

// jsonStrings is a JSON array of ss, "" for none.
func jsonStrings(ss []string) (string, error) {
	if len(ss) == 0 {
		return "", nil
	}
	b, err := segjson.Append(nil, ss, 0)
	return string(b), err
}

// Column values: absent is NULL, never "" or 0, so that IS NULL means "the line had none".

func text(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func integer(n int) any {
	if n == 0 {
		return nil
	}
	return int64(n)
}

// unsigned is n as an SQLite integer; a value past int64 (never written by Vigil: sequence
// numbers count lines) is stored as NULL rather than wrapped into a wrong number.
func unsigned(n uint64) any {
	if n == 0 || n > math.MaxInt64 {
		return nil
	}
	return int64(n)
}

func intPtr(p *int) any {
	if p == nil {
		return nil
	}
	return int64(*p)
}

func boolean(b bool) any {
	if !b {
		return nil
	}
	return int64(1)
}

func blobText(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}
