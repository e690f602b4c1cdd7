package rules

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/proto"
)

func TestParseRulesRejects(t *testing.T) {
	for _, tt := range []struct {
		name, yaml, want string
	}{
		{"unknown key", "- id: a.b\n  name: n\n  severity: low\n  condition: 'true'\n  sevrity: high\n", `f.yaml:1: rule a.b: unknown key "sevrity" at line 5`},
		{"bad severity", "- id: a.b\n  name: n\n  severity: urgent\n  condition: 'true'\n", `f.yaml:1: rule a.b: severity "urgent"`},
		{"bad scope", "id: a.b\nname: n\nseverity: low\nscope: process\ncondition: 'true'\n", `f.yaml:1: rule a.b: scope "process"`},
		{"no condition", "- id: a.b\n  name: n\n  severity: low\n", "f.yaml:1: rule a.b: condition is missing"},
		{"no id", "- name: n\n  severity: low\n  condition: 'true'\n", "f.yaml:1: rule without id: id \"\""},
		{"bad id", "- id: A B\n  name: n\n  severity: low\n  condition: 'true'\n", `id "A B"`},
		{"duplicate", "- {id: a.b, name: n, severity: low, condition: 'true'}\n- {id: a.b, name: m, severity: low, condition: 'true'}\n", "f.yaml:2: rule a.b: id already used at line 1"},
		{"wrong type", "- id: a.b\n  name: n\n  severity: low\n  tags: credential_access\n  condition: 'true'\n", "f.yaml:1: rule a.b: yaml: unmarshal errors"},
		{"scalar", "just text\n", "f.yaml:1: want a list of rules or one rule"},
		{"not yaml", "- id: [\n", "f.yaml: yaml:"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRules("f.yaml", []byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestCompileRejects(t *testing.T) {
	for _, tt := range []struct {
		name, scope, cond, want string
	}{
		{"unknown field", "event", "event.file.pth == 'x'", "undefined field 'pth'"},
		{"not bool", "event", "event.file.path", "want a bool"},
		{"syntax", "event", "event.action ==", "Syntax error"},
		{"event in tool_call", "tool_call", "event.action == 'open'", "undeclared reference to 'event'"},
		{"tool rule without tool", "tool_call", "session.cwd != ''", "must read tool.*"},
		{"unknown function", "event", "shannon(event.file.path) > 3.0", "undeclared reference to 'shannon'"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile([]Rule{{ID: "x.y", Name: "n", Severity: SeverityLow, Scope: Scope(tt.scope), Condition: tt.cond, Enabled: true, Source: "r.yaml", Line: 3}})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "r.yaml:3: rule x.y: ") {
				t.Errorf("error %v, want r.yaml:3: rule x.y: … %q", err, tt.want)
			}
		})
	}
}

// TestLoadDirOverridesThePack: a rules_dir rule replaces the pack rule of its id, an
// `enabled: false` entry removes one, new rules are added; a bad file names itself.
func TestLoadDirOverridesThePack(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("10-local.yaml", `
- id: cred.dotenv_read
  name: .env read (local)
  severity: low
  condition: event.action == 'open' && basename(event.file.path) == '.env'
- id: privilege.sudo_run
  enabled: false
- id: local.curl
  name: curl ran
  severity: low
  condition: event.action == 'exec' && event.process.program == 'curl'
`)
	write("README.md", "not a rule file")
	set, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	rules := set.Rules()
	ids := map[string]Rule{}
	for _, r := range rules {
		ids[r.ID] = r
	}
	if r := ids["cred.dotenv_read"]; r.Severity != SeverityLow || r.FromPack() {
		t.Errorf("override not applied: %+v", r)
	}
	if _, ok := ids["privilege.sudo_run"]; ok {
		t.Error("disabled pack rule still loaded")
	}
	if _, ok := ids["local.curl"]; !ok {
		t.Error("local rule not added")
	}
	pack, _ := Pack()
	if len(rules) != len(pack) {
		t.Errorf("%d rules, want %d (pack - 1 disabled + 1 added)", len(rules), len(pack))
	}

	write("20-dup.yaml", "- {id: local.curl, name: again, severity: low, condition: 'true'}\n- {id: nope.none, enabled: false}\n")
	_, err = Load(dir)
	if err == nil || !strings.Contains(err.Error(), "20-dup.yaml:1: rule local.curl: id already defined at "+filepath.Join(dir, "10-local.yaml")) ||
		!strings.Contains(err.Error(), "rule nope.none: disables a rule that does not exist") {
		t.Errorf("Load = %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("a missing rules dir: %v", err)
	}
}

// openLine is a bound open of path by cat in call.
func openLine(seq uint64, path, call string) *proto.Event {
	return &proto.Event{
		Timestamp: time.Date(2025, 11, 24, 8, 36, 38, 0, time.UTC),
		Event:     proto.EventMeta{Action: proto.ActionOpen, Outcome: proto.OutcomeSuccess, Kind: "event", Category: "file", Dataset: "vigil.kernel", Sequence: seq},
		Process:   &proto.Process{Pid: 1235, Name: "cat", Executable: "/usr/bin/cat"},
		File:      &proto.File{Path: path, Access: "read"},
		GenAI: &proto.GenAI{Agent: &proto.GenAIAgent{Name: "claude-code"}, Conversation: &proto.GenAIConversation{ID: "s1"},
			Tool: &proto.GenAITool{Name: "Bash", Call: &proto.GenAIToolCall{ID: call}}},
		Vigil: proto.Vigil{Root: &proto.Root{Pid: 1200}, Correlation: proto.Correlation{Binding: proto.BindingTraceParent}},
	}
}

// TestRuntimeErrorsAreCounted: a rule failing at run time is a non-match, counted per rule,
// and the other rules still run.
func TestRuntimeErrorsAreCounted(t *testing.T) {
	set, err := Compile([]Rule{
		{ID: "bad.index", Name: "n", Severity: SeverityLow, Scope: ScopeEvent, Enabled: true, Condition: "event.action == 'open' && event.process.args[3] == 'x'"},
		{ID: "good.open", Name: "n", Severity: SeverityLow, Scope: ScopeEvent, Enabled: true, Condition: "event.action == 'open'"},
	})
	if err != nil {
		t.Fatal(err)
	}
	d := NewDetector(set, Options{})
	for i := range 3 {
		alerts := d.Observe(openLine(uint64(i+1), fmt.Sprintf("/x%d", i), "c1")) // a new file each time: no repeat
		if len(alerts) != 1 || alerts[0].Rule.ID != "good.open" {
			t.Fatalf("alerts %v", alerts)
		}
	}
	if st := d.Stats(); st.Errors != 3 || st.ErrorsByRule["bad.index"] != 3 || st.Panics != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestToolCallEvidenceIsWhatMatched: the evidence of a list rule is the values its exists()
// kept, each with its line; a tool_call rule fires once per call.
func TestToolCallEvidenceIsWhatMatched(t *testing.T) {
	set, err := Compile([]Rule{{ID: "t.env", Name: "n", Severity: SeverityHigh, Scope: ScopeToolCall, Enabled: true,
		Condition: "tool.secrets_read.exists(p, basename(p) == '.env')"}})
	if err != nil {
		t.Fatal(err)
	}
	d := NewDetector(set, Options{})
	if a := d.Observe(openLine(1, "/home/dev/.netrc", "c1")); a != nil {
		t.Fatalf("fired early: %v", a)
	}
	alerts := d.Observe(openLine(2, "/home/dev/app/.env", "c1"))
	if len(alerts) != 1 {
		t.Fatalf("alerts %v", alerts)
	}
	al := alerts[0].Vigil.Alert
	if !slices.Equal(al.Sequences, []uint64{2}) || !slices.Equal(al.Evidence, []string{"read /home/dev/app/.env"}) {
		t.Errorf("alert %+v, want only the .env read (sequence 2)", al)
	}
	if a := d.Observe(openLine(3, "/home/dev/app/sub/.env", "c1")); a != nil {
		t.Errorf("fired twice for one call: %v", a)
	}
	if a := d.Observe(openLine(4, "/home/dev/app/.env", "c2")); len(a) != 1 {
		t.Errorf("another call: %v", a)
	}
}

// TestStateIsBounded: calls past MaxCalls are forgotten and counted.
func TestStateIsBounded(t *testing.T) {
	d := NewDetector(loadPack(t), Options{MaxCalls: 2, MaxSessions: 1})
	for i, call := range []string{"c1", "c2", "c3", "c4"} {
		d.Observe(openLine(uint64(i+1), "/home/dev/app/x", call))
	}
	if st := d.Stats(); st.CallsEvicted != 2 || d.calls.len() != 2 {
		t.Errorf("evicted %d calls, holds %d; want 2 and 2", st.CallsEvicted, d.calls.len())
	}
}

// FuzzLoadRules: no rule file, however malformed, panics the parser or the compiler; what
// compiles also evaluates without a panic.
func FuzzLoadRules(f *testing.F) {
	files, _ := filepath.Glob("pack/*.yaml")
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("- {id: a, name: n, severity: low, condition: 'event.file.path.matches(\"(\")'}"))
	f.Add([]byte("id: a\nname: n\nseverity: low\nscope: tool_call\ncondition: tool.commands.exists(c, c in tool.files_written)\n"))
	events := []*proto.Event{openLine(1, "/home/dev/.aws/credentials", "c1"), openLine(2, "/tmp/x", "")}
	f.Fuzz(func(t *testing.T, data []byte) {
		rules, err := ParseRules("fuzz.yaml", data)
		if err != nil {
			return
		}
		set, err := Compile(rules)
		if err != nil {
			return
		}
		d := NewDetector(set, Options{})
		for _, e := range events {
			d.Observe(e)
		}
		if d.Stats().Panics != 0 {
			t.Fatalf("observing panicked with rules %q", data)
		}
	})
}

// An event rule alerts once per object and tool call: Claude's Read of .env is a stat (an
// O_PATH open, which reads nothing and raises nothing) and then several reads of the same file,
// as the e2e runs of the real CLI show. The same file in another call is a new alert.
func TestEventRuleAlertsOncePerObjectAndCall(t *testing.T) {
	d := NewDetector(loadPack(t), Options{})
	stat := openLine(1, "/home/dev/app/.env", "c1")
	stat.File.Access = "path"
	var events []*proto.Event
	events = append(events, stat)
	for seq := uint64(2); seq <= 4; seq++ {
		events = append(events, openLine(seq, "/home/dev/app/.env", "c1"))
	}
	events = append(events, openLine(5, "/home/dev/app/.env", "c2"), openLine(6, "/home/dev/app/.env.local", "c2"))
	var got []string
	for _, a := range runAll(d, events) {
		if a.Rule.ID == "cred.dotenv_read" {
			got = append(got, fmt.Sprint(a.Vigil.Alert.Sequences))
		}
	}
	if want := []string{"[2]", "[5]", "[6]"}; !slices.Equal(got, want) {
		t.Errorf("cred.dotenv_read raised on lines %v, want %v", got, want)
	}
	if st := d.Stats(); st.Repeats != 2 {
		t.Errorf("Stats().Repeats = %d, want 2 (lines 3 and 4)", st.Repeats)
	}
}
