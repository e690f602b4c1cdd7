package rules

import (
	"fmt"
	"path"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
)

// The CEL environment: which variables a rule sees in each scope, their types (checked when a
// rule compiles, so a misspelt field is a lint error, not a silent false) and the functions
// rules call. Values are the engine's own Go structs and the proto.Event itself, read field
// by field through the objects below: nothing is copied into maps per event.

// Variables, by scope.
var scopeVars = map[Scope][]string{
	ScopeEvent:    {"event", "tool", "prompt", "session"},
	ScopeToolCall: {"tool", "prompt", "session"},
	ScopeSession:  {"session", "prompt"},
}

// varTypes are the CEL types of the variables.
var varTypes = map[string]string{
	"event": "vigil.Event", "tool": "vigil.Tool", "prompt": "vigil.Prompt", "session": "vigil.Session",
}

// field is one field of an object type: its CEL type and how to read it from the Go value.
type field struct {
	t   *types.Type
	get func(obj any) any
	// set reports presence for has(); nil: present when get is not the zero value.
	set func(obj any) bool
	doc string
}

// objectType is a CEL object type backed by a Go type.
type objectType struct {
	name   string
	fields map[string]*field
	names  []string // in declaration order, for the reference
}

// provider serves the object types to the checker and the interpreter, and everything else
// from CEL's standard registry.
type provider struct {
	*types.Registry
	objects map[string]*objectType
}

func (p *provider) FindStructType(name string) (*types.Type, bool) {
	if _, ok := p.objects[name]; ok {
		return types.NewTypeTypeWithParam(types.NewObjectType(name)), true
	}
	return p.Registry.FindStructType(name)
}

func (p *provider) FindStructFieldNames(name string) ([]string, bool) {
	if o, ok := p.objects[name]; ok {
		return o.names, true
	}
	return p.Registry.FindStructFieldNames(name)
}

func (p *provider) FindStructFieldType(name, fieldName string) (*types.FieldType, bool) {
	o, ok := p.objects[name]
	if !ok {
		return p.Registry.FindStructFieldType(name, fieldName)
	}
	f, ok := o.fields[fieldName]
	if !ok {
		return nil, false
	}
	set := f.set
	if set == nil {
		set = func(obj any) bool { return !isZero(f.get(obj)) }
	}
	return &types.FieldType{
		Type:    f.t,
		IsSet:   set,
		GetFrom: func(obj any) (any, error) { return f.get(obj), nil },
	}, true
}

// NewValue refuses to build the engine's objects: rules read them, they never make them.
func (p *provider) NewValue(name string, fields map[string]ref.Val) ref.Val {
	if _, ok := p.objects[name]; ok {
		return types.NewErr("%s values cannot be constructed in a rule", name)
	}
	return p.Registry.NewValue(name, fields)
}

// isZero reports whether a field value is its type's zero (for has()).
func isZero(v any) bool {
	switch x := v.(type) {
	case types.String:
		return x == ""
	case types.Int:
		return x == 0
	case types.Bool:
		return !bool(x)
	case interface{ Size() ref.Val }:
		return x.Size() == types.IntZero
	}
	return v == nil
}

// function is one rule helper: a pure function of one or two strings.
type function struct {
	name string
	// doc is the signature and what it means, as `vigil rules list --functions` prints it.
	doc string
	ret *cel.Type
	fn1 func(string) ref.Val
	fn2 func(string, string) ref.Val
}

func boolOf(f func(string) bool) func(string) ref.Val {
	return func(s string) ref.Val { return types.Bool(f(s)) }
}

func stringOf(f func(string) string) func(string) ref.Val {
	return func(s string) ref.Val { return types.String(f(s)) }
}

