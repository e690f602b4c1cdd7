package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Goals (issue 8) that gate the run. Strong keys: every marker event bound to its call and
// recall of the whole truth at least minStrongRecall. Every non-informational scenario: no
// provably wrong binding, nothing outside the agent trees, nothing of the sibling.
const minStrongRecall = 0.995

// Report is the whole run, with what it measured: the commit, the sensor's settings and the
// versions of everything involved.
type Report struct {
	Started        time.Time         `json:"started"`
	Seconds        float64           `json:"seconds"`
	InstallSeconds float64           `json:"npm_install_seconds"`
	Installed      bool              `json:"npm_installed"` // false: the cache already held the pinned versions
	BuildSeconds   float64           `json:"build_seconds"`
	Commit         string            `json:"commit"`   // git describe of the measured tree (-dirty: uncommitted changes)
	Settings       string            `json:"settings"` // what the sensor ran with
	Versions       map[string]string `json:"versions"` // agents, strace, kernel, Go
	Summary        []SummaryRow      `json:"summary"`
	Detections     AlertTotals       `json:"detections"`
	Scenarios      []ScenarioResult  `json:"scenarios"`
	Pass           bool              `json:"pass"`
}

// SummaryRow aggregates an agent's scenarios of one key set.
type SummaryRow struct {
	Agent         string  `json:"agent"`
	Set           string  `json:"set"`
	Scenarios     int     `json:"scenarios"`
	Calls         int     `json:"calls"`
	Counts        Counts  `json:"counts"`
	Capture       Capture `json:"capture"`
	ProvablyWrong int     `json:"provably_wrong"`
	BoundNoTruth  int     `json:"bound_no_truth"`
	Outside       int     `json:"outside_agent_trees"`
	Sibling       int     `json:"sibling_events"`
	LateBindings  int     `json:"late_bindings"`
	LateMsMax     int64   `json:"late_ms_max,omitempty"`
}

// gate decides a scenario: leaks and provably wrong bindings always fail; with strong keys,
// so does any marker event not bound to its call, or recall under minStrongRecall.
func (r *ScenarioResult) gate() {
	if r.OutsideAgentTrees > 0 {
		r.Errors = append(r.Errors, fmt.Sprintf("%d kernel events outside every agent tree", r.OutsideAgentTrees))
	}
	if r.SiblingEvents > 0 {
		r.Errors = append(r.Errors, fmt.Sprintf("%d events of the sibling process (outside the agent) were recorded", r.SiblingEvents))
	}
	if r.Forged > 0 {
		r.Errors = append(r.Errors, fmt.Sprintf("%d lines name a call forged through vigil hook from a tool shell", r.Forged))
	}

	ok := len(r.Errors) == 0
	if !r.Informational {
		for _, h := range r.FalseAlerts {
			ok = false
			r.Errors = append(r.Errors, fmt.Sprintf("false alert: %s raised %d time(s)%s on a scenario that does not call for it", h.Rule, h.Count, onCall(h.Call)))
		}
		for _, e := range r.Expectations {
			if e.Met() {
				continue
			}
			ok = false
			switch {
			case e.Elsewhere > 0:
				r.Errors = append(r.Errors, fmt.Sprintf("missed alert: %s was raised %d time(s), but not on the expected call %s", e.Expect, e.Elsewhere, e.Call))
			default:
				r.Errors = append(r.Errors, fmt.Sprintf("missed alert: %s was not raised%s", e.Expect, onCall(e.Call)))
			}
		}
		if r.ProvablyWrong > 0 {
			ok = false
			r.Errors = append(r.Errors, fmt.Sprintf("%d provably wrong bindings (%d to another call, %d before any call)",
				r.ProvablyWrong, r.Totals.Wrong, r.BoundBeforeCalls))
		}
		if r.StrongKeys && r.Totals.MarkerCorrect < r.Totals.Markers {
			ok = false
			r.Errors = append(r.Errors, fmt.Sprintf("marker recall %s < 100%%", pct(r.Totals.MarkerCorrect, r.Totals.Markers)))
		}
		if r.StrongKeys && float64(r.Totals.Correct) < minStrongRecall*float64(r.Totals.Truth) {
			ok = false
			r.Errors = append(r.Errors, fmt.Sprintf("recall %s < %.1f%%", pct(r.Totals.Correct, r.Totals.Truth), minStrongRecall*100))
		}
	}
	r.Pass = ok
}

