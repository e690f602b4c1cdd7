package rules

import (
	"slices"

	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
)

// prefilter is what an event rule's condition requires of a line's outcome and of its access
// to its file, read from the condition's top-level conjuncts (never listed by hand) and taken
// out of its guard. Together with the action index (requiredActions) it decides those
// conjuncts with a few comparisons on facts computed once per line: the starter pack's
// credential rules all begin `event.action == 'open' && event.outcome == 'success' &&
// event.reads`, three guard closures each on every open before the path test that decides.
type prefilter struct {
	outcome    string // event.outcome must be this ("": any)
	notOutcome string // event.outcome must not be this ("": any)
	reads      bool   // event.reads must be true
	writes     bool   // event.writes must be true
}

// admits reports whether the line can satisfy the prefilter.
func (p *prefilter) admits(l *line) bool {
	o := l.e.Event.Outcome
	return (p.outcome == "" || o == p.outcome) && (p.notOutcome == "" || o != p.notOutcome) &&
		(!p.reads || l.reads) && (!p.writes || l.writes)
}

// splitPrefilter returns the prefilter of an event rule's condition and the conjuncts it
// leaves to the guard. The action tests it drops are those requiredActions indexes the rule
// by: a line of another action never reaches the rule.
func splitPrefilter(e celast.Expr) (prefilter, []celast.Expr) {
	var p prefilter
	var rest []celast.Expr
	for _, c := range conjuncts(e, nil) {
		switch {
		case isEventField(c, "reads"):
			p.reads = true
		case isEventField(c, "writes"):
			p.writes = true
		case isActionTest(c):
		default:
			if lit, eq, ok := outcomeTest(c); ok && eq && p.outcome == "" {
				p.outcome = lit
			} else if ok && !eq && p.notOutcome == "" {
				p.notOutcome = lit
			} else {
				rest = append(rest, c)
			}
		}
	}
	return p, rest
}

// conjuncts appends the operands of e's top-level && (e itself when it is none) to out.
func conjuncts(e celast.Expr, out []celast.Expr) []celast.Expr {
	if e.Kind() == celast.CallKind && e.AsCall().FunctionName() == operators.LogicalAnd {
		for _, a := range e.AsCall().Args() {
			out = conjuncts(a, out)
		}
		return out
	}
	return append(out, e)
}

// isActionTest reports whether e is `event.action == 'x'` or `event.action in [...]` with
// literals: a conjunct requiredActions turns into the rule's place in the action index.
func isActionTest(e celast.Expr) bool {
	if e.Kind() != celast.CallKind || requiredActions(e) == nil {
		return false
	}
	args := e.AsCall().Args()
	return slices.ContainsFunc(args, isEventAction)
}

// outcomeTest reads `event.outcome == 'x'` (eq) or `event.outcome != 'x'`.
func outcomeTest(e celast.Expr) (lit string, eq, ok bool) {
	if e.Kind() != celast.CallKind {
		return "", false, false
	}
	call := e.AsCall()
	fn := call.FunctionName()
	if fn != operators.Equals && fn != operators.NotEquals {
		return "", false, false
	}
	args := call.Args()
	for i := range 2 {
		if isEventField(args[i], "outcome") {
			if s := literal(args[1-i]); s != nil {
				return *s, fn == operators.Equals, true
			}
		}
	}
	return "", false, false
}
