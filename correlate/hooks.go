package correlate

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"github.com/vigil-sensor/vigil/internal/owned"
	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor/agents"
)

// Hooks: `vigil hook --agent NAME` is installed as a hook command of an agent (Claude Code
// settings.json, Codex hooks.json, Cursor hooks.json). The agent runs it once per hook event
// with the event's JSON on stdin; it forwards that JSON, unparsed, in one frame over a unix
// socket to the daemon's HookServer, which identifies the sender by SO_PEERCRED and turns
// the JSON into AgentEvents with AdaptHook.

// TransportHook is HookBatch.Transport: the events came from a hook over the hook socket.
const TransportHook = "hook"

const (
	// DefaultHookSocket is where the daemon listens for hook frames.
	DefaultHookSocket = "/run/vigil/hook.sock"
	// DefaultUndeliveredDir holds one file per uid that the hook client appends a byte to
	// for every hook it could not deliver (see HookServer.UndeliveredCounts, which counts and removes them).
	DefaultUndeliveredDir = "/var/lib/vigil/hook-undelivered"
	// MaxHookStdinBytes bounds one hook call's stdin JSON. Claude's PostToolUse carries the
	// tool's whole output (tool_response.stdout), so it is the largest payload; 1 MiB holds
	// every real one seen, and a bigger one is counted as too large, never truncated into
	// something else.
	MaxHookStdinBytes = 1 << 20
	// MaxHookFrameBytes bounds one frame's msgpack body: the stdin plus room for the agent
	// name, argv, cwd and the timestamp. The client keeps argv and cwd within the overhead.
	MaxHookFrameBytes = MaxHookStdinBytes + hookFrameOverhead
	// hookFrameOverhead is the room left in a frame for everything but the stdin.
	hookFrameOverhead = 64 << 10
	// hookFrameHeader is the big-endian uint32 length before the msgpack body.
	hookFrameHeader = 4
	// HookAck is the one byte the server writes back once it has read a whole frame. The
	// client counts a hook as undelivered unless it reads this byte before its deadline: a
	// wedged daemon whose listen backlog still accepts connections is not mistaken for a
	// delivery.
	HookAck byte = 0x06
)

var (
	// ErrHookTooLarge: the stdin JSON exceeds MaxHookStdinBytes.
	ErrHookTooLarge = errors.New("hook stdin too large")
	// ErrHookFrameTooLarge: a frame header announces more than MaxHookFrameBytes.
	ErrHookFrameTooLarge = errors.New("hook frame too large")
)

// HookMessage is the one frame a hook client sends per connection: msgpack of this struct
// after a big-endian uint32 length. Every field is the sender's claim; the server knows the
// sender by SO_PEERCRED, never by anything in the message.
type HookMessage struct {
	// Agent is the --agent flag of `vigil hook` (claude-code, codex, cursor), or "".
	Agent string `msgpack:"agent"`
	// Stdin is the hook's stdin as read, at most MaxHookStdinBytes+1 bytes (one more byte
	// than the limit says the input was cut, so the server counts it as too large).
	Stdin []byte `msgpack:"stdin"`
	// Argv is the hook process's argv; Cwd its working directory (the agent's cwd).
	Argv []string `msgpack:"argv"`
	Cwd  string   `msgpack:"cwd"`
	// SentAt is the client's clock when it read stdin.
	SentAt time.Time `msgpack:"sent_at"`
}

// HookBatch is what one delivered hook call produced, handed to the HookServer's deliver
// function.
type HookBatch struct {
	Events []proto.AgentEvent
	// SenderPid and SenderUID come from the kernel (SO_PEERCRED of the connection): the pid
	// of the process that connected, i.e. the `vigil hook` process itself, whose parent
	// chain leads to the agent. SenderPid is 0 when the sender lives in a pid namespace the
	// daemon cannot see. Resolve it promptly: the hook exits right after sending.
	SenderPid int
	// SenderStartBootNs is the sender's start time (ns since boot), read while it waited for
	// the acknowledgement (WithSenderStart); 0 when unknown. With SenderPid it names one
	// process.
	SenderStartBootNs uint64
	SenderUID         int
	// Transport is TransportHook.
	Transport string
	// Argv, Cwd and SentAt are copied from the HookMessage: the sender's unverified claims.
	Argv   []string
	Cwd    string
	SentAt time.Time
}