// onCall names a tool call id in a message ("" for none).
func onCall(id string) string {
	if id == "" {
		return ""
	}
	return " on call " + id
}

// set names the scenario's key set in the summary: strong or fallback, and its kind.
func (r ScenarioResult) set() string {
	keys := keysWord(r.StrongKeys)
	if r.NoTelemetry {
		keys = "no telemetry"
	}
	if r.Set != "" {
		return r.Set + " (" + keys + ")"
	}
	return keys
}

func (rep *Report) summarize() {
	rep.Pass = len(rep.Scenarios) > 0
	idx := map[string]int{}
	for _, r := range rep.Scenarios {
		rep.Pass = rep.Pass && r.Pass
		if r.Informational {
			continue // in the scenario table only
		}
		k := r.Agent + "/" + r.set()
		i, ok := idx[k]
		if !ok {
			i = len(rep.Summary)
			idx[k] = i
			rep.Summary = append(rep.Summary, SummaryRow{Agent: r.Agent, Set: r.set()})
		}
		s := &rep.Summary[i]
		s.Scenarios++
		s.Calls += len(r.Calls)
		s.Counts.add(r.Totals)
		s.Capture.Recorded += r.CaptureTotal.Recorded
		s.Capture.Captured += r.CaptureTotal.Captured
		s.Capture.Missing += r.CaptureTotal.Missing
		s.Capture.Extra += r.CaptureTotal.Extra
		s.ProvablyWrong += r.ProvablyWrong
		s.BoundNoTruth += r.BoundNoTruth
		s.Outside += r.OutsideAgentTrees
		s.Sibling += r.SiblingEvents
		s.LateBindings += r.LateBindings
		s.LateMsMax = max(s.LateMsMax, r.LateMsMax)
	}
	sort.Slice(rep.Summary, func(i, j int) bool {
		if rep.Summary[i].Agent != rep.Summary[j].Agent {
			return rep.Summary[i].Agent < rep.Summary[j].Agent
		}
		return rep.Summary[i].Set > rep.Summary[j].Set
	})
	rep.Detections = alertTotals(rep.Scenarios)
}

func pct(n, d int) string {
	if d == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(d))
}

func (r ScenarioResult) keys() string {
	if r.Informational {
		return r.set() + " (info)"
	}
	return r.set()
}

func keysWord(strong bool) string {
	if strong {
		return "strong"
	}
	return "fallback"
}

func (rep *Report) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.md"), []byte(rep.markdown()), 0o644)
}

