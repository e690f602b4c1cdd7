package ocsf

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/proto"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.jsonl")

// samples are the native golden records of package proto (../testdata/golden): one of every
// record kind, as the sensor writes them.
func samples(t testing.TB) map[string]*proto.Event {
	t.Helper()
	files, err := filepath.Glob("../testdata/golden/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no native samples: %v", err)
	}
	out := map[string]*proto.Event{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var e proto.Event
		if err := proto.UnmarshalJSON(b, &e); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".json")] = &e
	}
	return out
}

// wantClass is each sample's class and activity.
var wantClass = map[string][2]int{
	"exec": {1007, 1}, "exec_memfd": {1007, 1}, "exec_traceparent": {1007, 1}, "exec_unbound": {1007, 1},
	"fork": {1007, 1}, "exit": {1007, 2},
	"open": {1001, 14}, "open_denied": {1001, 14}, "open_file_path": {1001, 14}, "open_merged": {1001, 14},
	"rename": {1001, 5}, "unlink_failed": {1001, 4}, "chmod_setid": {1001, 7}, "symlink": {1001, 1},
	"truncate":     {1001, 3},
	"connect_ipv4": {4001, 1}, "connect_ipv6": {4001, 4}, "connect_unix": {4001, 1}, "send_udp": {4001, 6},
	"alert":        {2004, 1},
	"agent_prompt": {0, 99}, "agent_tool_call": {0, 99}, "agent_api_request": {0, 99}, "agent_untrusted": {0, 99},
	"session": {0, 99}, "binding": {0, 99}, "inventory_mcp_server": {0, 99}, "lost": {0, 99},
}

func line(t testing.TB, e *proto.Event) []byte {
	t.Helper()
	b, err := AppendLine(nil, e, "test")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(b, []byte("\n")) || bytes.Count(b, []byte("\n")) != 1 {
		t.Fatalf("not one line: %q", b)
	}
	return b
}

func decode(t testing.TB, b []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, b)
	}
	return m
}

// schema is testdata/required.json, what OCSF 1.8.0 requires of the classes and objects Vigil
// writes, extracted from ocsf/ocsf-schema at tag 1.8.0 (commit
// 6fa6499a0f8c9f449d342816e90e5f687c224b0a) by testdata/extract_required.py from
// events/base_event.json, events/system/{system,process_activity,file_activity}.json,
// events/network/{network,network_activity}.json,
// events/findings/{finding,detection_finding}.json, profiles/{host,ai_operation}.json,
// objects/*.json and dictionary.json.
type schema struct {
	Commit  string
	Classes map[string]struct {
		Name        string
		CategoryUID int `json:"category_uid"`
		Required    map[string]string
		ActivityID  []int `json:"activity_id"`
		SeverityID  []int `json:"severity_id"`
		StatusID    []int `json:"status_id"`
	}
	Objects map[string]struct {
		Required    map[string]string
		Constraints struct {
			AtLeastOne []string `json:"at_least_one"`
		}
	}
}

