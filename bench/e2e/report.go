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

// minRecall gates strong-key scenarios.
const minRecall = 0.995

// Report is the whole run.
type Report struct {
	Started        time.Time         `json:"started"`
	Seconds        float64           `json:"seconds"`
	InstallSeconds float64           `json:"npm_install_seconds"`
	Installed      bool              `json:"npm_installed"` // false: the cache already held the pinned versions
	BuildSeconds   float64           `json:"build_seconds"`
	Versions       map[string]string `json:"versions"`
	Summary        []SummaryRow      `json:"summary"`
	Scenarios      []ScenarioResult  `json:"scenarios"`
	Pass           bool              `json:"pass"`
}

// SummaryRow aggregates an agent's scenarios, strong-key and fallback apart.
type SummaryRow struct {
	Agent      string `json:"agent"`
	StrongKeys bool   `json:"strong_keys"`
	Scenarios  int    `json:"scenarios"`
	Calls      int    `json:"calls"`
	Counts     Counts `json:"counts"`
	Outside    int    `json:"outside_agent_trees"`
	Sibling    int    `json:"sibling_events"`
	Unbound    int    `json:"unbound_in_tree"`
	TreeEvents int    `json:"agent_tree_events"`
}

// gate decides a scenario: leaks always fail; attribution fails only with strong keys.
func (r *ScenarioResult) gate() {
	ok := len(r.Errors) == 0 && r.OutsideAgentTrees == 0 && r.SiblingEvents == 0
	if r.OutsideAgentTrees > 0 {
		r.Errors = append(r.Errors, fmt.Sprintf("%d kernel events outside every agent tree", r.OutsideAgentTrees))
	}
	if r.SiblingEvents > 0 {
		r.Errors = append(r.Errors, fmt.Sprintf("%d events of the sibling process (outside the agent) were recorded", r.SiblingEvents))
	}
	if r.StrongKeys && !r.Informational {
		if r.Totals.GroundTruth == 0 || float64(r.Totals.Correct) < minRecall*float64(r.Totals.GroundTruth) {
			ok = false
			r.Errors = append(r.Errors, fmt.Sprintf("recall %s < %.1f%%", pct(r.Totals.Correct, r.Totals.GroundTruth), minRecall*100))
		}
		if r.Totals.Wrong > 0 {
			ok = false
			r.Errors = append(r.Errors, fmt.Sprintf("%d events bound to the wrong call", r.Totals.Wrong))
		}
	}
	r.Pass = ok
}

func (rep *Report) summarize() {
	rep.Pass = len(rep.Scenarios) > 0
	idx := map[string]int{}
	for _, r := range rep.Scenarios {
		rep.Pass = rep.Pass && r.Pass
		if r.Informational {
			continue // in the scenario table only
		}
		k := fmt.Sprintf("%s/%v", r.Agent, r.StrongKeys)
		i, ok := idx[k]
		if !ok {
			i = len(rep.Summary)
			idx[k] = i
			rep.Summary = append(rep.Summary, SummaryRow{Agent: r.Agent, StrongKeys: r.StrongKeys})
		}
		s := &rep.Summary[i]
		s.Scenarios++
		s.Calls += len(r.Calls)
		s.Counts.add(r.Totals)
		s.Outside += r.OutsideAgentTrees
		s.Sibling += r.SiblingEvents
		s.Unbound += r.UnboundInTree
		s.TreeEvents += r.AgentTreeEvents
	}
	sort.Slice(rep.Summary, func(i, j int) bool {
		if rep.Summary[i].Agent != rep.Summary[j].Agent {
			return rep.Summary[i].Agent < rep.Summary[j].Agent
		}
		return rep.Summary[i].StrongKeys && !rep.Summary[j].StrongKeys
	})
}

func pct(n, d int) string {
	if d == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(d))
}

