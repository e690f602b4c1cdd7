package rules

import (
	"path"
	"slices"
	"strings"

	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"

	"github.com/vigil-sensor/vigil/proto"
)

// A guard is a Go predicate derived from an event rule's condition that is true whenever the
// condition can be: the detector evaluates the CEL program only on lines that pass it.
// Conditions are mostly conjunctions of cheap tests on the line (its action, outcome, path,
// program) and most lines fail one of them, so the guard turns the pack's cost per line from
// one CEL evaluation per rule of the line's action into a few string comparisons (measured by
// BenchmarkEvaluatePack). CEL stays the meaning of a rule: a guard only ever skips lines on
// which the condition is false (TestGuardsNeverHideAMatch).
//
// The guard understands the subset of CEL the pack is written in: &&, ||, !, ==, != and in
// with string literals, startsWith, endsWith and contains with a literal, the path functions
// with literal arguments, own_client of two terms or literals, over event.action, .outcome, .writes,
// .setid, .file.path, .file.access, .process.name, .executable and .program. Anything else is
// "may be true".
type guard struct {
	fn func(*proto.Event) bool
	// exact: fn is the expression's value, not only a necessary condition (so ! may use it).
	exact bool
}

// always is the guard of an expression the guard does not understand.
var always = guard{fn: nil}

// term is a string the guard can compute from a line.
type term func(*proto.Event) string

// eventTerms are the string fields of a line the guard reads.
var eventTerms = map[string]term{
	"action":     func(e *proto.Event) string { return e.Event.Action },
	"outcome":    func(e *proto.Event) string { return e.Event.Outcome },
	"path":       func(e *proto.Event) string { return fileOf(e).Path },
	"access":     func(e *proto.Event) string { return fileOf(e).Access },
	"name":       func(e *proto.Event) string { return procOf(e).Name },
	"executable": func(e *proto.Event) string { return procOf(e).Executable },
	"program":    func(e *proto.Event) string { p := procOf(e); return Program(p.Executable, p.Args) },
}

// termFuncs are the string functions of a term.
var termFuncs = map[string]func(string) string{"home_rel": HomeRel, "basename": path.Base, "dirname": path.Dir}

// boolFuncs are the predicates of a term, and boolFuncs2 those of a term and a literal.
var (
	boolFuncs  = map[string]func(string) bool{"secret_path": SecretLooking, "ca_bundle": CABundle, "scratch_path": ScratchPath, "agent_config_path": AgentConfigPath}
	boolFuncs2 = map[string]func(string, string) bool{"glob": func(p, g string) bool { return Glob(g, p) }, "under": Under,
		"startsWith": strings.HasPrefix, "endsWith": strings.HasSuffix, "contains": strings.Contains}
	// termFuncs2 are the predicates of two terms (or literals).
	termFuncs2 = map[string]func(string, string) bool{"own_client": OwnClient}
)