func loadSchema(t *testing.T) schema {
	b, err := os.ReadFile("testdata/required.json")
	if err != nil {
		t.Fatal(err)
	}
	var s schema
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// objectTypes are the object types of the attributes Vigil writes, where the dictionary
// gives them (checked against required.json's types of the required ones).
var objectTypes = map[string]string{
	"metadata": "metadata", "product": "product", "device": "device", "actor": "actor",
	"process": "process", "parent_process": "process", "file": "file", "file_result": "file",
	"hashes": "fingerprint", "user": "user", "owner": "user", "groups": "group",
	"dst_endpoint": "network_endpoint", "connection_info": "network_connection_info",
	"finding_info": "finding_info", "analytic": "analytic", "message_context": "message_context",
	"application": "application",
}

// kindOf is the JSON kind of an OCSF type.
func kindOf(typ string) string {
	if strings.HasSuffix(typ, "[]") {
		return "array"
	}
	switch typ {
	case "integer_t", "long_t", "port_t", "timestamp_t", "float_t":
		return "number"
	case "boolean_t":
		return "bool"
	}
	if strings.HasSuffix(typ, "_t") {
		return "string"
	}
	return "object"
}

func jsonKind(v any) string {
	switch v.(type) {
	case json.Number:
		return "number"
	case string:
		return "string"
	case bool:
		return "bool"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "null"
}

// checkObject checks obj, of OCSF type typ, and the objects in it (unmapped aside: it is
// OCSF's free-form object).
func checkObject(t *testing.T, s schema, where, typ string, obj map[string]any) {
	t.Helper()
	o, ok := s.Objects[typ]
	if !ok {
		t.Fatalf("%s: object %s not in required.json", where, typ)
	}
	for attr, at := range o.Required {
		v, ok := obj[attr]
		if !ok {
			t.Errorf("%s (%s): required %s missing", where, typ, attr)
		} else if jsonKind(v) != kindOf(at) {
			t.Errorf("%s.%s: %s, want %s (%s)", where, attr, jsonKind(v), kindOf(at), at)
		}
	}
	if c := o.Constraints.AtLeastOne; len(c) > 0 && !slices.ContainsFunc(c, func(a string) bool { _, ok := obj[a]; return ok }) {
		t.Errorf("%s (%s): none of %v", where, typ, c)
	}
	for attr, v := range obj {
		sub, ok := objectTypes[attr]
		if !ok {
			continue
		}
		switch v := v.(type) {
		case map[string]any:
			checkObject(t, s, where+"."+attr, sub, v)
		case []any:
			for i, x := range v {
				checkObject(t, s, fmt.Sprintf("%s.%s[%d]", where, attr, i), sub, x.(map[string]any))
			}
		}
	}
}

func num(t *testing.T, m map[string]any, key string) int64 {
	t.Helper()
	n, ok := m[key].(json.Number)
	if !ok {
		t.Fatalf("%s: %v is not a number", key, m[key])
	}
	i, err := n.Int64()
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return i
}

// Every class's required attributes, those of its category class and of the base event and
// those of the applied profiles, are present with the type the dictionary gives them, and so
// are the required attributes and constraints of every object written; the enum ids are
// values the schema defines, type_uid is class_uid × 100 + activity_id, and times are
// milliseconds since the epoch.
func TestRequiredAttributes(t *testing.T) {
	s := loadSchema(t)
	for name, e := range samples(t) {
		t.Run(name, func(t *testing.T) {
			want, ok := wantClass[name]
			if !ok {
				t.Fatalf("sample %s has no expected class: add it to wantClass", name)
			}
			ev := decode(t, line(t, e))
			class := num(t, ev, "class_uid")
			activity := num(t, ev, "activity_id")
			if class != int64(want[0]) || activity != int64(want[1]) {
				t.Fatalf("class %d activity %d, want %v", class, activity, want)
			}
			c, ok := s.Classes[fmt.Sprint(class)]
			if !ok {
				t.Fatalf("class %d not in required.json", class)
			}
			for attr, typ := range c.Required {
				v, ok := ev[attr]
				if !ok {
					t.Errorf("required %s missing", attr)
					continue
				}
				if jsonKind(v) != kindOf(typ) {
					t.Errorf("%s: %s, want %s (%s)", attr, jsonKind(v), kindOf(typ), typ)
				}
			}
			for attr, v := range ev {
				if sub, ok := objectTypes[attr]; ok {
					checkObject(t, s, attr, sub, v.(map[string]any))
				}
			}
			if num(t, ev, "category_uid") != int64(c.CategoryUID) {
				t.Errorf("category_uid %v, want %d", ev["category_uid"], c.CategoryUID)
			}
			if num(t, ev, "type_uid") != class*100+activity {
				t.Errorf("type_uid %v, want %d", ev["type_uid"], class*100+activity)
			}
			for key, ids := range map[string][]int{"activity_id": c.ActivityID, "severity_id": c.SeverityID, "status_id": c.StatusID} {
				if _, ok := ev[key]; ok && !slices.Contains(ids, int(num(t, ev, key))) {
					t.Errorf("%s %v not among the schema's %v", key, ev[key], ids)
				}
			}
			if got := num(t, ev, "time"); got != e.Timestamp.UnixMilli() {
				t.Errorf("time %d, want %d (ms of %s)", got, e.Timestamp.UnixMilli(), e.Timestamp)
			}
			md := ev["metadata"].(map[string]any)
			if md["version"] != Version || md["original_time"] != e.Timestamp.Format(proto.TimeLayout) {
				t.Errorf("metadata version %v original_time %v", md["version"], md["original_time"])
			}
			if p, ok := ev["process"].(map[string]any); ok && e.Process.Start != nil {
				if num(t, p, "created_time") != e.Process.Start.UnixMilli() {
					t.Errorf("process.created_time %v, want ms of %s", p["created_time"], e.Process.Start)
				}
			}
		})
	}
}

// derived are the native fields whose value is on the OCSF line in another form, each
// checked by the golden lines: the class and activity say event.category and event.type,
// protocol_ver_id network.type (ipv4: 4, ipv6: 6), status_id and status event.outcome,
// status_code vigil.errno (as a string),
// severity_id and severity the alert's severity (the word and ECS's number for it),
// cmd_line's arguments process.args_count, created_time process.start (in ms: checked by
// TestRequiredAttributes).
var derived = []string{
	"event.category", "event.type", "network.type", "event.outcome", "vigil.errno", "vigil.alert.severity",
	"event.severity", "process.args_count", "process.start",
}

// Nothing of a record is lost: every string and number on the native line, but the derived
// fields, is somewhere on the OCSF line (a string inside a string: the arguments are in
// cmd_line, quoted; @timestamp is metadata.original_time verbatim).
func TestNothingLost(t *testing.T) {
	for name, e := range samples(t) {
		native, err := proto.MarshalJSON(e)
		if err != nil {
			t.Fatal(err)
		}
		var strs, nums []string
		collect(decode(t, line(t, e)), &strs, &nums)
		all := strings.Join(strs, "\x00")
		want := decode(t, native)
		for _, p := range derived {
			remove(want, strings.Split(p, "."))
		}
		var wantStrs, wantNums []string
		collect(want, &wantStrs, &wantNums)
		for _, s := range wantStrs {
			if !strings.Contains(all, s) && !strings.Contains(all, strings.ReplaceAll(s, "'", `'\''`)) {
				t.Errorf("%s: %q lost", name, s)
			}
		}
		for _, n := range wantNums {
			if !slices.Contains(nums, n) {
				t.Errorf("%s: %s lost", name, n)
			}
		}
	}
}

// remove deletes the field at path of a decoded line and the objects it leaves empty.
func remove(tree map[string]any, path []string) {
	if len(path) == 1 {
		delete(tree, path[0])
		return
	}
	sub, ok := tree[path[0]].(map[string]any)
	if !ok {
		return
	}
	remove(sub, path[1:])
	if len(sub) == 0 {
		delete(tree, path[0])
	}
}

// pruneEmpty deletes the empty objects of a decoded line, which unmapped leaves out.
func pruneEmpty(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if x = pruneEmpty(x); x == nil {
				if _, isObj := v[k].(map[string]any); isObj {
					delete(v, k)
					continue
				}
			}
			v[k] = x
		}
		if len(v) == 0 {
			return nil
		}
	case []any:
		for i, x := range v {
			if _, isObj := x.(map[string]any); !isObj {
				v[i] = pruneEmpty(x)
			}
		}
	}
	return v
}

