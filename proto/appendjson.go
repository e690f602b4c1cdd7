package proto

import (
	"slices"
	"strconv"

	segjson "github.com/segmentio/encoding/json"

	"github.com/vigil-sensor/vigil/internal/jsonstr"
)

// appendEventFast is AppendJSON's encoding written out by hand for the groups on the sensor's
// hot path (kernel and agent lines): the reflection encoder's walk over Event's ~100 fields,
// most of them empty, was 1.1 µs of an open line. Rare groups (rule, threat, vigil.alert,
// vigil.inventory) still go through the reflection encoder. The field order is jsonEvent's
// (process after threat, vigil last). A field added to Event and forgotten here is caught by
// fastMatchesReflection at start-up (AppendJSON then uses the reflection encoder alone) and by
// the tests; e.Vigil.Schema empty is written as SchemaVersion.
func appendEventFast(b []byte, e *Event) ([]byte, error) {
	b = append(b, `{"@timestamp":`...)
	b, err := appendTime(b, "@timestamp", e.Timestamp)
	if err != nil {
		return b, err
	}
	b = appendEventMeta(append(b, `,"event":`...), &e.Event)
	if h := e.Host; h != nil {
		b = append(b, `,"host":`...)
		o := len(b)
		b = append(b, '{')
		b = strOmit(b, o, `"name":`, h.Name)
		b = strOmit(b, o, `"boot_id":`, h.BootID)
		b = append(b, '}')
	}
	if u := e.User; u != nil {
		b = append(b, `,"user":`...)
		o := len(b)
		b = append(b, '{')
		b = strOmit(b, o, `"id":`, u.ID)
		b = strOmit(b, o, `"name":`, u.Name)
		if g := u.Group; g != nil {
			b = append(key(b, o, `"group":`), '{')
			b = strOmit(b, len(b)-1, `"id":`, g.ID)
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	if e.File != nil {
		b = appendFile(append(b, `,"file":`...), e.File)
	}
	if d := e.Destination; d != nil {
		b = append(b, `,"destination":`...)
		o := len(b)
		b = append(b, '{')
		b = strOmit(b, o, `"ip":`, d.IP)
		b = intOmit(b, o, `"port":`, int64(d.Port))
		b = strOmit(b, o, `"address":`, d.Address)
		b = append(b, '}')
	}
	if n := e.Network; n != nil {
		b = append(b, `,"network":{`...)
		b = strOmit(b, len(b)-1, `"type":`, n.Type)
		b = append(b, '}')
	}
	if e.GenAI != nil {
		b = appendGenAI(append(b, `,"gen_ai":`...), e.GenAI)
	}
	if e.Rule != nil {
		if b, err = appendReflect(append(b, `,"rule":`...), e.Rule); err != nil {
			return b, err
		}
	}
	if len(e.Tags) != 0 {
		b = appendStrings(append(b, `,"tags":`...), e.Tags)
	}
	if e.Threat != nil {
		if b, err = appendReflect(append(b, `,"threat":`...), e.Threat); err != nil {
			return b, err
		}
	}
	if e.Process != nil {
		if b, err = appendProcess(append(b, `,"process":`...), e.Process); err != nil {
			return b, err
		}
	}
	if b, err = appendVigil(append(b, `,"vigil":`...), &e.Vigil); err != nil {
		return b, err
	}
	return append(b, '}'), nil
}

func appendEventMeta(b []byte, m *EventMeta) []byte {
	b = appendString(append(b, `{"action":`...), m.Action)
	b = strOmit(b, 0, `"outcome":`, m.Outcome)
	b = appendString(append(b, `,"kind":`...), m.Kind)
	b = strOmit(b, 0, `"category":`, m.Category)
	if len(m.Type) != 0 {
		b = appendStrings(append(b, `,"type":`...), m.Type)
	}
	b = appendString(append(b, `,"dataset":`...), m.Dataset)
	b = strconv.AppendUint(append(b, `,"sequence":`...), m.Sequence, 10)
	b = intOmit(b, 0, `"severity":`, int64(m.Severity))
	return append(b, '}')
}

func appendFile(b []byte, f *File) []byte {
	b = appendString(append(b, `{"path":`...), f.Path)
	b = strOmit(b, 0, `"access":`, f.Access)
	b = strOmit(b, 0, `"flags":`, f.Flags)
	b = strOmit(b, 0, `"target_path":`, f.TargetPath)
	b = strOmit(b, 0, `"mode":`, f.Mode)
	b = strOmit(b, 0, `"uid":`, f.UID)
	b = strOmit(b, 0, `"gid":`, f.GID)
	if f.Size != nil {
		b = strconv.AppendInt(append(b, `,"size":`...), *f.Size, 10)
	}
	return append(b, '}')
}

func appendGenAI(b []byte, g *GenAI) []byte {
	o := len(b)
	b = append(b, '{')
	if a := g.Agent; a != nil {
		b = append(appendString(append(key(b, o, `"agent":`), `{"name":`...), a.Name), '}')
	}
	if c := g.Conversation; c != nil {
		b = append(appendString(append(key(b, o, `"conversation":`), `{"id":`...), c.ID), '}')
	}
	if t := g.Tool; t != nil {
		b = append(key(b, o, `"tool":`), '{')
		to := len(b) - 1
		b = strOmit(b, to, `"name":`, t.Name)
		if c := t.Call; c != nil {
			b = append(appendString(append(key(b, to, `"call":`), `{"id":`...), c.ID), '}')
		}
		b = append(b, '}')
	}
	if r := g.Request; r != nil {
		b = append(key(b, o, `"request":`), '{')
		b = append(strOmit(b, len(b)-1, `"model":`, r.Model), '}')
	}
	if u := g.Usage; u != nil {
		b = append(key(b, o, `"usage":`), '{')
		uo := len(b) - 1
		b = intOmit(b, uo, `"input_tokens":`, u.InputTokens)
		b = append(intOmit(b, uo, `"output_tokens":`, u.OutputTokens), '}')
	}
	return append(b, '}')
}

// appendProcess writes jsonProcess: Process's fields in order, process.start last.
func appendProcess(b []byte, p *Process) ([]byte, error) {
	b = strconv.AppendInt(append(b, `{"pid":`...), int64(p.Pid), 10)
	b = strOmit(b, 0, `"entity_id":`, p.EntityID)
	if p.Thread != nil {
		b = append(strconv.AppendInt(append(b, `,"thread":{"id":`...), int64(p.Thread.ID), 10), '}')
	}
	b = strOmit(b, 0, `"name":`, p.Name)
	b = strOmit(b, 0, `"executable":`, p.Executable)
	if len(p.Args) != 0 {
		b = appendStrings(append(b, `,"args":`...), p.Args)
	}
	b = intOmit(b, 0, `"args_count":`, int64(p.ArgsCount))
	b = strOmit(b, 0, `"working_directory":`, p.WorkingDirectory)
	if p.ExitCode != nil {
		b = strconv.AppendInt(append(b, `,"exit_code":`...), int64(*p.ExitCode), 10)
	}
	if h := p.Hash; h != nil {
		b = append(b, `,"hash":{`...)
		b = append(strOmit(b, len(b)-1, `"sha256":`, h.SHA256), '}')
	}
	if pp := p.Parent; pp != nil {
		b = strconv.AppendInt(append(b, `,"parent":{"pid":`...), int64(pp.Pid), 10)
		b = strOmit(b, 0, `"entity_id":`, pp.EntityID)
		b = strOmit(b, 0, `"executable":`, pp.Executable)
		b = append(strOmit(b, 0, `"name":`, pp.Name), '}')
	}
	if p.Start != nil {
		var err error
		if b, err = appendTime(append(b, `,"start":`...), "process.start", *p.Start); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

func appendVigil(b []byte, v *Vigil) ([]byte, error) {
	schema := v.Schema
	if schema == "" {
		schema = SchemaVersion
	}
	b = appendString(append(b, `{"schema":`...), schema)
	if r := v.Root; r != nil {
		b = strconv.AppendInt(append(b, `,"root":{"pid":`...), int64(r.Pid), 10)
		b = append(strOmit(b, 0, `"entity_id":`, r.EntityID), '}')
	}
	b = intOmit(b, 0, `"errno":`, int64(v.Errno))
	if v.Join != nil {
		b = appendJoin(append(b, `,"join":`...), v.Join)
	}
	if v.JoinInherited {
		b = append(b, `,"join_inherited":true`...)
	}
	if len(v.Truncated) != 0 {
		b = appendStrings(append(b, `,"truncated":`...), v.Truncated)
	}
	b = strOmit(b, 0, `"path_source":`, v.PathSource)
	b = strOmit(b, 0, `"address_source":`, v.AddressSource)
	b = strOmit(b, 0, `"syscall":`, v.Syscall)
	if v.Rename != nil {
		b = append(appendString(append(b, `,"rename":{"source":`...), v.Rename.Source), '}')
	}
	if v.Setid {
		b = append(b, `,"setid":true`...)
	}
	if x := v.Exe; x != nil {
		b = strconv.AppendUint(append(b, `,"exe":{"dev":`...), x.Dev, 10)
		b = strconv.AppendUint(append(b, `,"ino":`...), x.Ino, 10)
		b = strOmit(b, 0, `"ctime":`, x.Ctime)
		if x.Memfd {
			b = append(b, `,"memfd":true`...)
		}
		if x.Deleted {
			b = append(b, `,"deleted":true`...)
		}
		b = append(strOmit(b, 0, `"hash":`, x.Hash), '}')
	}
	if m := v.Merged; m != nil {
		b = strconv.AppendUint(append(b, `,"merged":{"count":`...), m.Count, 10)
		b = appendString(append(b, `,"first":`...), m.First)
		b = appendString(append(b, `,"last":`...), m.Last)
		b = strconv.AppendUint(append(b, `,"dev":`...), m.Dev, 10)
		b = append(strconv.AppendUint(append(b, `,"ino":`...), m.Ino, 10), '}')
	}
	if len(v.Lost) != 0 {
		b = appendCounts(append(b, `,"lost":`...), v.Lost)
	}
	b = strOmit(b, 0, `"source":`, v.Source)
	b = strOmit(b, 0, `"binding":`, v.Binding)
	b = strOmit(b, 0, `"confidence":`, v.Confidence)
	if p := v.Prompt; p != nil {
		b = append(b, `,"prompt":{`...)
		po := len(b) - 1
		b = strOmit(b, po, `"id":`, p.ID)
		b = append(strOmit(b, po, `"text":`, p.Text), '}')
	}
	if v.Tool != nil {
		b = appendToolCall(append(b, `,"tool":`...), v.Tool)
	}
	if t := v.Telemetry; t != nil {
		b = append(b, `,"telemetry":{`...)
		to := len(b) - 1
		b = strOmit(b, to, `"transport":`, t.Transport)
		b = intOmit(b, to, `"sender_pid":`, int64(t.SenderPid))
		b = strconv.AppendBool(key(b, to, `"trusted":`), t.Trusted)
		b = strOmit(b, 0, `"claimed_conversation_id":`, t.ClaimedConversationID)
		if t.Suppressed != 0 {
			b = strconv.AppendUint(append(b, `,"suppressed":`...), t.Suppressed, 10)
		}
		b = append(b, '}')
	}
	if v.Binds != nil {
		b = append(strconv.AppendUint(append(b, `,"binds":{"sequence":`...), v.Binds.Sequence, 10), '}')
	}
	if v.Recovered {
		b = append(b, `,"recovered":true`...)
	}
	if v.Compact {
		b = append(b, `,"compact":true`...)
	}
	if v.Flood {
		b = append(b, `,"flood":true`...)
	}
	b = intOmit(b, 0, `"late_ms":`, v.LateMs)
	var err error
	if v.Alert != nil {
		if b, err = appendReflect(append(b, `,"alert":`...), v.Alert); err != nil {
			return b, err
		}
	}
	if v.Inventory != nil {
		if b, err = appendReflect(append(b, `,"inventory":`...), v.Inventory); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

func appendJoin(b []byte, k *JoinKeys) []byte {
	o := len(b)
	b = append(b, '{')
	b = strOmit(b, o, `"traceparent":`, k.TraceParent)
	b = strOmit(b, o, `"agent_name":`, k.AgentName)
	if len(k.Sessions) != 0 {
		b = appendStringMap(key(b, o, `"session":`), k.Sessions)
	}
	if len(k.ToolCalls) != 0 {
		b = appendStringMap(key(b, o, `"tool_call":`), k.ToolCalls)
	}
	if len(k.Markers) != 0 {
		b = appendStringMap(key(b, o, `"marker":`), k.Markers)
	}
	return append(b, '}')
}

func appendToolCall(b []byte, t *ToolCall) []byte {
	o := len(b)
	b = append(b, '{')
	b = strOmit(b, o, `"decision":`, t.Decision)
	b = strOmit(b, o, `"decision_source":`, t.DecisionSource)
	if t.Success != nil {
		b = strconv.AppendBool(key(b, o, `"success":`), *t.Success)
	}
	b = intOmit(b, o, `"duration_ms":`, t.DurationMs)
	b = strOmit(b, o, `"command":`, t.Command)
	if len(t.FilePaths) != 0 {
		b = appendStrings(key(b, o, `"file_paths":`), t.FilePaths)
	}
	return append(b, '}')
}

// key appends k ("name":) after a comma unless it is the first member of the object whose
// '{' is at b[open]; open 0 means the object already has a member.
func key(b []byte, open int, k string) []byte {
	if open == 0 || len(b) != open+1 {
		b = append(b, ',')
	}
	return append(b, k...)
}

// strOmit writes an omitempty string member.
func strOmit(b []byte, open int, k, s string) []byte {
	if s == "" {
		return b
	}
	return appendString(key(b, open, k), s)
}

// intOmit writes an omitempty integer member.
func intOmit(b []byte, open int, k string, n int64) []byte {
	if n == 0 {
		return b
	}
	return strconv.AppendInt(key(b, open, k), n, 10)
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendStringMap and appendCounts write a map with its keys sorted, as encoding/json does.
func appendStringMap(b []byte, m map[string]string) []byte {
	return appendSortedMap(b, m, appendString)
}

func appendCounts(b []byte, m map[string]uint64) []byte {
	return appendSortedMap(b, m, func(b []byte, n uint64) []byte { return strconv.AppendUint(b, n, 10) })
}

// appendSortedMap writes m's members in the order of their keys, each value by appendValue.
func appendSortedMap[V any](b []byte, m map[string]V, appendValue func([]byte, V) []byte) []byte {
	var stack [16]string // the maps written are small: no allocation for their keys
	keys := stack[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendValue(append(appendString(b, k), ':'), m[k])
	}
	return append(b, '}')
}

// appendReflect writes a rare group through the reflection encoder, with AppendJSON's flags.
func appendReflect(b []byte, v any) ([]byte, error) {
	return segjson.Append(b, v, jsonFlags)
}

// appendString writes s as a JSON string exactly as encoding/json does without HTML escaping
// (internal/jsonstr, the one escaping every hand-written encoder shares).
func appendString(b []byte, s string) []byte {
	return jsonstr.Append(b, s)
}
