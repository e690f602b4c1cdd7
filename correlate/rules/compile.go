package rules

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"

	"github.com/vigil-sensor/vigil/proto"
)

// compiled is a rule ready to evaluate.
type compiled struct {
	Rule
	prg cel.Program
	// actions, for an event rule whose condition requires event.action to be one of a few
	// values, are those values: the rule is only evaluated on lines with one of them. nil:
	// every line.
	actions []string
	// pre and guard, for an event rule, are a necessary condition checked in Go before the
	// CEL program runs: the prefilter's comparisons (prefilter.go), then the guard of the
	// conjuncts it leaves (guard.go; nil: none).
	pre   prefilter
	guard func(*line) bool
	// deps are the aggregates (bits aggX) and scalars (depMeta) of its scope the condition
	// reads: a tool_call or session rule is evaluated again only when one of them changed.
	deps uint32
	// evidence lists, per aggregate the condition reads, which of its values an alert shows.
	evidence []evidenceSpec
	// techniques are the rule's ATT&CK technique ids.
	techniques []string
}

// evidenceSpec is one aggregate an alert's evidence comes from: all of its values, or those
// the filter keeps (the predicate of the condition's exists() over it).
type evidenceSpec struct {
	agg    int
	filter cel.Program
}

// Set is a compiled rule set. It is immutable and shared by every Detector built from it.
type Set struct {
	rules []*compiled
	// byAction indexes the event rules by the actions they need; anyAction are the event
	// rules that need none.
	byAction  map[string][]*compiled
	anyAction []*compiled
	toolCall  []*compiled
	session   []*compiled
}

// Rules are the set's rules, in load order.
func (s *Set) Rules() []Rule {
	out := make([]Rule, len(s.rules))
	for i, c := range s.rules {
		out[i] = c.Rule
	}
	return out
}

var (
	envOnce sync.Once
	envs    map[Scope]*cel.Env
	envErr  error
)