// walkMatchesNative checks that unmapped, with no field used, is the native line of e (empty
// objects aside): the walk writes what encoding/json writes.
func walkMatchesNative(t testing.TB, e *proto.Event) {
	t.Helper()
	native, err := proto.MarshalJSON(e)
	if err != nil {
		return // no native line, so AppendLine refuses it too
	}
	m := &mapping{e: e}
	m.use(pathsOf("vigil.schema")) // set by MarshalJSON when empty
	raw, ok, err := m.appendUnmapped(nil)
	if err != nil {
		t.Fatal(err)
	}
	var walked []byte = []byte("null")
	if ok {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("unmapped is not JSON: %v\n%s", err, raw)
		}
		if walked, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	want := decode(t, native)
	delete(want["vigil"].(map[string]any), "schema")
	want, _ = pruneEmpty(want).(map[string]any)
	wantJSON, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(walked) != string(wantJSON) {
		t.Errorf("walked record differs from its native line:\n got %s\nwant %s", walked, wantJSON)
	}
}

func TestWalkMatchesNative(t *testing.T) {
	for _, e := range samples(t) {
		walkMatchesNative(t, e)
	}
}

func collect(v any, strs, nums *[]string) {
	switch v := v.(type) {
	case string:
		*strs = append(*strs, v)
	case json.Number:
		*nums = append(*nums, v.String())
	case []any:
		for _, x := range v {
			collect(x, strs, nums)
		}
	case map[string]any:
		for _, x := range v {
			collect(x, strs, nums)
		}
	}
}

// The OCSF lines of the samples, one per record kind, reviewed by eye: go test -update
// rewrites testdata/golden.jsonl.
func TestGolden(t *testing.T) {
	all := samples(t)
	var got []byte
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range all {
			if !yield(k) {
				return
			}
		}
	}) {
		got = append(got, line(t, all[name])...)
	}
	const path = "testdata/golden.jsonl"
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("OCSF lines differ from %s (go test -update rewrites it after review)", path)
	}
}

// A record too long for one line is cut like the native line and still fits, marked
// truncated; the shortened native record is what is mapped.
func TestLineLimit(t *testing.T) {
	all := samples(t)
	exec := all["exec"]
	exec.Process.Args = append(exec.Process.Args, strings.Repeat("a", 200<<10), strings.Repeat("b", 100<<10))
	prompt := all["agent_prompt"]
	prompt.Vigil.Prompt.Text = strings.Repeat("p", 300<<10)
	for name, e := range map[string]*proto.Event{"exec": exec, "prompt": prompt} {
		b := line(t, e)
		if len(b) > proto.MaxLineBytes {
			t.Errorf("%s: %d bytes, limit %d", name, len(b), proto.MaxLineBytes)
		}
		ev := decode(t, b)
		if ev["metadata"].(map[string]any)["is_truncated"] != true {
			t.Errorf("%s: metadata.is_truncated not set", name)
		}
		if len(b) < proto.MaxLineBytes-4<<10 {
			t.Errorf("%s: %d bytes, cut more than needed", name, len(b))
		}
	}
}