// HookStats are a HookServer's counters since it started.
type HookStats struct {
	// Accepted is the number of connections accepted.
	Accepted uint64
	// Malformed counts frames that could not be read or decoded, and stdin that is not a
	// hook payload AdaptHook accepts (bad JSON, unknown agent, no hook_event_name).
	Malformed uint64
	// TooLarge counts frames over MaxHookFrameBytes and stdin over MaxHookStdinBytes.
	TooLarge uint64
	// TimedOut counts connections that did not send a whole frame within the deadline.
	TimedOut uint64
	// Refused counts connections closed at once because their uid already had
	// hookAdmittedPerUID connections in flight.
	Refused uint64
	// Events is the number of AgentEvents adapted and delivered.
	Events uint64
	// PerAgent is Events per agent (claude-code, codex, cursor).
	PerAgent map[string]uint64
}

// AppendHookFrame appends m as one frame (length header + msgpack body) to dst. It refuses
// a body over MaxHookFrameBytes, which the server would drop unread.
func AppendHookFrame(dst []byte, m *HookMessage) ([]byte, error) {
	n := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	buf := bytes.NewBuffer(dst)
	if err := msgpack.NewEncoder(buf).Encode(m); err != nil {
		return dst[:n], fmt.Errorf("encode hook frame: %w", err)
	}
	out := buf.Bytes()
	body := len(out) - n - hookFrameHeader
	if body > MaxHookFrameBytes {
		return out[:n], fmt.Errorf("encode hook frame: %d bytes: %w", body, ErrHookFrameTooLarge)
	}
	binary.BigEndian.PutUint32(out[n:], uint32(body))
	return out, nil
}

// ReadHookFrame reads one frame from r. A header announcing more than MaxHookFrameBytes is
// refused with ErrHookFrameTooLarge before any of the body is read or allocated.
func ReadHookFrame(r io.Reader) (HookMessage, error) {
	var hdr [hookFrameHeader]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return HookMessage{}, fmt.Errorf("read hook frame header: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxHookFrameBytes {
		return HookMessage{}, fmt.Errorf("read hook frame: header says %d bytes, limit %d: %w", n, MaxHookFrameBytes, ErrHookFrameTooLarge)
	}
	if n == 0 {
		return HookMessage{}, errors.New("read hook frame: empty body")
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return HookMessage{}, fmt.Errorf("read hook frame body (%d bytes): %w", n, err)
	}
	return DecodeHookMessage(body)
}

// DecodeHookMessage decodes a frame body. Trailing bytes after the message are refused.
func DecodeHookMessage(body []byte) (HookMessage, error) {
	var m HookMessage
	r := bytes.NewReader(body)
	dec := msgpack.NewDecoder(r)
	if err := dec.Decode(&m); err != nil {
		return HookMessage{}, fmt.Errorf("decode hook frame: %w", err)
	}
	if r.Len() != 0 {
		return HookMessage{}, fmt.Errorf("decode hook frame: %d trailing bytes", r.Len())
	}
	m.SentAt = m.SentAt.UTC()
	return m, nil
}

// hookMaxArgv bounds the number of argv elements a frame may carry (the client sends at
// most 16 KiB of argv).
const hookMaxArgv = 1 << 14

// DecodeMsgpack decodes a HookMessage with every length checked before it is allocated:
// msgpack's own decoding of a []byte allocates whatever length a bin32 header claims (4 GiB
// from a 16-byte body), and of a []string up to a million elements.
func (m *HookMessage) DecodeMsgpack(dec *msgpack.Decoder) error {
	n, err := dec.DecodeMapLen()
	if err != nil {
		return err
	}
	if n < 0 {
		return errors.New("hook message is nil")
	}
	for range n {
		key, err := decodeBoundedString(dec)
		if err != nil {
			return err
		}
		switch key {
		case "agent":
			m.Agent, err = decodeBoundedString(dec)
		case "cwd":
			m.Cwd, err = decodeBoundedString(dec)
		case "sent_at":
			m.SentAt, err = dec.DecodeTime()
		case "stdin":
			m.Stdin, err = decodeBoundedBytes(dec, MaxHookFrameBytes)
		case "argv":
			m.Argv, err = decodeBoundedStrings(dec, hookMaxArgv)
		default:
			err = skipValue(dec)
		}
		if err != nil {
			return fmt.Errorf("field %q: %w", key, err)
		}
	}
	return nil
}

