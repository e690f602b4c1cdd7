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
	fn func(*line) bool
	// exact: fn is the expression's value, not only a necessary condition (so ! may use it).
	exact bool
}

// always is the guard of an expression the guard does not understand.
var always = guard{fn: nil}

// line is a kernel line as the guards read it, with what several rules derive from the same
// field computed once for all of them: the starter pack asks for home_rel(event.file.path) in
// a dozen guards on every open, basename and secret_path of it in several. The detector keeps
// one and resets it for each line.
type line struct {
	e             *proto.Event
	reads, writes bool // event.reads and event.writes
	strs          [memoStrings]string
	have          [memoStrings]bool
	bools         [memoBools]int8 // 0 not computed yet, 1 false, 2 true
}

// reset makes l the guards' view of e. Only the flags of the memo are cleared: copying a
// whole new line into the detector, strings and all, went through the GC's bulk write
// barrier on every line.
func (l *line) reset(e *proto.Event) {
	l.e, l.reads, l.writes = e, reads(e), writes(e)
	l.have, l.bools = [memoStrings]bool{}, [memoBools]int8{}
}

// term is a string the guard can compute from a line.
type term func(*line) string

// eventTerm is a string field of a line the guard reads.
type eventTerm struct {
	name string
	get  func(*proto.Event) string
}

// eventTerms are the string fields of a line the guard reads, program last.
var eventTerms = [nEventTerms]eventTerm{
	{"action", func(e *proto.Event) string { return e.Event.Action }},
	{"outcome", func(e *proto.Event) string { return e.Event.Outcome }},
	{"path", func(e *proto.Event) string { return fileOf(e).Path }},
	{"access", func(e *proto.Event) string { return fileOf(e).Access }},
	{"name", func(e *proto.Event) string { return procOf(e).Name }},
	{"executable", func(e *proto.Event) string { return procOf(e).Executable }},
	{"program", func(e *proto.Event) string { p := procOf(e); return Program(p.Executable, p.Args) }},
}

// termFuncs are the string functions of a term, and boolFuncs its predicates: applied to an
// event term they are computed once per line (slot: function index × len(eventTerms) + term).
var (
	termFuncs = [nTermFuncs]namedFunc[string]{{"home_rel", HomeRel}, {"basename", path.Base}, {"dirname", path.Dir}}
	boolFuncs = [nBoolFuncs]namedFunc[bool]{{"secret_path", SecretLooking}, {"ca_bundle", CABundle},
		{"scratch_path", ScratchPath}, {"agent_config_path", AgentConfigPath}}
)

// The memo slots of line: one per function of an event term, and process.program itself
// (it walks argv), in slot programSlot.
const (
	nEventTerms, nTermFuncs, nBoolFuncs = 7, 3, 4
	programSlot                         = nTermFuncs * nEventTerms
	memoStrings                         = programSlot + 1
	memoBools                           = nBoolFuncs * nEventTerms
)

type namedFunc[T any] struct {
	name string
	fn   func(string) T
}

// lookup finds a function by its name in fs: its index (its memo slots) and the function.
func lookup[T any](fs []namedFunc[T], name string) (int, func(string) T) {
	for i, f := range fs {
		if f.name == name {
			return i, f.fn
		}
	}
	return -1, nil
}

