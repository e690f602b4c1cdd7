package darwin

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"

	// segmentio's decoder reads these lines twice as fast as encoding/json's (measured with
	// BenchmarkUnrelatedOpen), with the same API and semantics.
	json "github.com/segmentio/encoding/json"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor/agents"
)

// The JSON model of eslogger's lines, after es_message_t (eslogger(1): "Semantics, field names
// and optionality corresponds to the C counterparts"). Only the fields Vigil maps are
// declared; the rest (code signing, fds, entitlements, the env values) are skipped unread.
// Integers are typed: st_ino exceeds 2^53 on APFS system volumes, so nothing goes through
// float64. Fields a message version lacks are pointers or stay zero: seq_num (v2+),
// start_time (v3+), thread and global_seq_num (v4+).

// message is one line: the envelope, with its single event kept raw until the process is
// known to be in an agent tree (most lines are not, and their bodies are never decoded).
type message struct {
	SchemaVersion int       `json:"schema_version"`
	Version       int       `json:"version"`
	EventType     int       `json:"event_type"`
	Time          time.Time `json:"time"`
	SeqNum        *uint64   `json:"seq_num"`
	GlobalSeqNum  *uint64   `json:"global_seq_num"`
	Thread        *struct {
		ID uint64 `json:"thread_id"`
	} `json:"thread"`
	Process *process                   `json:"process"`
	Event   map[string]json.RawMessage `json:"event"`

	// kind is the event's key (exec, open, ...) and body its value.
	kind string
	body json.RawMessage
}

// process is es_process_t: the instigator of a message, a fork's child or an exec's new image.
type process struct {
	AuditToken auditToken `json:"audit_token"`
	// PPid is the current parent (launchd once the original parent has exited).
	PPid       int  `json:"ppid"`
	Executable file `json:"executable"`
	// StartTime is when the process was forked (a timeval: microseconds). An exec keeps it,
	// so (pid, start time) names one process across its execs, as on Linux.
	StartTime time.Time `json:"start_time"`
}

// file is es_file_t. A path longer than ES's buffer is cut and path_truncated set.
type file struct {
	Path          string    `json:"path"`
	PathTruncated bool      `json:"path_truncated"`
	Stat          *fileStat `json:"stat"`
}

// fileStat is the part of struct stat Vigil uses.
type fileStat struct {
	Dev   int64     `json:"st_dev"` // dev_t is an int32 on macOS
	Ino   uint64    `json:"st_ino"`
	Mode  uint32    `json:"st_mode"`
	Size  int64     `json:"st_size"`
	Ctime time.Time `json:"st_ctimespec"`
}

// auditToken is audit_token_t: the kernel's identity of a process at one moment.
type auditToken struct {
	Pid        int
	PidVersion uint32
	RUID, EUID uint32
	RGID, EGID uint32
	AUID       uint32
	ASID       int
}