// functions are the helpers rules call.
var functions = []function{
	{name: "secret_path", ret: cel.BoolType, fn1: boolOf(SecretLooking),
		doc: "secret_path(path) bool: the file looks like it holds credentials (keys, .env, cloud, registry and git credentials, ~/.ssh); public CA bundles never do"},
	{name: "ca_bundle", ret: cel.BoolType, fn1: boolOf(CABundle),
		doc: "ca_bundle(path) bool: a public CA certificate or bundle (/etc/ssl/certs/…, certifi's cacert.pem…)"},
	{name: "secret_arg", ret: cel.BoolType, fn1: boolOf(SecretArg),
		doc: "secret_arg(arg) bool: a command-line argument names a secret file (also after @ or =: curl -d @.env)"},
	{name: "home_rel", ret: cel.StringType, fn1: stringOf(HomeRel),
		doc: `home_rel(path) string: the path relative to the home directory holding it (".ssh/id_rsa"), "" outside every home`},
	{name: "basename", ret: cel.StringType, fn1: stringOf(path.Base),
		doc: "basename(path) string: the last element of a path"},
	{name: "dirname", ret: cel.StringType, fn1: stringOf(path.Dir),
		doc: "dirname(path) string: all but the last element of a path"},
	{name: "scratch_path", ret: cel.BoolType, fn1: boolOf(ScratchPath),
		doc: "scratch_path(path) bool: writing there is routine (temporary dirs, /dev, build and package caches, the agents' state dirs but not their settings)"},
	{name: "agent_config_path", ret: cel.BoolType, fn1: boolOf(AgentConfigPath),
		doc: "agent_config_path(path) bool: an agent's settings, hooks or MCP configuration file (user, project or managed)"},
	{name: "stdin_shell", ret: cel.BoolType, fn1: boolOf(StdinShell),
		doc: "stdin_shell(command_line) bool: a shell or interpreter reading its program from stdin (sh, bash -s, python3 -): the end of `curl … | sh`"},
	{name: "public_endpoint", ret: cel.BoolType, fn1: boolOf(PublicEndpoint),
		doc: "public_endpoint(endpoint) bool: an ip or ip:port on the internet (not loopback, private, link-local, CGNAT)"},
	{name: "under", ret: cel.BoolType, fn2: func(p, d string) ref.Val { return types.Bool(Under(p, d)) },
		doc: "under(path, dir) bool: path is dir or inside it, by whole components; false when dir is empty"},
	{name: "glob", ret: cel.BoolType, fn2: func(p, g string) ref.Val { return types.Bool(Glob(g, p)) },
		doc: `glob(path, pattern) bool: * matches within a path element, ** across elements ("**/.git/hooks/*")`},
	{name: "own_client", ret: cel.BoolType, fn2: func(p, prog string) ref.Val { return types.Bool(OwnClient(p, prog)) },
		doc: "own_client(path, program) bool: program reads the secret at path to do its job (aws ~/.aws/credentials, git ~/.git-credentials; the table below); false for a path of no secret family"},
}

// newEnv builds the CEL environment of one scope.
func newEnv(scope Scope) (*cel.Env, error) {
	opts := []cel.EnvOption{
		cel.CustomTypeProvider(celProvider),
		cel.CustomTypeAdapter(celProvider),
		// Macro calls are kept so that the evidence of a list rule can be narrowed to the
		// elements its exists() matched (evidence.go).
		cel.EnableMacroCallTracking(),
		ext.Strings(),
	}
	for _, v := range scopeVars[scope] {
		opts = append(opts, cel.Variable(v, cel.ObjectType(varTypes[v])))
	}
	for _, f := range functions {
		if f.fn1 != nil {
			fn := f.fn1
			opts = append(opts, cel.Function(f.name, cel.Overload(f.name+"_string", []*cel.Type{cel.StringType}, f.ret,
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					s, ok := v.(types.String)
					if !ok {
						return types.NoSuchOverloadErr()
					}
					return fn(string(s))
				}))))
			continue
		}
		fn := f.fn2
		opts = append(opts, cel.Function(f.name, cel.Overload(f.name+"_string_string", []*cel.Type{cel.StringType, cel.StringType}, f.ret,
			cel.BinaryBinding(func(a, b ref.Val) ref.Val {
				sa, ok1 := a.(types.String)
				sb, ok2 := b.(types.String)
				if !ok1 || !ok2 {
					return types.NoSuchOverloadErr()
				}
				return fn(string(sa), string(sb))
			}))))
	}
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, fmt.Errorf("build the CEL environment of scope %s: %w", scope, err)
	}
	return env, nil
}

// Reference documents what a condition can use: the variables of each scope, the fields of
// their types and the functions, as `vigil rules list --reference` prints it.
func Reference() string {
	var b strings.Builder
	b.WriteString("Variables by scope:\n")
	for _, s := range []Scope{ScopeEvent, ScopeToolCall, ScopeSession} {
		fmt.Fprintf(&b, "  %-9s  %s\n", s, strings.Join(scopeVars[s], ", "))
	}
	b.WriteString("\nTypes (event is vigil.Event, tool vigil.Tool, prompt vigil.Prompt, session vigil.Session):\n")
	for _, o := range objects {
		fmt.Fprintf(&b, "  %s\n", o.name)
		for _, n := range o.names {
			f := o.fields[n]
			fmt.Fprintf(&b, "    %-26s %-14s %s\n", n, f.t.String(), f.doc)
		}
	}
	b.WriteString("\nFunctions (besides CEL's standard ones and its strings extension):\n")
	for _, f := range functions {
		fmt.Fprintf(&b, "  %s\n", f.doc)
	}
	b.WriteString("\nSecret families and their own clients (own_client; their reads are not in secrets_read):\n")
	b.WriteString(ownersReference())
	return b.String()
}