// maxSkipDepth bounds how deeply nested an unknown field's value may be. msgpack's own Skip
// recurses once per level: 1.1 M nested arrays in a 1 MiB frame grew the sensor by 750 MiB
// of goroutine stack.
const maxSkipDepth = 32

// skipValue skips one msgpack value of an unknown field without recursion: each container
// opened pushes the count of values it still holds onto an explicit stack, at most
// maxSkipDepth deep; scalars, strings, binaries and extensions are skipped whole.
func skipValue(dec *msgpack.Decoder) error {
	pending := []int64{1}
	for len(pending) > 0 {
		top := len(pending) - 1
		if pending[top] == 0 {
			pending = pending[:top]
			continue
		}
		pending[top]--
		c, err := dec.PeekCode()
		if err != nil {
			return err
		}
		var n int
		switch {
		case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
			n, err = dec.DecodeArrayLen()
		case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
			n, err = dec.DecodeMapLen()
			n *= 2 // a key and a value per entry
		default:
			err = dec.Skip()
		}
		if err != nil {
			return err
		}
		if n > 0 {
			if len(pending) > maxSkipDepth {
				return fmt.Errorf("value nested deeper than %d levels", maxSkipDepth)
			}
			pending = append(pending, int64(n))
		}
	}
	return nil
}

// decodeBoundedBytes reads a msgpack bin or str of at most limit bytes, and never more than
// the decoder's input still holds when that is known (a *bytes.Reader, as in
// DecodeHookMessage).
func decodeBoundedBytes(dec *msgpack.Decoder, limit int) ([]byte, error) {
	n, err := dec.DecodeBytesLen()
	if err != nil || n < 0 {
		return nil, err
	}
	if r, ok := dec.Buffered().(interface{ Len() int }); ok {
		limit = min(limit, r.Len())
	}
	if n > limit {
		return nil, fmt.Errorf("%d bytes, %d available", n, limit)
	}
	b := make([]byte, n)
	if err := dec.ReadFull(b); err != nil {
		return nil, err
	}
	return b, nil
}

func decodeBoundedString(dec *msgpack.Decoder) (string, error) {
	b, err := decodeBoundedBytes(dec, MaxHookFrameBytes)
	return string(b), err
}