// A record whose native line is too long is cut even where its OCSF line alone would fit (many
// short arguments, shorter in cmd_line than natively; a long dropped field): AppendLine, which
// skips the native line when its OCSF line shows it is short, writes what measuring the native
// line writes.
func TestNativeTooLong(t *testing.T) {
	all := samples(t)
	exec := all["exec"]
	for range 25000 {
		exec.Process.Args = append(exec.Process.Args, "a")
	}
	open := all["open"]
	open.Event.Type = append(open.Event.Type, strings.Repeat("t", 70<<10))
	for name, e := range map[string]*proto.Event{"exec": exec, "open": open} {
		want, err := appendFitted(nil, e, "test")
		if err != nil {
			t.Fatal(err)
		}
		if got := line(t, e); !bytes.Equal(got, want) {
			t.Errorf("%s: AppendLine differs from the line fitted to the native one", name)
		}
		if decode(t, want)["metadata"].(map[string]any)["is_truncated"] != true {
			t.Errorf("%s: not cut", name)
		}
	}
}

func TestCmdLine(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"go", "test", "./...", "-count=1"}, "go test ./... -count=1"},
		{[]string{"sh", "-c", "a && b > c"}, "sh -c 'a && b > c'"},
		{[]string{"echo", "it's", ""}, `echo 'it'\''s' ''`},
	} {
		if got := cmdLine(c.args); got != c.want {
			t.Errorf("cmdLine(%q) = %q, want %q", c.args, got, c.want)
		}
	}
}

// Whatever record a JSON line decodes to, AppendLine never panics and writes one JSON object
// within the line limit, or returns an error and leaves dst as it was.
func FuzzAppendLine(f *testing.F) {
	for _, e := range samples(f) {
		b, err := proto.MarshalJSON(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var e proto.Event
		if proto.UnmarshalJSON(in, &e) != nil {
			return
		}
		walkMatchesNative(t, &e)
		dst := []byte("x")
		out, err := AppendLine(dst, &e, "fuzz")
		if err != nil {
			if len(out) != 1 {
				t.Fatalf("error %v, and dst grew to %d bytes", err, len(out))
			}
			return
		}
		b := out[1:]
		if len(b) > proto.MaxLineBytes {
			t.Fatalf("%d bytes, limit %d", len(b), proto.MaxLineBytes)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("not a JSON object: %v", err)
		}
	})
}

// A record's times are written in UTC whatever zone they carry, as on the native line.
func TestTimesInUTC(t *testing.T) {
	for _, name := range []string{"alert", "exec"} {
		e := samples(t)[name]
		want := line(t, e)
		zone := time.FixedZone("UTC+5", 5*3600)
		e.Timestamp = e.Timestamp.In(zone)
		if e.Process != nil && e.Process.Start != nil {
			start := e.Process.Start.In(zone)
			e.Process.Start = &start
		}
		if got := line(t, e); !bytes.Equal(got, want) {
			t.Errorf("%s in UTC+5:\n%s\nwant\n%s", name, got, want)
		}
	}
}

// Readers of native lines can tell an OCSF line from a native one.
func TestCheckNative(t *testing.T) {
	for name, e := range samples(t) {
		native, err := proto.MarshalJSON(e)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckNative(native); err != nil {
			t.Errorf("%s native: %v", name, err)
		}
		if err := CheckNative(line(t, e)); err == nil {
			t.Errorf("%s OCSF: no error", name)
		}
	}
}

// BenchmarkAppendLine is the cost of one OCSF line against the native one (proto.AppendLine),
// per record kind: open, the most frequent record, exec, connect and an agent's tool call,
// one of each class the sensor writes most.
func BenchmarkAppendLine(b *testing.B) {
	all := samples(b)
	for _, kind := range []string{"open", "exec", "connect_ipv4", "agent_tool_call"} {
		e := all[kind]
		b.Run(kind+"/ocsf", func(b *testing.B) {
			var buf []byte
			for b.Loop() {
				var err error
				if buf, err = AppendLine(buf[:0], e, "bench"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(kind+"/native", func(b *testing.B) {
			var buf []byte
			for b.Loop() {
				var err error
				if buf, err = proto.AppendLine(buf[:0], e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
