package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Scope is what a rule looks at.
type Scope string

const (
	// ScopeEvent rules see one kernel line at a time, with its tool call, prompt and session
	// as far as they are known when the line is written.
	ScopeEvent Scope = "event"
	// ScopeToolCall rules see what one tool call did so far (tool.secrets_read, tool.egress…)
	// and fire at most once per call.
	ScopeToolCall Scope = "tool_call"
	// ScopeSession rules see what one session did so far and fire at most once per session.
	ScopeSession Scope = "session"
	// ScopeTree is the built-in silent-agent detection's (SilentRule): one agent tree. Rule
	// files cannot use it.
	ScopeTree Scope = "tree"
)

// Severity is how urgent an alert is.
type Severity string

const (
	SeverityLow      Severity = "low"
	SeverityMedium   Severity = "medium"
	SeverityHigh     Severity = "high"
	SeverityCritical Severity = "critical"
)

// severityScores are event.severity: the risk scores Elastic's detection rules give the same
// words, so alerts sort with theirs in a shared SIEM.
var severityScores = map[Severity]int{SeverityLow: 21, SeverityMedium: 47, SeverityHigh: 73, SeverityCritical: 99}

// Score is the numeric event.severity of s.
func (s Severity) Score() int { return severityScores[s] }

// Rule is one detection rule as written in a rule file.
type Rule struct {
	ID          string
	Name        string
	Description string
	Severity    Severity
	// Tags are free words (the ATT&CK tactic, e.g. credential_access) and ATT&CK technique
	// ids (T1552.001), which alerts also carry as threat.technique.id.
	Tags      []string
	Scope     Scope
	Condition string
	// Enabled false in a rules_dir file turns off the pack rule of the same id.
	Enabled bool
	// Source is the file the rule came from ("pack/<name>.yaml" for the starter pack) and
	// Line where its entry starts.
	Source string
	Line   int
}

// Pos is where the rule is written, as errors name it.
func (r Rule) Pos() string { return fmt.Sprintf("%s:%d: rule %s", r.Source, r.Line, r.ID) }

// Techniques are the ATT&CK technique ids among the tags.
func (r Rule) Techniques() []string {
	var ids []string
	for _, t := range r.Tags {
		if techniqueID.MatchString(t) {
			ids = append(ids, t)
		}
	}
	return ids
}

// FromPack reports whether the rule is the embedded starter pack's.
func (r Rule) FromPack() bool { return strings.HasPrefix(r.Source, packPrefix) }

var (
	ruleID      = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,127}$`)
	techniqueID = regexp.MustCompile(`^T[0-9]{4}(\.[0-9]{3})?$`)
	tagWord     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$`)
)

// ruleKeys are the keys a rule entry may have: anything else is a mistake (a misspelt key
// would otherwise silently do nothing).
var ruleKeys = []string{"id", "name", "description", "severity", "tags", "scope", "condition", "enabled"}

// ruleSpec is a rule entry as decoded.
type ruleSpec struct {
	ID          string   `yaml:"id"`
	Name        string   `yaml:"name"`
	Description string   `yaml:"description"`
	Severity    string   `yaml:"severity"`
	Tags        []string `yaml:"tags"`
	Scope       string   `yaml:"scope"`
	Condition   string   `yaml:"condition"`
	Enabled     *bool    `yaml:"enabled"`
}

// ParseRules reads the rules of one file: a YAML list of rule entries or a single entry, in
// one or more documents. Unknown keys, missing or malformed values and duplicate ids are
// errors naming the file, the line and the rule; the rules that did parse are returned with
// them (lint compiles them too). Conditions are not compiled here (Compile).
func ParseRules(name string, data []byte) ([]Rule, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var (
		rules []Rule
		errs  []error
	)
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if len(doc.Content) == 0 {
			continue
		}
		root := doc.Content[0]
		entries := []*yaml.Node{root}
		switch root.Kind {
		case yaml.SequenceNode:
			entries = root.Content
		case yaml.MappingNode:
		default:
			return nil, fmt.Errorf("%s:%d: want a list of rules or one rule, got a %s", name, root.Line, kindName(root))
		}
		for _, n := range entries {
			r, err := parseEntry(name, n)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			rules = append(rules, r)
		}
	}
	seen := map[string]Rule{}
	for _, r := range rules {
		if first, dup := seen[r.ID]; dup {
			errs = append(errs, fmt.Errorf("%s: id already used at line %d", r.Pos(), first.Line))
		}
		seen[r.ID] = r
	}
	return rules, errors.Join(errs...)
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.ScalarNode:
		return "scalar"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return "alias"
	}
	return "mapping"
}