func decodeBoundedStrings(dec *msgpack.Decoder, limit int) ([]string, error) {
	n, err := dec.DecodeArrayLen()
	if err != nil || n < 0 {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("%d elements, limit %d", n, limit)
	}
	if r, ok := dec.Buffered().(interface{ Len() int }); ok && n > r.Len() {
		// Every element takes at least one byte.
		return nil, fmt.Errorf("%d elements, %d bytes available", n, r.Len())
	}
	out := make([]string, 0, n)
	for range n {
		s, err := decodeBoundedString(dec)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// hookKinds maps Claude Code and Codex hook_event_name values (both use the same names) to
// kinds. Anything else (SessionEnd, Stop, Notification, PermissionRequest, SubagentStart,
// SubagentStop, PreCompact, and names a newer agent adds) is KindHook.
var hookKinds = map[string]string{
	"SessionStart":       proto.KindSessionStart,
	"UserPromptSubmit":   proto.KindUserPrompt,
	"PreToolUse":         proto.KindToolDecision,
	"PostToolUse":        proto.KindToolResult,
	"PostToolUseFailure": proto.KindToolResult,
}

// cursorHookKinds maps Cursor's documented hook events (cursor.com/docs/agent/hooks) to the
// closest kinds. sessionEnd, stop, subagentStart/Stop, preCompact, afterAgentResponse,
// afterAgentThought and the Tab events (beforeTabFileRead, afterTabFileEdit: inline
// completion, not the agent) are KindHook. A Cursor payload with a Claude event name (Cursor
// runs Claude Code's hooks when third-party hooks are on) falls back to hookKinds.
var cursorHookKinds = map[string]string{
	"sessionStart":         proto.KindSessionStart,
	"beforeSubmitPrompt":   proto.KindUserPrompt,
	"preToolUse":           proto.KindToolDecision,
	"beforeShellExecution": proto.KindToolDecision,
	"beforeMCPExecution":   proto.KindToolDecision,
	"beforeReadFile":       proto.KindToolDecision,
	"postToolUse":          proto.KindToolResult,
	"postToolUseFailure":   proto.KindToolResult,
	"afterShellExecution":  proto.KindToolResult,
	"afterMCPExecution":    proto.KindToolResult,
	"afterFileEdit":        proto.KindToolResult,
}

// geminiHookKinds maps Gemini CLI 0.61's hook events (research/agents/gemini.md §4). Its
// tool hooks (BeforeTool, AfterTool) carry no call id, so they stay KindHook lines: the calls
// come from its telemetry.
var geminiHookKinds = map[string]string{
	"SessionStart": proto.KindSessionStart,
	"BeforeAgent":  proto.KindUserPrompt,
}

// cursorToolNames label Cursor's tool-specific events, whose payloads name no tool: Vigil's
// labels, chosen as the names Cursor's preToolUse matcher uses (Shell, Read, Edit).
var cursorToolNames = map[string]string{
	"beforeShellExecution": "Shell",
	"afterShellExecution":  "Shell",
	"beforeReadFile":       "Read",
	"afterFileEdit":        "Edit",
}

// shellTools are the tool names whose tool_input.command is a shell command: Claude Bash,
// Codex's hook name for exec_command (also "Bash"), Cursor Shell, and Codex's OTLP names in
// case a version sends those.
var shellTools = map[string]bool{
	"Bash": true, "bash": true, "Shell": true, "shell": true, "exec_command": true, "shell_command": true,
	"local_shell": true, "unified_exec": true,
}

// AdaptHook turns one hook call's stdin JSON into agent events (one today; a slice so that
// a payload naming several things can say so). agent is the caller's --agent
// (agents.ForHook); "" detects it from the payload. An explicit claude-code is
// overridden by cursor when the payload is unmistakably Cursor's (conversation_id and no
// session_id), because Cursor runs Claude Code's hooks with its own payloads.
//
// Time is when AdaptHook runs: hook payloads carry no timestamp, and the hook is forwarded
// within milliseconds of the agent starting it (the client's send deadline is 500 ms), so
// the event is stamped on arrival, unlike OTLP events which carry the agent's own time.
//
// Fields, per agent (the README of research/agents documents the observed payloads):
//   - SessionID: session_id (Claude, Codex), else conversation_id (Cursor).
//   - PromptID: prompt_id (Claude). TurnID: turn_id (Codex), generation_id (Cursor).
//   - ToolName, ToolUseID: tool_name, tool_use_id (Codex: = call_id = CODEX_TOOL_CALL_ID).
//   - Command: tool_input.command of a shell tool (Claude Bash, Codex "Bash"); Cursor's
//     top-level command of beforeShellExecution/afterShellExecution.
//   - FilePaths: tool_input.file_path or notebook_path (Claude Read/Write/Edit/...); the
//     files of the patch in tool_input.command for Codex apply_patch; Cursor's file_path.
//   - Success: PostToolUse and Cursor postToolUse/afterFileEdit fire only for a call that
//     completed (failures fire PostToolUseFailure), so true, unless the response says
//     otherwise (Claude tool_response.interrupted, an exit code, Codex's "Exit code: N"
//     text); PostToolUseFailure is false; Codex PostToolUse is set only when its
//     tool_response text carries an exit code (apply_patch does, exec_command does not).
//   - DurationMs: duration_ms (Claude PostToolUse). Model: model (Codex).
//   - Prompt: prompt of UserPromptSubmit / beforeSubmitPrompt.
//   - EventName is hook_event_name on every event; KindHook also has HookEvent.
//
// Unknown event names give KindHook. Errors: stdin over MaxHookStdinBytes
// (ErrHookTooLarge), empty, not a JSON object, without a string hook_event_name, or an
// unknown agent name.
func AdaptHook(agent string, stdin []byte) ([]proto.AgentEvent, error) {
	return adaptHookAt(agent, stdin, time.Now())
}

// hookPayload is the union of the fields AdaptHook reads. Fields are raw so that a value of
// an unexpected type is ignored instead of failing the whole payload.
type hookPayload struct {
	EventName      json.RawMessage `json:"hook_event_name"`
	SessionID      json.RawMessage `json:"session_id"`
	ConversationID json.RawMessage `json:"conversation_id"`
	PromptID       json.RawMessage `json:"prompt_id"`
	TurnID         json.RawMessage `json:"turn_id"`
	GenerationID   json.RawMessage `json:"generation_id"`
	TranscriptPath json.RawMessage `json:"transcript_path"`
	WorkspaceRoots json.RawMessage `json:"workspace_roots"`
	CursorVersion  json.RawMessage `json:"cursor_version"`
	Model          json.RawMessage `json:"model"`
	Prompt         json.RawMessage `json:"prompt"`
	ToolName       json.RawMessage `json:"tool_name"`
	ToolUseID      json.RawMessage `json:"tool_use_id"`
	ToolInput      json.RawMessage `json:"tool_input"`
	ToolResponse   json.RawMessage `json:"tool_response"`
	DurationMs     json.RawMessage `json:"duration_ms"`
	Command        json.RawMessage `json:"command"`
	FilePath       json.RawMessage `json:"file_path"`
}

func adaptHookAt(agent string, stdin []byte, now time.Time) ([]proto.AgentEvent, error) {
	if len(stdin) > MaxHookStdinBytes {
		return nil, fmt.Errorf("adapt hook: stdin is %d bytes, limit %d: %w", len(stdin), MaxHookStdinBytes, ErrHookTooLarge)
	}
	agent, err := agents.ForHook(agent)
	if err != nil {
		return nil, fmt.Errorf("adapt hook: %w", err)
	}
	trimmed := bytes.TrimLeft(stdin, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, errors.New("adapt hook: empty stdin, want a JSON object")
	}
	if trimmed[0] != '{' {
		return nil, fmt.Errorf("adapt hook: stdin is not a JSON object, starts with %q", trimmed[0])
	}
	var p hookPayload
	if err := json.Unmarshal(stdin, &p); err != nil {
		return nil, fmt.Errorf("adapt hook: decode stdin json: %w", err)
	}
	name, ok := rawString(p.EventName)
	if !ok || name == "" {
		return nil, errors.New("adapt hook: no hook_event_name string in stdin json")
	}
	agent = hookAgent(agent, &p, name)

	ev := proto.AgentEvent{
		Agent:     agent,
		EventName: name,
		Time:      now.UTC(),
		SessionID: str(p.SessionID),
		PromptID:  str(p.PromptID),
		TurnID:    str(p.TurnID),
		Model:     str(p.Model),
		ToolName:  str(p.ToolName),
		ToolUseID: str(p.ToolUseID),
	}
	if ev.SessionID == "" {
		ev.SessionID = str(p.ConversationID)
	}
	kind, known := hookKinds[name]
	if agent == agents.Cursor {
		if ev.TurnID == "" {
			ev.TurnID = str(p.GenerationID)
		}
		ev.AgentVersion = str(p.CursorVersion)
		if k, ok := cursorHookKinds[name]; ok {
			kind, known = k, true
		}
		if ev.ToolName == "" {
			ev.ToolName = cursorToolNames[name]
		}
	}
	if agent == agents.GeminiCLI {
		kind, known = geminiHookKinds[name]
	}
	if !known {
		kind = proto.KindHook
	}
	ev.Kind = kind

	switch kind {
	case proto.KindUserPrompt:
		ev.Prompt = str(p.Prompt)
	case proto.KindHook:
		ev.HookEvent = name
	}
	hookToolInput(&ev, p.ToolInput)
	if agent == agents.Cursor {
		switch name {
		case "beforeShellExecution", "afterShellExecution":
			if ev.Command == "" {
				ev.Command = str(p.Command)
			}
		case "beforeReadFile", "afterFileEdit":
			if f := str(p.FilePath); f != "" && len(ev.FilePaths) == 0 {
				ev.FilePaths = []string{f}
			}
		}
	}
	if kind == proto.KindToolResult {
		ev.Success = hookSuccess(agent, name, p.ToolResponse)
		if d, ok := rawInt(p.DurationMs); ok && d >= 0 {
			ev.DurationMs = d
		}
	}
	return []proto.AgentEvent{ev}, nil
}

// hookAgent settles the agent: the caller's, except a claude-code hook receiving a Cursor
// payload; else detected from the payload.
func hookAgent(agent string, p *hookPayload, name string) string {
	cursorShaped := len(p.SessionID) == 0 && (len(p.ConversationID) > 0 || len(p.WorkspaceRoots) > 0 || len(p.CursorVersion) > 0)
	switch agent {
	case agents.ClaudeCode:
		if cursorShaped {
			return agents.Cursor
		}
		return agent
	case "":
	default:
		return agent
	}
	if cursorShaped {
		return agents.Cursor
	}
	// Cursor's event names are camelCase; Claude's and Codex's are PascalCase.
	if r := []rune(name); len(r) > 0 && unicode.IsLower(r[0]) && len(p.SessionID) == 0 {
		return agents.Cursor
	}
	// Codex sends turn_id (every event of a turn) and model (all but SessionEnd), Claude
	// neither; Codex's transcript is a rollout file under $CODEX_HOME (~/.codex).
	if len(p.TurnID) > 0 || len(p.Model) > 0 {
		return agents.Codex
	}
	tp := str(p.TranscriptPath)
	if strings.Contains(tp, "/.codex/") || strings.Contains(filepath.Base(tp), "rollout-") {
		return agents.Codex
	}
	// Gemini CLI's transcript is ~/.gemini/tmp/<project>/chats/session-*.jsonl.
	if strings.Contains(tp, "/.gemini/") {
		return agents.GeminiCLI
	}
	return agents.ClaudeCode
}

// hookToolInput reads the command and the file paths from tool_input.
func hookToolInput(ev *proto.AgentEvent, raw json.RawMessage) {
	if len(raw) == 0 || raw[0] != '{' {
		return
	}
	var in map[string]json.RawMessage
	if json.Unmarshal(raw, &in) != nil {
		return
	}
	cmd := jsonString(in["command"])
	switch {
	case ev.ToolName == "apply_patch":
		// Codex apply_patch: tool_input.command is the patch text, not a shell command.
		ev.FilePaths = patchFiles(cmd)
		return
	case shellTools[ev.ToolName]:
		ev.Command = cmd
		if strings.Contains(cmd, "*** Begin Patch") {
			// A shell command that pipes a patch to apply_patch names its files too.
			ev.FilePaths = patchFiles(cmd)
		}
		return
	case strings.HasPrefix(ev.ToolName, "mcp__"):
		// An MCP tool's arguments are the server's business, not file claims.
		return
	}
	for _, k := range []string{"file_path", "notebook_path", "filePath"} {
		if f := str(in[k]); f != "" {
			ev.FilePaths = []string{f}
			return
		}
	}
}

// hookSuccess derives a tool result's success: false for the failure events, else what the
// response says, else true for the events that fire only on completion.
func hookSuccess(agent, name string, resp json.RawMessage) *bool {
	if name == "PostToolUseFailure" || name == "postToolUseFailure" {
		return new(false)
	}
	if s := responseSuccess(resp); s != nil {
		return s
	}
	if agent == agents.Codex {
		// Codex's PostToolUse tool_response is the output text; without an exit code in it
		// success is unknown (observed: exec_command output carries none).
		return nil
	}
	switch name {
	case "PostToolUse", "postToolUse", "afterFileEdit":
		return new(true)
	}
	return nil
}

// responseSuccess reads a success from a tool_response: an object's success, exit_code /
// exitCode or interrupted (Claude Bash), or an "Exit code: N" line of a string (Codex).
func responseSuccess(raw json.RawMessage) *bool {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil
	}
	switch raw[0] {
	case '"':
		s, _ := rawString(raw)
		for line := range strings.Lines(s) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Exit code:"); ok {
				if code, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
					return new(code == 0)
				}
				return nil
			}
		}
	case '{':
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			return nil
		}
		var b bool
		if v, ok := obj["success"]; ok && json.Unmarshal(v, &b) == nil {
			return new(b)
		}
		for _, k := range []string{"exit_code", "exitCode"} {
			if code, ok := rawInt(obj[k]); ok {
				return new(code == 0)
			}
		}
		if v, ok := obj["interrupted"]; ok && json.Unmarshal(v, &b) == nil && b {
			return new(false)
		}
	}
	return nil
}

