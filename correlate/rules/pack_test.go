package rules

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/vigil-sensor/vigil/proto"
)

// fixtureCall is the tool call every positive fixture's triggering lines are bound to.
const fixtureCall = "toolu_01PositiveCaseXk4Lm9Qz"

func loadPack(t testing.TB) *Set {
	t.Helper()
	set, err := Load("")
	if err != nil {
		t.Fatalf("load the starter pack: %v", err)
	}
	return set
}

// readJSONL reads the lines of a JSONL file of records.
func readJSONL(t testing.TB, path string) []*proto.Event {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []*proto.Event
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, proto.MaxLineBytes+1)
	for n := 1; sc.Scan(); n++ {
		var e proto.Event
		if err := proto.UnmarshalJSON(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s:%d: %v", path, n, err)
		}
		out = append(out, &e)
	}
	return out
}

// runAll observes events in order and returns every alert raised.
func runAll(d *Detector, events []*proto.Event) []*proto.Event {
	var alerts []*proto.Event
	for _, e := range events {
		alerts = append(alerts, d.Observe(e)...)
	}
	return alerts
}

// alsoFires reads testdata/<rule>/also: other pack rules that rightly fire on the positive
// fixture too (a write to ~/.bashrc is also a write outside the repository), one id a line.
func alsoFires(t *testing.T, dir string) []string {
	data, err := os.ReadFile(filepath.Join(dir, "also"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(data))
}

// TestPackFixtures runs the whole pack over every rule's fixtures: the positive fixture raises
// that rule (on the fixture's tool call, for event and tool_call rules) and no rule but those
// its `also` file names; the negative fixture raises nothing at all.
func TestPackFixtures(t *testing.T) {
	set := loadPack(t)
	byID := map[string]Rule{}
	for _, r := range set.Rules() {
		byID[r.ID] = r
	}
	dirs, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, dir := range dirs {
		if !dir.IsDir() {
			continue
		}
		id := dir.Name()
		rule, ok := byID[id]
		if !ok {
			t.Errorf("testdata/%s names no pack rule", id)
			continue
		}
		covered[id] = true
		t.Run(id, func(t *testing.T) {
			path := filepath.Join("testdata", id)
			alerts := runAll(NewDetector(set, Options{}), readJSONL(t, filepath.Join(path, "positive.jsonl")))
			fired := map[string]int{}
			for _, a := range alerts {
				fired[a.Rule.ID]++
				if a.Rule.ID != id {
					continue
				}
				if len(a.Vigil.Alert.Sequences) == 0 || a.Vigil.Alert.Scope != string(rule.Scope) {
					t.Errorf("alert without sequences or with scope %q: %+v", a.Vigil.Alert.Scope, a.Vigil.Alert)
				}
				if rule.Scope != ScopeSession && (a.GenAI.Tool == nil || a.GenAI.Tool.Call.ID != fixtureCall) {
					t.Errorf("alert on tool call %+v, want %s", a.GenAI.Tool, fixtureCall)
				}
			}
			if fired[id] == 0 {
				t.Errorf("positive fixture does not raise %s", id)
			}
			want := append([]string{id}, alsoFires(t, path)...)
			for other := range fired {
				if !slices.Contains(want, other) {
					t.Errorf("positive fixture also raises %s (not in %s/also)", other, path)
				}
			}
			for _, w := range want[1:] {
				if fired[w] == 0 {
					t.Errorf("%s/also names %s, which does not fire", path, w)
				}
			}
			for _, a := range runAll(NewDetector(set, Options{}), readJSONL(t, filepath.Join(path, "negative.jsonl"))) {
				t.Errorf("negative fixture raises %s: %v", a.Rule.ID, a.Vigil.Alert.Evidence)
			}
		})
	}
	for id := range byID {
		if !covered[id] {
			t.Errorf("pack rule %s has no testdata/%s/{positive,negative}.jsonl", id, id)
		}
	}
	if len(byID) < 20 {
		t.Errorf("the starter pack has %d rules, want at least 20", len(byID))
	}
}

// TestPackOnWorkflowSessions: the workflow fixture is not benign. Its Bash call runs
// `cat .env`, and a curl that no tool call explains uploads ~/.aws/credentials to
// 203.0.113.7. Exactly these four alerts, each on its lines.
func TestPackOnWorkflowSessions(t *testing.T) {
	alerts := runAll(NewDetector(loadPack(t), Options{}), readJSONL(t, filepath.Join("..", "workflow", "testdata", "sessions.jsonl")))
	var got []string
	for _, a := range alerts {
		var seqs []string
		for _, s := range a.Vigil.Alert.Sequences {
			seqs = append(seqs, strings.TrimSpace(strings.Repeat(" ", 0)+itoa(s)))
		}
		got = append(got, a.Rule.ID+" "+strings.Join(seqs, ","))
	}
	sort.Strings(got)
	want := []string{
		"cred.cloud_credentials_read 25",
		"cred.dotenv_read 8",
		"exfil.secret_passed_to_network_tool 24",
		"exfil.unexplained_secret_read_and_egress 25,26",
	}
	if !slices.Equal(got, want) {
		t.Errorf("alerts\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func itoa(n uint64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