func (r ScenarioResult) keys() string {
	if r.Informational {
		return keysWord(r.StrongKeys) + " (info)"
	}
	return keysWord(r.StrongKeys)
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
		vs = append(vs, k+"@"+v)
	}
	sort.Strings(vs)
	w("Run %s, %.0f s in all (npm install %.0f s%s, build %.0f s). Agents: %s. Result: **%s**.\n\n",
		rep.Started.UTC().Format("2006-01-02 15:04 UTC"), rep.Seconds, rep.InstallSeconds,
		map[bool]string{true: "", false: ", cached"}[rep.Installed], rep.BuildSeconds, strings.Join(vs, ", "), map[bool]string{true: "PASS", false: "FAIL"}[rep.Pass])
	w("How to read it (definitions in bench/e2e/README.md): a tool call's *ground truth* is every kernel event of\n")
	w("its shell and the shell's descendants (from the JSONL's own process tree), or for in-process file tools the\n")
	w("agent's opens of the call's files while the call ran (mock hand-out → result). *Recall* = ground-truth events\n")
	w("bound to their call; *precision* = of the ground-truth events bound to some call, those bound to the right one;\n")
	w("*outside* = kernel events with no agent root, *sibling* = events of the same commands run outside the agent\n")
	w("(both must be 0); *unbound* = agent-tree events bound to no call (startup, git, the agent's own I/O).\n")
	w("Strong keys: Claude with CLAUDE_CODE_PROPAGATE_TRACEPARENT=1; Codex with traces exported. Only strong-key\n")
	w("scenarios gate the run (recall ≥ %.1f%%, no wrong binding).\n\n", minRecall*100)

	w("## Summary\n\n| agent | keys | scenarios | calls | ground truth | recall | precision | wrong | unbound (in GT) | outside | sibling | agent-tree events | unbound (tree) |\n")
	w("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range rep.Summary {
		w("| %s | %s | %d | %d | %d | %s | %s | %d | %d | %d | %d | %d | %d |\n", s.Agent, keysWord(s.StrongKeys), s.Scenarios, s.Calls,
			s.Counts.GroundTruth, pct(s.Counts.Correct, s.Counts.GroundTruth), pct(s.Counts.Correct, s.Counts.Correct+s.Counts.Wrong),
			s.Counts.Wrong, s.Counts.Unbound, s.Outside, s.Sibling, s.TreeEvents, s.Unbound)
	}
	w("\n## Scenarios\n\n| scenario | keys | result | calls | ground truth | recall | precision | wrong | unbound | extra | outside | sibling (runs) | foreign / lost | bindings in tree | s |\n")
	w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rep.Scenarios {
		var bs []string
		for k, v := range r.Bindings {
			bs = append(bs, fmt.Sprintf("%s %d", k, v))
		}
		sort.Strings(bs)
		w("| %s/%s | %s | %s | %d | %d | %s | %s | %d | %d | %d | %d | %d (%d) | %d / %d | %s | %.0f |\n", r.Agent, r.Name, r.keys(),
			map[bool]string{true: "pass", false: "**FAIL**"}[r.Pass], len(r.Calls), r.Totals.GroundTruth,
			pct(r.Totals.Correct, r.Totals.GroundTruth), pct(r.Totals.Correct, r.Totals.Correct+r.Totals.Wrong), r.Totals.Wrong,
			r.Totals.Unbound, r.Totals.Extra, r.OutsideAgentTrees, r.SiblingEvents, r.SiblingRuns, r.ForeignTreeEvents, r.Lost, strings.Join(bs, ", "), r.Seconds)
	}
	w("\n## Tool calls\n\n")
	for _, r := range rep.Scenarios {
		w("### %s/%s (%s keys)\n\n%s\n\n", r.Agent, r.Name, r.keys(), r.Description)
		if len(r.Sessions) > 0 {
			w("Sessions: %s\n\n", strings.Join(r.Sessions, ", "))
		}
		w("| call | tool | prompt | what | ran (stream) | failed | telemetry | shells | GT | correct | wrong | unbound | extra | how |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
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
			w("| `%s` | %s | %d | `%s` | %v | %v | %v | %d | %d | %d | %d | %d | %d | %s |\n", c.ID, c.Tool, c.Prompt, what, c.InStream, c.IsError,
				c.Telemetry, c.Shells, c.Counts.GroundTruth, c.Counts.Correct, c.Counts.Wrong, c.Counts.Unbound, c.Counts.Extra, strings.Join(how, ", "))
		}
		for _, c := range r.Calls {
			for _, m := range c.Missed {
				w("- `%s` %s\n", c.ID, strings.ReplaceAll(m, "|", `\|`))
			}
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