// guardOf derives the guard of a condition.
func guardOf(e celast.Expr) guard {
	switch e.Kind() {
	case celast.SelectKind:
		switch {
		case isEventField(e, "writes"):
			return guard{fn: writes, exact: true}
		case isEventField(e, "reads"):
			return guard{fn: reads, exact: true}
		case isEventField(e, "setid"):
			return guard{fn: func(ev *proto.Event) bool { return ev.Vigil.Setid }, exact: true}
		}
		return always
	case celast.CallKind:
	default:
		return always
	}
	call := e.AsCall()
	args := call.Args()
	switch fn := call.FunctionName(); fn {
	case operators.LogicalAnd:
		var parts []func(*proto.Event) bool
		exact := true
		for _, a := range args {
			g := guardOf(a)
			exact = exact && g.exact
			if g.fn != nil {
				parts = append(parts, g.fn)
			}
		}
		if len(parts) == 0 {
			return always
		}
		return guard{exact: exact, fn: func(ev *proto.Event) bool {
			for _, p := range parts {
				if !p(ev) {
					return false
				}
			}
			return true
		}}
	case operators.LogicalOr:
		var parts []func(*proto.Event) bool
		exact := true
		for _, a := range args {
			g := guardOf(a)
			if g.fn == nil {
				return always // one side may be true on any line
			}
			exact = exact && g.exact
			parts = append(parts, g.fn)
		}
		return guard{exact: exact, fn: func(ev *proto.Event) bool {
			for _, p := range parts {
				if p(ev) {
					return true
				}
			}
			return false
		}}
	case operators.LogicalNot:
		g := guardOf(args[0])
		if !g.exact {
			return always
		}
		return guard{exact: true, fn: func(ev *proto.Event) bool { return !g.fn(ev) }}
	case operators.Equals, operators.NotEquals:
		for i := range 2 {
			t, lit := termOf(args[i]), literal(args[1-i])
			if t == nil || lit == nil {
				continue
			}
			want, eq := *lit, fn == operators.Equals
			return guard{exact: true, fn: func(ev *proto.Event) bool { return (t(ev) == want) == eq }}
		}
	case operators.In:
		t := termOf(args[0])
		list := literalList(args[1])
		if t != nil && list != nil {
			return guard{exact: true, fn: func(ev *proto.Event) bool { return slices.Contains(list, t(ev)) }}
		}
	default:
		if f, ok := boolFuncs[fn]; ok && !call.IsMemberFunction() && len(args) == 1 {
			if t := termOf(args[0]); t != nil {
				return guard{exact: true, fn: func(ev *proto.Event) bool { return f(t(ev)) }}
			}
		}
		if f, ok := termFuncs2[fn]; ok && !call.IsMemberFunction() && len(args) == 2 {
			if a, b := termOrLiteral(args[0]), termOrLiteral(args[1]); a != nil && b != nil {
				return guard{exact: true, fn: func(ev *proto.Event) bool { return f(a(ev), b(ev)) }}
			}
		}
		if f, ok := boolFuncs2[fn]; ok {
			subject, other := args, []celast.Expr(nil)
			if call.IsMemberFunction() {
				subject, other = []celast.Expr{call.Target()}, args
			} else if len(args) == 2 {
				subject, other = args[:1], args[1:]
			}
			if len(subject) == 1 && len(other) == 1 {
				t, lit := termOf(subject[0]), literal(other[0])
				if t != nil && lit != nil {
					want := *lit
					return guard{exact: true, fn: func(ev *proto.Event) bool { return f(t(ev), want) }}
				}
			}
		}
	}
	return always
}

// termOf returns the term an expression computes, or nil.
func termOf(e celast.Expr) term {
	switch e.Kind() {
	case celast.SelectKind:
		sel := e.AsSelect()
		if sel.IsTestOnly() {
			return nil
		}
		op := sel.Operand()
		switch {
		case op.Kind() == celast.IdentKind && op.AsIdent() == "event":
			if sel.FieldName() == "action" || sel.FieldName() == "outcome" {
				return eventTerms[sel.FieldName()]
			}
		case isEventField(op, "file") && (sel.FieldName() == "path" || sel.FieldName() == "access"):
			return eventTerms[sel.FieldName()]
		case isEventField(op, "process") && (sel.FieldName() == "name" || sel.FieldName() == "executable" || sel.FieldName() == "program"):
			return eventTerms[sel.FieldName()]
		}
	case celast.CallKind:
		call := e.AsCall()
		if f, ok := termFuncs[call.FunctionName()]; ok && !call.IsMemberFunction() && len(call.Args()) == 1 {
			if inner := termOf(call.Args()[0]); inner != nil {
				return func(ev *proto.Event) string { return f(inner(ev)) }
			}
		}
	}
	return nil
}

// termOrLiteral is termOf, or a string literal as a constant term.
func termOrLiteral(e celast.Expr) term {
	if t := termOf(e); t != nil {
		return t
	}
	if lit := literal(e); lit != nil {
		v := *lit
		return func(*proto.Event) string { return v }
	}
	return nil
}

func literal(e celast.Expr) *string {
	if e.Kind() != celast.LiteralKind {
		return nil
	}
	s, ok := e.AsLiteral().(types.String)
	if !ok {
		return nil
	}
	v := string(s)
	return &v
}

func literalList(e celast.Expr) []string {
	if e.Kind() != celast.ListKind {
		return nil
	}
	var out []string
	for _, el := range e.AsList().Elements() {
		s := literal(el)
		if s == nil {
			return nil
		}
		out = append(out, *s)
	}
	return out
}