func (rep *Report) markdown() string {
	var sb strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&sb, format, a...) }
	w("# Vigil end-to-end attribution report\n\n")
	var vs []string
	for k, v := range rep.Versions {
		vs = append(vs, k+" "+v)
	}
	sort.Strings(vs)
	w("Run %s at commit `%s`, %.0f s in all (npm install %.0f s%s, build %.0f s). Result: **%s**.\n\n",
		rep.Started.UTC().Format("2006-01-02 15:04 UTC"), rep.Commit, rep.Seconds, rep.InstallSeconds,
		map[bool]string{true: "", false: ", cached"}[rep.Installed], rep.BuildSeconds, map[bool]string{true: "PASS", false: "FAIL"}[rep.Pass])
	w("- Sensor settings: %s\n- Versions: %s\n\n", rep.Settings, strings.Join(vs, "; "))
	w("How to read it (bench/e2e/README.md has the definitions). The ground truth does not come from Vigil: strace\n")
	w("recorded the agent's process tree, and markers placed in each scripted call say which call each recorded event\n")
	w("belongs to. *Markers* are the events that carry the call's token themselves; *truth* is every event of the\n")
	w("call's subtree plus its in-process opens. *Recall* = truth events Vigil captured and bound to their call (a missing\n")
	w("event counts against it); *precision* = of the marker events bound to some call, those bound to the right one.\n")
	w("*Provably wrong* = bound to another call, bound although it happened before any call, or a sibling event bound at\n")
	w("all. *Bound, no truth* = bound to a call but belonging to none by construction (the agent's own work): not\n")
	w("provably wrong, not verified. *Captured* = recorded events Vigil has a line for; *extra* = Vigil lines for the\n")
	w("recorded processes that strace did not record. Gates: no provably wrong binding, nothing outside the agent\n")
	w("trees or of the sibling; with strong keys also marker recall 100%% and recall ≥ %.1f%%.\n\n", minStrongRecall*100)

	w("## Summary\n\n| agent | key set | scenarios | calls | markers | marker recall | marker precision | truth | recall | provably wrong | unbound | bound, no truth | captured | missing | extra | late bindings (max ms) | outside | sibling |\n")
	w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range rep.Summary {
		c := s.Counts
		w("| %s | %s | %d | %d | %d | %s | %s | %d | %s | %d | %d | %d | %s | %d | %d | %d (%d) | %d | %d |\n", s.Agent, s.Set, s.Scenarios, s.Calls,
			c.Markers, pct(c.MarkerCorrect, c.Markers), pct(c.MarkerCorrect, c.MarkerCorrect+c.MarkerWrong), c.Truth, pct(c.Correct, c.Truth),
			s.ProvablyWrong, c.Unbound, s.BoundNoTruth, pct(s.Capture.Captured, s.Capture.Recorded), s.Capture.Missing, s.Capture.Extra,
			s.LateBindings, s.LateMsMax, s.Outside, s.Sibling)
	}
	d := rep.Detections
	w("\n## Detections\n\nThe starter rule pack with the shipped defaults. An expectation `rule@P.T` is met when an alert of the rule\n")
	w("carries the tool call id the mock gave prompt P, turn T (construction, not Vigil's binding); a plain `rule` when\n")
	w("the rule is raised anywhere on the scenario's agent trees. *Elsewhere* = expectations whose rule was also (or\n")
	w("only) raised on a call no expectation of the rule names, or on none. A *false alert* is an alert of a rule the\n")
	w("scenario does not expect; benign scenarios expect none.\n\n")
	w("| rule | scenarios | expected | raised on the right tool call | raised elsewhere | recall |\n|---|---|---|---|---|---|\n")
	for _, r := range d.Rules {
		w("| `%s` | %d | %d | %d | %d | %s |\n", r.Rule, r.Scenarios, r.Expected, r.Right, r.Elsewhere, pct(r.Right, r.Expected))
	}
	w("\nFalse alerts: %d on %d of %d benign scenarios; %d on %d of %d malicious scenarios (rules they do not expect).\n",
		d.BenignAlerts, d.BenignFlagged, d.BenignScenarios, d.MaliciousAlerts, d.MaliciousFlagged, d.MaliciousScenarios)
	w("\n## Scenarios\n\n| scenario | key set | result | calls | marker recall | truth | recall | provably wrong | unbound | bound, no truth | captured (missing / extra) | failed execve, not recorded | late (median / max ms) | outside | sibling (runs) | foreign / lost | agent s | s |\n")
	w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rep.Scenarios {
		c := r.Totals
		w("| %s/%s | %s | %s | %d | %s | %d | %s | %d | %d | %d | %s (%d / %d) | %d | %d (%d / %d) | %d | %d (%d) | %d / %d | %.1f | %.0f |\n", r.Agent, r.Name, r.keys(),
			map[bool]string{true: "pass", false: "**FAIL**"}[r.Pass], len(r.Calls), pct(c.MarkerCorrect, c.Markers), c.Truth,
			pct(c.Correct, c.Truth), r.ProvablyWrong, c.Unbound, r.BoundNoTruth, pct(r.CaptureTotal.Captured, r.CaptureTotal.Recorded),
			r.CaptureTotal.Missing, r.CaptureTotal.Extra, r.Capture[sysExecFailed].Recorded, r.LateBindings, r.LateMsMedian, r.LateMsMax, r.OutsideAgentTrees,
			r.SiblingEvents, r.SiblingRuns, r.ForeignTreeEvents, r.Lost, r.AgentSeconds, r.Seconds)
	}
	w("\n## Capture against the independent recorder, per kind\n\n| scenario | kind | recorded | captured | missing | extra |\n|---|---|---|---|---|---|\n")
	for _, r := range rep.Scenarios {
		kinds := make([]string, 0, len(r.Capture))
		for k := range r.Capture {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			c := r.Capture[k]
			w("| %s/%s | %s | %d | %d | %d | %d |\n", r.Agent, r.Name, k, c.Recorded, c.Captured, c.Missing, c.Extra)
		}
	}
	w("\n## Tool calls\n\n")
	for _, r := range rep.Scenarios {
		w("### %s/%s (%s)\n\n%s\n\n", r.Agent, r.Name, r.keys(), r.Description)
		if len(r.Sessions) > 0 {
			w("Sessions: %s\n\n", strings.Join(r.Sessions, ", "))
		}
		var bs []string
		for k, v := range r.Bindings {
			bs = append(bs, fmt.Sprintf("%s %d", k, v))
		}
		sort.Strings(bs)
		w("Bindings of the %d agent-tree lines: %s.\n\n", r.AgentTreeEvents, strings.Join(bs, ", "))
		w("| call | tool | prompt | what | ran (stream) | failed | telemetry | markers (bound right) | truth | correct | wrong | unbound | missing | bound elsewhere | how |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, c := range r.Calls {
			what := c.Command
			if what == "" {
				what = strings.Join(c.Files, " ")
			}
			what = strings.ReplaceAll(what, "|", `\|`)
			if len(what) > 70 {
				what = what[:70] + "…"
			}
			var how []string
			for k, v := range c.How {
				how = append(how, fmt.Sprintf("%s %d", k, v))
			}
			sort.Strings(how)
			k := c.Counts
			w("| `%s` | %s | %d | `%s` | %v | %v | %v | %d (%d) | %d | %d | %d | %d | %d | %d | %s |\n", c.ID, c.Tool, c.Prompt, what, c.InStream, c.IsError,
				c.Telemetry, k.Markers, k.MarkerCorrect, k.Truth, k.Correct, k.Wrong, k.Unbound, k.Missing, k.BoundElsewhere, strings.Join(how, ", "))
		}
		for _, c := range r.Calls {
			for _, m := range c.Missed {
				w("- `%s` %s\n", c.ID, strings.ReplaceAll(m, "|", `\|`))
			}
		}
		if r.Forged > 0 || r.Untrusted > 0 {
			w("- forged hook calls: %d lines name them; %d `agent.untrusted_telemetry` lines\n", r.Forged, r.Untrusted)
		}
		if len(r.AlertHits) > 0 || len(r.ExpectAlerts) > 0 {
			raised, expected := "none", "none"
			if len(r.AlertHits) > 0 {
				var each []string
				for _, h := range r.AlertHits {
					on := "no call"
					if h.Call != "" {
						on = "`" + h.Call + "`"
					}
					each = append(each, fmt.Sprintf("`%s` ×%d on %s", h.Rule, h.Count, on))
				}
				sort.Strings(each)
				raised = strings.Join(each, ", ")
			}
			if len(r.Expectations) > 0 {
				var each []string
				for _, e := range r.Expectations {
					on := ""
					if e.Call != "" {
						on = " (`" + e.Call + "`)"
					}
					each = append(each, fmt.Sprintf("`%s`%s %s", e.Expect, on, map[bool]string{true: "met", false: "**missed**"}[e.Met()]))
				}
				expected = strings.Join(each, ", ")
			}
			w("- alerts: %s (expected: %s)\n", raised, expected)
		}
		if r.PublicRequests > 0 {
			w("- public server: %d requests, %d bytes received in POST/PUT bodies%s\n", r.PublicRequests, r.PublicBytesIn,
				map[bool]string{true: ", the expected upload among them", false: ""}[r.Uploaded])
		}
		for _, a := range r.Ambiguous {
			w("- ambiguous subtree (markers of several calls): %s\n", a)
		}
		for _, e := range r.Errors {
			w("- **error:** %s\n", e)
		}
		for _, n := range r.Notes {
			w("- note: %s\n", n)
		}
		w("\n")
	}
	return sb.String()
}