// rawString decodes a JSON string; ok is false for anything else.
func rawString(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// str is rawString without the flag: "" for a missing or non-string value.
func str(raw json.RawMessage) string {
	s, _ := rawString(raw)
	return s
}

// rawInt decodes a JSON integer (or an integral float).
func rawInt(raw json.RawMessage) (int64, bool) {
	if len(raw) == 0 {
		return 0, false
	}
	var n json.Number
	if json.Unmarshal(raw, &n) != nil {
		return 0, false
	}
	if i, err := n.Int64(); err == nil {
		return i, true
	}
	if f, err := n.Float64(); err == nil {
		return floatInt(f)
	}
	return 0, false
}

// Undelivered hooks. The daemon owns DefaultUndeliveredDir, mode 01733 and root's: anyone
// may create a file in it, nobody but root may list it, and the sticky bit stops a user
// from removing or renaming another's file. The hook client appends one byte to <dir>/<uid>
// per hook it could not deliver (O_APPEND of one byte is atomic), so the file size is the
// count. Files are counted by the uid that owns them (the kernel's word, as for the
// socket), not by their name: a user who pre-creates a file named after another uid only
// makes that user's client fall back to <uid>.<pid>, which is still counted for its owner.

// UndeliveredDirMode is the undelivered directory's mode.
const UndeliveredDirMode = os.ModeDir | os.ModeSticky | 0o733

// PrepareUndeliveredDir creates dir (and its parent, 0755) and sets the mode to 01733. It
// refuses a path that is not a directory or is owned by someone other than the caller.
func PrepareUndeliveredDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("create undelivered dir parent: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create undelivered dir: %w", err)
	}
	if err := owned.Dir(dir); err != nil {
		return fmt.Errorf("undelivered dir: %w", err)
	}
	// Chmod, not Mkdir's mode: the umask would clear the write bits for others.
	if err := os.Chmod(dir, UndeliveredDirMode); err != nil {
		return fmt.Errorf("chmod undelivered dir: %w", err)
	}
	return nil
}

