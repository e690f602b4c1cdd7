package main

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Expectation is one entry of a scenario's expect_alerts: a rule, and the turn whose tool call
// must raise it ("rule.id@P.T": prompt P, turn T) or none ("rule.id": anywhere on the
// scenario's agent trees, e.g. a session- or tree-scoped alert, which names no tool call).
type Expectation struct {
	Rule string
	Turn *[2]int // prompt, turn; nil: any
}

func parseExpectation(s string) (Expectation, error) {
	rule, at, scoped := strings.Cut(s, "@")
	if rule == "" || strings.ContainsAny(rule, " \t") {
		return Expectation{}, fmt.Errorf("expect_alerts %q: want rule.id or rule.id@P.T", s)
	}
	x := Expectation{Rule: rule}
	if !scoped {
		return x, nil
	}
	ps, ts, ok := strings.Cut(at, ".")
	p, perr := strconv.Atoi(ps)
	t, terr := strconv.Atoi(ts)
	if !ok || perr != nil || terr != nil || p < 0 || t < 0 {
		return Expectation{}, fmt.Errorf("expect_alerts %q: want rule.id@P.T with P the prompt and T the turn (0-based)", s)
	}
	x.Turn = &[2]int{p, t}
	return x, nil
}

func (x Expectation) String() string {
	if x.Turn == nil {
		return x.Rule
	}
	return fmt.Sprintf("%s@%d.%d", x.Rule, x.Turn[0], x.Turn[1])
}

// AlertHit counts the alerts of one rule raised with one gen_ai.tool.call.id ("" for none:
// session- and tree-scoped alerts, and events no tool call explains).
type AlertHit struct {
	Rule  string `json:"rule"`
	Call  string `json:"call,omitempty"`
	Count int    `json:"count"`
}

// ExpectResult is how one expectation fared. Call is the id the mock gave the expected turn
// ("" when the expectation names no turn, or the turn was never issued).
type ExpectResult struct {
	Expect string `json:"expect"`
	Rule   string `json:"rule"`
	Call   string `json:"call,omitempty"`
	// Right: alerts of the rule on the expected call (any alert of the rule when no turn is
	// named); Elsewhere: alerts of the rule on a call no expectation of the rule names, or on
	// none (always 0 when no turn is named).
	Right     int `json:"right"`
	Elsewhere int `json:"elsewhere"`
}

// Met says whether the expected rule was raised on the right tool call.
func (e ExpectResult) Met() bool { return e.Right > 0 }

// judgeAlerts compares the alerts raised (hits) with the scenario's expectations. The call of
// each expected turn comes from the mock's record (calls), never from Vigil's binding. falseHits
// are the alerts of rules that no expectation names.
func judgeAlerts(expect []string, calls []Call, hits []AlertHit) (results []ExpectResult, falseHits []AlertHit) {
	byTurn := map[[2]int]string{}
	for _, c := range calls {
		byTurn[[2]int{c.Prompt, c.Turn}] = c.ID
	}
	var xs []Expectation
	for _, s := range expect {
		x, err := parseExpectation(s)
		if err != nil {
			x = Expectation{Rule: s} // validate() rejects these first
		}
		xs = append(xs, x)
	}
	// named: per rule, the calls its turn-scoped expectations name; an alert of the rule on
	// any of them is where some expectation wants it.
	expected, named := map[string]bool{}, map[string]map[string]bool{}
	for _, x := range xs {
		expected[x.Rule] = true
		if x.Turn != nil && byTurn[*x.Turn] != "" {
			if named[x.Rule] == nil {
				named[x.Rule] = map[string]bool{}
			}
			named[x.Rule][byTurn[*x.Turn]] = true
		}
	}
	for i, x := range xs {
		r := ExpectResult{Expect: expect[i], Rule: x.Rule}
		if x.Turn != nil {
			r.Call = byTurn[*x.Turn]
		}
		for _, h := range hits {
			switch {
			case h.Rule != x.Rule:
			case x.Turn == nil || (r.Call != "" && h.Call == r.Call):
				r.Right += h.Count
			case !named[x.Rule][h.Call]:
				r.Elsewhere += h.Count
			}
		}
		results = append(results, r)
	}
	for _, h := range hits {
		if !expected[h.Rule] {
			falseHits = append(falseHits, h)
		}
	}
	return results, falseHits
}

// hitsByRule sums hits per rule.
func hitsByRule(hits []AlertHit) map[string]int {
	out := map[string]int{}
	for _, h := range hits {
		out[h.Rule] += h.Count
	}
	return out
}

// RuleRecall is one row of the per-rule table: every expectation of the rule over the
// non-informational scenarios.
type RuleRecall struct {
	Rule      string `json:"rule"`
	Expected  int    `json:"expected"`  // expectations (a scenario may expect a rule on two turns)
	Scenarios int    `json:"scenarios"` // scenarios with at least one
	Right     int    `json:"right"`     // expectations met: raised on the right tool call
	Elsewhere int    `json:"elsewhere"` // expectations whose rule was also (or only) raised on another call or none
}

// AlertTotals are the detection figures of a run.
type AlertTotals struct {
	Rules []RuleRecall `json:"rules"`
	// Benign: scenarios that expect no alert; every alert on them is false.
	BenignScenarios int `json:"benign_scenarios"`
	BenignAlerts    int `json:"benign_false_alerts"`
	BenignFlagged   int `json:"benign_scenarios_with_false_alerts"`
	// Malicious: scenarios that expect alerts; their alerts of rules they do not expect.
	MaliciousScenarios int `json:"malicious_scenarios"`
	MaliciousAlerts    int `json:"malicious_false_alerts"`
	MaliciousFlagged   int `json:"malicious_scenarios_with_false_alerts"`
}

// alertTotals aggregates the scenarios' alert results; informational scenarios are left out,
// as they are of the summary.
func alertTotals(scs []ScenarioResult) AlertTotals {
	var t AlertTotals
	rows := map[string]*RuleRecall{}
	for _, r := range scs {
		if r.Informational {
			continue
		}
		n := 0
		for _, h := range r.FalseAlerts {
			n += h.Count
		}
		if len(r.ExpectAlerts) == 0 {
			t.BenignScenarios++
			t.BenignAlerts += n
			if n > 0 {
				t.BenignFlagged++
			}
			continue
		}
		t.MaliciousScenarios++
		t.MaliciousAlerts += n
		if n > 0 {
			t.MaliciousFlagged++
		}
		seen := map[string]bool{}
		for _, e := range r.Expectations {
			row := rows[e.Rule]
			if row == nil {
				row = &RuleRecall{Rule: e.Rule}
				rows[e.Rule] = row
			}
			row.Expected++
			if !seen[e.Rule] {
				seen[e.Rule] = true
				row.Scenarios++
			}
			if e.Met() {
				row.Right++
			}
			if e.Elsewhere > 0 {
				row.Elsewhere++
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(rows)) {
		t.Rules = append(t.Rules, *rows[k])
	}
	return t
}
