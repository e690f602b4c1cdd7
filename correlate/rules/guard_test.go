package rules

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/vigil-sensor/vigil/proto"
)

// TestGuardsNeverHideAMatch evaluates every pack event rule's CEL program on every kernel line
// of the fixtures, guard or not: wherever the condition is true, the action index, the
// prefilter and the guard must let the line through.
func TestGuardsNeverHideAMatch(t *testing.T) {
	set := loadPack(t)
	files, _ := filepath.Glob("testdata/*/*.jsonl")
	files = append(files, filepath.Join("..", "workflow", "testdata", "sessions.jsonl"))
	matches, guarded := 0, 0
	for _, r := range set.rules {
		if r.Scope == ScopeEvent && (r.guard != nil || r.pre != prefilter{}) {
			guarded++
		}
	}
	for _, f := range files {
		d := NewDetector(set, Options{})
		for _, e := range readJSONL(t, f) {
			if e.Event.Dataset == "vigil.kernel" {
				for _, r := range set.rules {
					if r.Scope != ScopeEvent {
						continue
					}
					d.act = activation{event: e, tool: noCall, prompt: noPrompt, session: noSession}
					if d.eval(r) {
						matches++
						if !reaches(set, r, lineOf(e)) {
							t.Errorf("%s: rule %s matches line %d but its index, prefilter or guard says it cannot", f, r.ID, e.Event.Sequence)
						}
					}
				}
			}
			d.Observe(e)
		}
	}
	if matches == 0 {
		t.Fatal("no event rule matched any fixture line: the test tests nothing")
	}
	t.Logf("%d matches checked; %d event rules have a guard", matches, guarded)
}

// TestGuardSemantics checks the guard of small conditions against their CEL value.
func TestGuardSemantics(t *testing.T) {
	ev := &proto.Event{Event: proto.EventMeta{Action: "open", Outcome: "success"},
		File:    &proto.File{Path: "/home/dev/.ssh/id_rsa", Access: "read"},
		Process: &proto.Process{Executable: "/usr/bin/python3", Args: []string{"python3", "/usr/local/bin/aws", "s3"}}}
	for cond, want := range map[string]bool{
		"event.action == 'open'":                                                  true,
		"event.action != 'open'":                                                  false,
		"!(event.action in ['exec', 'open'])":                                     false,
		"home_rel(event.file.path).startsWith('.ssh/')":                           true,
		"basename(event.file.path) in ['id_rsa'] && event.writes":                 false,
		"event.process.program == 'aws' || event.file.access == 'write'":          true,
		"glob(event.file.path, '/home/*/.ssh/*') && secret_path(event.file.path)": true,
		"under(event.file.path, '/etc')":                                          false,
		"!own_client(event.file.path, event.process.program)":                     true, // aws is no ssh client
		"own_client(event.file.path, 'ssh')":                                      true,
		"event.action == 'open' && event.outcome == 'failure'":                    false,
		"event.outcome != 'success' && event.reads":                               false,
		"event.reads && event.outcome == 'success' && event.outcome != 'failure'": true,
		"event.writes && event.outcome != 'failure'":                              false,
	} {
		set, err := Compile([]Rule{{ID: "g", Name: "g", Severity: SeverityLow, Scope: ScopeEvent, Condition: cond, Enabled: true}})
		if err != nil {
			t.Fatal(err)
		}
		r := set.rules[0]
		if r.guard == nil && r.pre == (prefilter{}) && r.actions == nil {
			t.Errorf("%s: no guard", cond)
			continue
		}
		if reaches(set, r, lineOf(ev)) != want {
			t.Errorf("guard(%s) = %v, want %v", cond, !want, want)
		}
	}
}

// reaches reports whether judgeKernel evaluates event rule r's program on l: the action index
// lists it for l's action, and its prefilter and guard admit l.
func reaches(set *Set, r *compiled, l *line) bool {
	listed := slices.Contains(set.byAction[l.e.Event.Action], r) || slices.Contains(set.anyAction, r)
	return listed && r.admits(l)
}

func lineOf(e *proto.Event) *line {
	var l line
	l.reset(e)
	return &l
}