// consumedPrefix names the files ConsumeUndelivered has taken but not yet removed (a crash
// in between leaves them to be counted next time).
const consumedPrefix = ".consumed-"

// ConsumeUndelivered counts, per owning uid, the hooks the clients recorded as undelivered in
// dir, and removes what it counted, so that each is reported once, not again after a
// restart. Each file is renamed before it is counted: a client appending meanwhile creates
// a new file, counted next time, rather than writing into one being removed. A file counts
// the bytes it really holds (its allocated blocks): a sparse file that claims a billion bytes
// counts what was written. Symlinks and other file types are ignored. A missing dir is an
// empty map.
func ConsumeUndelivered(dir string) (map[int]uint64, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return map[int]uint64{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read undelivered dir: %w", err)
	}
	counts := make(map[int]uint64)
	now := strconv.FormatInt(time.Now().UnixNano(), 10)
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		taken := filepath.Join(dir, e.Name())
		if !strings.HasPrefix(e.Name(), consumedPrefix) {
			next := filepath.Join(dir, consumedPrefix+e.Name()+"-"+now)
			if err := os.Rename(taken, next); errors.Is(err, os.ErrNotExist) {
				continue
			} else if err != nil {
				return counts, fmt.Errorf("take undelivered file: %w", err)
			}
			taken = next
		}
		fi, err := os.Lstat(taken)
		if err != nil {
			return counts, fmt.Errorf("stat undelivered file: %w", err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || !fi.Mode().IsRegular() {
			continue
		}
		counts[int(st.Uid)] += uint64(min(fi.Size(), st.Blocks*512))
		if err := os.Remove(taken); err != nil {
			return counts, fmt.Errorf("remove counted undelivered file: %w", err)
		}
	}
	return counts, nil
}

// RecordUndelivered appends one byte to dir/<uid> for a hook that could not be delivered.
// When that file cannot be opened (another user created it first), it appends to
// dir/<uid>.<pid>, created exclusively. O_NOFOLLOW keeps a planted symlink from redirecting
// the write.
func RecordUndelivered(dir string, uid, pid int) error {
	const flags = os.O_WRONLY | os.O_APPEND | os.O_CREATE | syscall.O_NOFOLLOW
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(uid)), flags, 0o600)
	if err != nil {
		var err2 error
		f, err2 = os.OpenFile(filepath.Join(dir, strconv.Itoa(uid)+"."+strconv.Itoa(pid)), flags|os.O_EXCL, 0o600)
		if err2 != nil {
			return fmt.Errorf("record undelivered hook: %w", errors.Join(err, err2))
		}
	}
	_, err = f.Write([]byte{1})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("record undelivered hook: %w", err)
	}
	return nil
}