// boolFuncs2 are the predicates of a term and a literal.
var (
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
			return guard{fn: func(l *line) bool { return l.writes }, exact: true}
		case isEventField(e, "reads"):
			return guard{fn: func(l *line) bool { return l.reads }, exact: true}
		case isEventField(e, "setid"):
			return guard{fn: func(l *line) bool { return l.e.Vigil.Setid }, exact: true}
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
		return guardAll(args)
	case operators.LogicalOr:
		var parts []func(*line) bool
		exact := true
		for _, a := range args {
			g := guardOf(a)
			if g.fn == nil {
				return always // one side may be true on any line
			}
			exact = exact && g.exact
			parts = append(parts, g.fn)
		}
		return guard{exact: exact, fn: func(l *line) bool {
			for _, p := range parts {
				if p(l) {
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
		return guard{exact: true, fn: func(l *line) bool { return !g.fn(l) }}
	case operators.Equals, operators.NotEquals:
		for i := range 2 {
			t, lit := termOf(args[i]), literal(args[1-i])
			if t == nil || lit == nil {
				continue
			}
			want, eq := *lit, fn == operators.Equals
			return guard{exact: true, fn: func(l *line) bool { return (t(l) == want) == eq }}
		}
	case operators.In:
		t := termOf(args[0])
		list := literalList(args[1])
		if t != nil && list != nil {
			return guard{exact: true, fn: func(l *line) bool { return slices.Contains(list, t(l)) }}
		}
	default:
		if i, f := lookup(boolFuncs[:], fn); f != nil && !call.IsMemberFunction() && len(args) == 1 {
			if t, slot := termSlot(args[0]); slot >= 0 {
				slot += i * nEventTerms
				return guard{exact: true, fn: func(l *line) bool {
					if l.bools[slot] == 0 {
						l.bools[slot] = 1
						if f(t(l)) {
							l.bools[slot] = 2
						}
					}
					return l.bools[slot] == 2
				}}
			} else if t != nil {
				return guard{exact: true, fn: func(l *line) bool { return f(t(l)) }}
			}
		}
		if f, ok := termFuncs2[fn]; ok && !call.IsMemberFunction() && len(args) == 2 {
			if a, b := termOrLiteral(args[0]), termOrLiteral(args[1]); a != nil && b != nil {
				return guard{exact: true, fn: func(l *line) bool { return f(a(l), b(l)) }}
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
					return guard{exact: true, fn: func(l *line) bool { return f(t(l), want) }}
				}
			}
		}
	}
	return always
}

// guardAll derives the guard of a conjunction.
func guardAll(conds []celast.Expr) guard {
	var parts []func(*line) bool
	exact := true
	for _, a := range conds {
		g := guardOf(a)
		exact = exact && g.exact
		if g.fn != nil {
			parts = append(parts, g.fn)
		}
	}
	switch len(parts) {
	case 0:
		return always
	case 1:
		return guard{exact: exact, fn: parts[0]}
	}
	return guard{exact: exact, fn: func(l *line) bool {
		for _, p := range parts {
			if !p(l) {
				return false
			}
		}
		return true
	}}
}

// termOf returns the term an expression computes, or nil.
func termOf(e celast.Expr) term {
	t, _ := termSlot(e)
	return t
}

// termSlot is termOf, and the index in eventTerms of an event term (-1 for any other term).
// A function of an event term is computed once per line.
func termSlot(e celast.Expr) (term, int) {
	switch e.Kind() {
	case celast.SelectKind:
		sel := e.AsSelect()
		if sel.IsTestOnly() {
			return nil, -1
		}
		op, name := sel.Operand(), sel.FieldName()
		switch {
		case op.Kind() == celast.IdentKind && op.AsIdent() == "event" && (name == "action" || name == "outcome"),
			isEventField(op, "file") && (name == "path" || name == "access"),
			isEventField(op, "process") && (name == "name" || name == "executable"):
			i := slices.IndexFunc(eventTerms[:], func(t eventTerm) bool { return t.name == name })
			get := eventTerms[i].get
			return func(l *line) string { return get(l.e) }, i
		case isEventField(op, "process") && name == "program":
			i := nEventTerms - 1
			get := eventTerms[i].get
			return func(l *line) string {
				if !l.have[programSlot] {
					l.strs[programSlot], l.have[programSlot] = get(l.e), true
				}
				return l.strs[programSlot]
			}, i
		}
	case celast.CallKind:
		call := e.AsCall()
		if i, f := lookup(termFuncs[:], call.FunctionName()); f != nil && !call.IsMemberFunction() && len(call.Args()) == 1 {
			inner, j := termSlot(call.Args()[0])
			switch {
			case j >= 0:
				slot := i*nEventTerms + j
				return func(l *line) string {
					if !l.have[slot] {
						l.strs[slot], l.have[slot] = f(inner(l)), true
					}
					return l.strs[slot]
				}, -1
			case inner != nil:
				return func(l *line) string { return f(inner(l)) }, -1
			}
		}
	}
	return nil, -1
}

// termOrLiteral is termOf, or a string literal as a constant term.
func termOrLiteral(e celast.Expr) term {
	if t := termOf(e); t != nil {
		return t
	}
	if lit := literal(e); lit != nil {
		v := *lit
		return func(*line) string { return v }
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