// UnmarshalJSON accepts both encodings seen from eslogger: an object with named fields (macOS
// 15, macOS 26.5.1, 27 beta) and the raw audit_token_t.val array of eight integers (a macOS 26
// beta, July 2025), in the order libbsm's audit_token_to_* functions read it:
// [auid, euid, egid, ruid, rgid, pid, asid, pidversion]. null leaves the token zero.
func (t *auditToken) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		return nil
	case len(b) > 0 && b[0] == '[':
		var v []int64
		if err := json.Unmarshal(b, &v); err != nil {
			return fmt.Errorf("audit token array: %w", err)
		}
		if len(v) != 8 {
			return fmt.Errorf("audit token array of %d values, want 8", len(v))
		}
		for _, x := range v {
			if x < 0 || x > 1<<32-1 {
				return fmt.Errorf("audit token value %d out of range", x)
			}
		}
		*t = auditToken{AUID: uint32(v[0]), EUID: uint32(v[1]), EGID: uint32(v[2]), RUID: uint32(v[3]),
			RGID: uint32(v[4]), Pid: int(v[5]), ASID: int(v[6]), PidVersion: uint32(v[7])}
		return nil
	}
	var o struct {
		Pid        int    `json:"pid"`
		PidVersion uint32 `json:"pidversion"`
		RUID       uint32 `json:"ruid"`
		EUID       uint32 `json:"euid"`
		RGID       uint32 `json:"rgid"`
		EGID       uint32 `json:"egid"`
		AUID       uint32 `json:"auid"`
		ASID       int    `json:"asid"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return fmt.Errorf("audit token: %w", err)
	}
	*t = auditToken(o)
	return nil
}

// The event bodies Vigil maps, after es_event_*_t.
type (
	execBody struct {
		Target process     `json:"target"` // the new image
		Args   []string    `json:"args"`
		Env    envJoinKeys `json:"env"`
		Cwd    *file       `json:"cwd"`
		// DyldExecPath is the path execve was given, before symlinks were followed (v7+).
		DyldExecPath string `json:"dyld_exec_path"`
	}
	forkBody struct {
		Child process `json:"child"`
	}
	exitBody struct {
		Stat int32 `json:"stat"` // a wait(2) status, not an exit code
	}
	openBody struct {
		Fflag int32 `json:"fflag"` // the kernel's FREAD/FWRITE flags, not open(2)'s O_ACCMODE
		File  file  `json:"file"`
	}
	closeBody struct {
		Modified bool `json:"modified"`
		Target   file `json:"target"`
	}
	targetBody struct { // write, truncate
		Target file `json:"target"`
	}
	createBody struct {
		Destination destination `json:"destination"`
	}
	renameBody struct {
		Source      file        `json:"source"`
		Destination destination `json:"destination"`
	}
	unlinkBody struct {
		Target file `json:"target"`
	}
	linkBody struct {
		Source         file   `json:"source"`
		TargetDir      file   `json:"target_dir"`
		TargetFilename string `json:"target_filename"`
	}
	setmodeBody struct {
		Mode   uint32 `json:"mode"`
		Target file   `json:"target"`
	}
	setownerBody struct {
		UID    uint32 `json:"uid"`
		GID    uint32 `json:"gid"`
		Target file   `json:"target"`
	}
	uipcConnectBody struct { // unix-domain sockets only
		File file `json:"file"`
	}
)

// destination is a create's or rename's target: an existing file, or a directory and a name.
type destination struct {
	ExistingFile *file `json:"existing_file"`
	NewPath      *struct {
		Dir      file   `json:"dir"`
		Filename string `json:"filename"`
		Mode     uint32 `json:"mode"` // create only
	} `json:"new_path"`
}

// envJoinKeys decodes an exec's environment keeping only the allowlisted correlation keys
// (agents.JoinKeysOf; nil when it holds none); no other value survives the decoding.
type envJoinKeys struct {
	keys *proto.JoinKeys
}

func (e *envJoinKeys) UnmarshalJSON(b []byte) error {
	var env []string
	if err := json.Unmarshal(b, &env); err != nil {
		return errors.New("exec env: not an array of strings")
	}
	e.keys = agents.JoinKeysOf(env...)
	return nil
}

// eventTypes are the es_event_type_t values of the NOTIFY events Vigil maps, by eslogger's
// name for them: the events the live source asks eslogger for (Events).
var eventTypes = map[string]int{
	"exec": 9, "open": 10, "fork": 11, "close": 12, "create": 13, "exit": 15, "link": 19,
	"rename": 25, "setmode": 29, "setowner": 30, "unlink": 32, "write": 33, "truncate": 41,
	"uipc_connect": 78,
}

// Events are the eslogger event names the live source subscribes to, sorted.
func Events() []string {
	names := make([]string, 0, len(eventTypes))
	for name := range eventTypes {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// parseMessage decodes a line's envelope and instigating process; the event stays raw.
// The event object must hold exactly one key, and a key Vigil maps must agree with
// event_type, so that a line that contradicts itself is refused rather than half believed.
func parseMessage(line []byte) (*message, error) {
	var m message
	if err := json.Unmarshal(line, &m); err != nil {
		return nil, fmt.Errorf("decode eslogger line: %w", err)
	}
	if m.Process == nil {
		return nil, errors.New("decode eslogger line: no process")
	}
	if !writable(m.Time) {
		return nil, fmt.Errorf("decode eslogger line: time %v outside the years 1970 to 9999", m.Time)
	}
	if len(m.Event) != 1 {
		return nil, fmt.Errorf("decode eslogger line: event has %d keys, want 1", len(m.Event))
	}
	for kind, body := range m.Event {
		m.kind, m.body = kind, body
	}
	if want, ok := eventTypes[m.kind]; ok && want != m.EventType {
		return nil, fmt.Errorf("decode eslogger line: event %s with event_type %d, want %d", m.kind, m.EventType, want)
	}
	return &m, nil
}

// writable reports whether t is a time an output line can hold (proto writes four-digit
// years) and an ES clock can give.
func writable(t time.Time) bool {
	y := t.UTC().Year()
	return y >= 1970 && y <= 9999
}

// decodeBody decodes the event's body into v.
func (m *message) decodeBody(v any) error {
	if err := json.Unmarshal(m.body, v); err != nil {
		return fmt.Errorf("decode eslogger %s event: %w", m.kind, err)
	}
	return nil
}