// parseEntry reads one rule entry strictly.
func parseEntry(file string, n *yaml.Node) (Rule, error) {
	if n.Kind != yaml.MappingNode {
		return Rule{}, fmt.Errorf("%s:%d: a rule is a mapping (id, name, condition…), got a %s", file, n.Line, kindName(n))
	}
	id := ""
	keys := map[string]bool{}
	var errs []error
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		if k == "id" {
			id = n.Content[i+1].Value
		}
		keys[k] = true
	}
	label := fmt.Sprintf("%s:%d: rule %s", file, n.Line, id)
	if id == "" {
		label = fmt.Sprintf("%s:%d: rule without id", file, n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; !slices.Contains(ruleKeys, k.Value) {
			errs = append(errs, fmt.Errorf("%s: unknown key %q at line %d (known: %s)", label, k.Value, k.Line, strings.Join(ruleKeys, ", ")))
		}
	}
	var s ruleSpec
	if err := n.Decode(&s); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", label, err))
		return Rule{}, errors.Join(errs...)
	}
	r := Rule{
		ID: s.ID, Name: s.Name, Description: strings.TrimSpace(s.Description), Severity: Severity(s.Severity),
		Tags: s.Tags, Scope: Scope(s.Scope), Condition: strings.TrimSpace(s.Condition), Enabled: true,
		Source: file, Line: n.Line,
	}
	if s.Enabled != nil {
		r.Enabled = *s.Enabled
	}
	if r.Scope == "" {
		r.Scope = ScopeEvent
	}
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf("%s: %s", label, fmt.Sprintf(format, args...)))
		}
	}
	check(ruleID.MatchString(r.ID), "id %q: want lower-case letters, digits, '.', '_' or '-'", r.ID)
	if !r.Enabled && len(keys) == 2 {
		// `{id: x, enabled: false}` only switches a rule off.
		return r, errors.Join(errs...)
	}
	check(r.Name != "", "name is missing")
	_, knownSeverity := severityScores[r.Severity]
	check(knownSeverity, "severity %q: want low, medium, high or critical", s.Severity)
	_, knownScope := scopeVars[r.Scope]
	check(knownScope, "scope %q: want event, tool_call or session", s.Scope)
	check(r.Condition != "", "condition is missing")
	for _, t := range r.Tags {
		check(tagWord.MatchString(t), "tag %q: want one word (letters, digits, _ . : -)", t)
	}
	return r, errors.Join(errs...)
}

// LoadDir reads every *.yaml and *.yml file of dir, in name order. A missing dir holds no
// rules; an unreadable or malformed file is an error.
func LoadDir(dir string) ([]Rule, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read rules dir: %w", err)
	}
	var files []string
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".yaml" || ext == ".yml") {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(files)
	var (
		rules []Rule
		errs  []error
	)
	for _, f := range files {
		rs, err := LoadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rules = append(rules, rs...)
	}
	return rules, errors.Join(errs...)
}

// LoadFile reads the rules of one file.
func LoadFile(path string) ([]Rule, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read rule file: %w", err)
	}
	return ParseRules(path, data)
}

// Merge lays extra rules (a rules_dir) over base (the pack): a rule with a base rule's id
// replaces it, `enabled: false` removes it, and the rest are added. Two extra rules with one
// id are an error, and so is switching off an id that no rule has.
func Merge(base, extra []Rule) ([]Rule, error) {
	out := slices.Clone(base)
	pos := map[string]int{}
	for i, r := range out {
		pos[r.ID] = i
	}
	seen := map[string]Rule{}
	var errs []error
	for _, r := range extra {
		if first, dup := seen[r.ID]; dup {
			errs = append(errs, fmt.Errorf("%s: id already defined at %s:%d", r.Pos(), first.Source, first.Line))
			continue
		}
		seen[r.ID] = r
		i, ok := pos[r.ID]
		switch {
		case ok:
			out[i] = r
		case !r.Enabled && r.Condition == "":
			errs = append(errs, fmt.Errorf("%s: disables a rule that does not exist", r.Pos()))
		default:
			pos[r.ID] = len(out)
			out = append(out, r)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return slices.DeleteFunc(out, func(r Rule) bool { return !r.Enabled }), nil
}