// scopeEnv returns the (shared, immutable) CEL environment of a scope.
func scopeEnv(s Scope) (*cel.Env, error) {
	envOnce.Do(func() {
		envs = map[Scope]*cel.Env{}
		for scope := range scopeVars {
			env, err := newEnv(scope)
			if err != nil {
				envErr = err
				return
			}
			envs[scope] = env
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	return envs[s], nil
}

// Compile type-checks and plans every rule. Every rule that does not compile is reported,
// each error naming the file, line and rule; nothing is returned then.
func Compile(rules []Rule) (*Set, error) {
	s := &Set{byAction: map[string][]*compiled{}}
	var errs []error
	for _, r := range rules {
		if !r.Enabled {
			continue
		}
		c, err := compileRule(r)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.Pos(), err))
			continue
		}
		s.rules = append(s.rules, c)
		switch {
		case r.Scope == ScopeToolCall:
			s.toolCall = append(s.toolCall, c)
		case r.Scope == ScopeSession:
			s.session = append(s.session, c)
		case c.actions == nil:
			s.anyAction = append(s.anyAction, c)
		default:
			for _, a := range c.actions {
				s.byAction[a] = append(s.byAction[a], c)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// compileRule compiles one rule's condition and works out when it needs evaluating and what
// its evidence is.
func compileRule(r Rule) (*compiled, error) {
	env, err := scopeEnv(r.Scope)
	if err != nil {
		return nil, err
	}
	ast, iss := env.Compile(r.Condition)
	if iss.Err() != nil {
		return nil, fmt.Errorf("condition: %w", iss.Err())
	}
	if !ast.OutputType().IsExactType(types.BoolType) {
		return nil, fmt.Errorf("condition: is a %s, want a bool", ast.OutputType())
	}
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, fmt.Errorf("condition: plan: %w", err)
	}
	c := &compiled{Rule: r, prg: prg, techniques: r.Techniques()}
	native := ast.NativeRep()
	switch r.Scope {
	case ScopeEvent:
		c.actions = requiredActions(native.Expr())
		var rest []celast.Expr
		c.pre, rest = splitPrefilter(native.Expr())
		c.guard = guardAll(rest).fn
	case ScopeToolCall, ScopeSession:
		v := "tool"
		if r.Scope == ScopeSession {
			v = "session"
		}
		if c.deps, c.evidence, err = aggregateUse(env, native, v); err != nil {
			return nil, err
		}
		if c.deps == 0 {
			return nil, fmt.Errorf("condition: a %s rule must read %s.* (it is evaluated when %s.* changes)", r.Scope, v, v)
		}
	}
	return c, nil
}

// admits reports whether event rule c's condition can be true on l, a line of one of its
// actions: its prefilter and its guard pass.
func (c *compiled) admits(l *line) bool {
	return c.pre.admits(l) && (c.guard == nil || c.guard(l))
}

// requiredActions returns the actions a condition can only be true on, from its conjuncts
// `event.action == 'x'`, `event.action in ['x', 'y']`, `event.writes` (open and the file
// mutations) and `event.reads` (open), combined through && (intersection) and || (union); nil when it cannot tell.
func requiredActions(e celast.Expr) []string {
	if isEventField(e, "writes") {
		return writeActionList
	}
	if isEventField(e, "reads") {
		return []string{proto.ActionOpen}
	}
	if e.Kind() != celast.CallKind {
		return nil
	}
	call := e.AsCall()
	switch call.FunctionName() {
	case operators.LogicalOr:
		var all []string
		for _, arg := range call.Args() {
			a := requiredActions(arg)
			if a == nil {
				return nil
			}
			for _, x := range a {
				if !slices.Contains(all, x) {
					all = append(all, x)
				}
			}
		}
		return all
	case operators.LogicalAnd:
		var found []string
		for _, arg := range call.Args() {
			if a := requiredActions(arg); a != nil {
				if found != nil {
					a = slices.DeleteFunc(slices.Clone(a), func(x string) bool { return !slices.Contains(found, x) })
				}
				found = a
			}
		}
		return found
	case operators.Equals:
		args := call.Args()
		for i := range 2 {
			if isEventAction(args[i]) && args[1-i].Kind() == celast.LiteralKind {
				if s, ok := args[1-i].AsLiteral().(types.String); ok {
					return []string{string(s)}
				}
			}
		}
	case operators.In:
		args := call.Args()
		if isEventAction(args[0]) && args[1].Kind() == celast.ListKind {
			var out []string
			for _, el := range args[1].AsList().Elements() {
				if el.Kind() != celast.LiteralKind {
					return nil
				}
				s, ok := el.AsLiteral().(types.String)
				if !ok {
					return nil
				}
				out = append(out, string(s))
			}
			return out
		}
	}
	return nil
}

// isEventAction reports whether e is `event.action`.
func isEventAction(e celast.Expr) bool { return isEventField(e, "action") }

// isEventField reports whether e is `event.<name>`.
func isEventField(e celast.Expr, name string) bool {
	if e.Kind() != celast.SelectKind {
		return false
	}
	sel := e.AsSelect()
	return sel.FieldName() == name && !sel.IsTestOnly() && sel.Operand().Kind() == celast.IdentKind && sel.Operand().AsIdent() == "event"
}

// writeActionList are the actions event.writes can be true on.
var writeActionList = func() []string {
	out := []string{"open"}
	for a := range writeActions {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}()

// aggregateUse finds what a tool_call or session condition reads of its scope variable v:
// the dependency bits, and the evidence of each aggregate read outside a comprehension's
// predicate. An aggregate iterated by exists() or exists_one() gets a filter program with the
// same predicate, so the evidence is the values that matched, not the whole list.
func aggregateUse(env *cel.Env, a *celast.AST, v string) (uint32, []evidenceSpec, error) {
	var (
		deps     uint32
		evidence []evidenceSpec
		seen     = map[string]bool{}
	)
	info := a.SourceInfo()
	for _, nav := range celast.MatchDescendants(celast.NavigateAST(a), celast.KindMatcher(celast.SelectKind)) {
		sel := nav.AsSelect()
		if sel.Operand().Kind() != celast.IdentKind || sel.Operand().AsIdent() != v {
			continue
		}
		agg := slices.Index(aggFields[:], sel.FieldName())
		if agg < 0 {
			deps |= depMeta
			continue
		}
		deps |= 1 << agg
		parent, ok := nav.Parent()
		if ok && parent.Kind() == celast.ComprehensionKind && parent.AsComprehension().IterRange().ID() == nav.ID() {
			if call, isMacro := info.GetMacroCall(parent.ID()); isMacro && call.Kind() == celast.CallKind {
				mc := call.AsCall()
				if name := mc.FunctionName(); (name == "exists" || name == "exists_one") && len(mc.Args()) == 2 {
					src, err := cel.ExprToString(mc.Args()[1], info)
					if err != nil {
						return 0, nil, fmt.Errorf("evidence of %s.%s: unparse: %w", v, sel.FieldName(), err)
					}
					expr := fmt.Sprintf("%s.%s.filter(%s, %s)", v, sel.FieldName(), mc.Args()[0].AsIdent(), src)
					if seen[expr] {
						continue
					}
					seen[expr] = true
					prg, err := filterProgram(env, expr)
					if err != nil {
						return 0, nil, fmt.Errorf("evidence of %s.%s: %w", v, sel.FieldName(), err)
					}
					evidence = append(evidence, evidenceSpec{agg: agg, filter: prg})
					continue
				}
			}
		}
		if insidePredicate(nav) {
			continue
		}
		if key := fmt.Sprint(agg); !seen[key] {
			seen[key] = true
			evidence = append(evidence, evidenceSpec{agg: agg})
		}
	}
	return deps, evidence, nil
}

// insidePredicate reports whether nav is inside a comprehension other than as its range: a
// list read there (`x in tool.files_written` within an exists) qualifies the match, and is
// not evidence of its own.
func insidePredicate(nav celast.NavigableExpr) bool {
	child := nav
	for {
		parent, ok := child.Parent()
		if !ok {
			return false
		}
		if parent.Kind() == celast.ComprehensionKind && parent.AsComprehension().IterRange().ID() != child.ID() {
			return true
		}
		child = parent
	}
}

// filterProgram compiles an evidence filter.
func filterProgram(env *cel.Env, expr string) (cel.Program, error) {
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, fmt.Errorf("compile %s: %w", expr, iss.Err())
	}
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", expr, err)
	}
	return prg, nil
}
