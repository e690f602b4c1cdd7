package main

import (
	"embed"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Scenario is one scripted agent session: the files of the scratch repository, the prompts
// the agent is given and, per prompt, the turns the mock LLM plays (tool calls, then text).
type Scenario struct {
	Name        string `json:"name"`
	Agent       string `json:"agent"` // claude, codex, gemini, copilot or opencode
	Description string `json:"description"`
	// StrongKeys: the agent's telemetry is configured with its strong join key (Claude:
	// CLAUDE_CODE_PROPAGATE_TRACEPARENT=1; Codex: traces exported besides logs; Gemini, whose
	// shells carry no key: the fleet's settings, which export its tool_call spans and log the
	// prompts, commands and outputs; Copilot CLI, whose shells carry no key either: OTLP with
	// OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true, which puts each command on its
	// execute_tool span; opencode, whose shells carry no key either: the OTLP endpoint and
	// experimental.openTelemetry, which export its Tool.execute and ai.toolCall spans with the
	// command text). Recall and precision gate the run only for these scenarios.
	StrongKeys bool              `json:"strong_keys"`
	Files      map[string]string `json:"files"`
	Prompts    []Prompt          `json:"prompts"`
	// Subagents are scripts the mock plays to a subagent (Claude's Task/Agent tool): subagent
	// j is played when its marker, promptMarker(len(Prompts)+j), is in the conversation, which
	// only a Task turn's prompt puts there. Its calls are numbered as prompt len(Prompts)+j.
	Subagents []Prompt `json:"subagents,omitempty"`
	// WaitFor names a file (relative to the repo) a background process creates; the run
	// waits for it (up to 20 s) before stopping the sensor.
	WaitFor string `json:"wait_for,omitempty"`
	// LatencyMs is how long the mock "thinks" before each answer (default 300 ms; a real
	// model takes seconds). 0 plays calls back to back.
	LatencyMs *int `json:"latency_ms,omitempty"`
	// Resume (Claude): each prompt is its own `claude -p` process, the later ones with
	// --resume <session id> (Codex always resumes: codex exec resume <thread id>; Gemini too:
	// gemini -p … --resume <session id>).
	Resume bool `json:"resume,omitempty"`
	// ExpectAlerts are the detection rules the scenario must raise: "rule.id" anywhere on its
	// agent trees, or "rule.id@P.T" on the tool call of prompt P, turn T (its
	// gen_ai.tool.call.id is the id the mock gave that turn: construction, not Vigil's binding).
	// An alert whose rule no expectation names is a false alert and fails the scenario.
	ExpectAlerts []string `json:"expect_alerts,omitempty"`
	// HomeFiles are created in the agent's HOME before it starts (path relative to HOME):
	// fake keys and credentials a malicious call reads. The sibling's HOME has none of them.
	// A scenario with home files gets its HOME at /home/vigil-e2e-<agent>-<name> (agentHome):
	// the rules know a home by its place (/home/<user>/, /root/), not by $HOME.
	HomeFiles map[string]HomeFile `json:"home_files,omitempty"`
	// PublicFiles are served on GET /<name> by the "public" server ({PUBLIC} in commands and
	// files: publicAddr, an RFC 5737 address on lo inside the scenario's network namespace,
	// so the rules see an internet address and nothing leaves the machine).
	PublicFiles map[string]string `json:"public_files,omitempty"`
	// ExpectUpload is a string that a POST or PUT body the public server received must hold:
	// the proof that the scenario's exfiltration really happened.
	ExpectUpload string `json:"expect_upload,omitempty"`
	// NoTelemetry (Claude): the agent runs with no telemetry and no hooks at all, so Vigil has
	// its kernel events only. Such a scenario has nothing to bind by: its attribution is
	// reported, never gated (StrongKeys must be false); its alerts are gated as usual.
	NoTelemetry bool `json:"no_telemetry,omitempty"`
	// Informational scenarios are reported but never fail the run (e.g. a behaviour no real
	// model produces, kept to measure a known limit).
	Informational bool `json:"informational,omitempty"`
	// AlsoFallback adds a copy named <name>-fallback with StrongKeys false.
	AlsoFallback bool `json:"also_fallback,omitempty"`
	// AgentEnv is added to the agent's environment (Claude), e.g. export intervals longer
	// than the sensor's hold, to make telemetry arrive late.
	AgentEnv map[string]string `json:"agent_env,omitempty"`
	// HooksOnly: the agent's telemetry is off and `vigil hook` is configured for its hook
	// events (Claude: settings.json; Codex: $CODEX_HOME/hooks.json with
	// --dangerously-bypass-hook-trust, without which user hooks are silently skipped).
	HooksOnly bool `json:"hooks_only,omitempty"`
	// Forged lists tool call ids that a scripted command forges through `vigil hook` from
	// inside a tool shell (commands use {VIGIL}, {SOCK} and {UNDELIVERED}, the run's vigil
	// binary, hook socket and undelivered folder): they must never appear in the output.
	Forged []string `json:"forged,omitempty"`
	// Managed: the agent is configured by `vigil install` alone, as a fleet would deploy it.
	// The run installs into a scratch root pointed at the scenario's sensor and runs the
	// agent with that root's /etc laid over the machine's (an overlay in the scenario's own
	// mount namespace): no telemetry variables, no user settings, no trust flags. Binding as
	// well as the strong scenarios proves the agent obeyed its managed configuration.
	Managed bool `json:"managed,omitempty"`
	// Set names the key set the scenario measures beside strong/fallback in the summary
	// (late, parallel, hooks-only, subagent); empty for the plain ones.
	Set string `json:"set,omitempty"`
}

// Prompt is one user turn and the model's scripted answers to it.
type Prompt struct {
	Text  string `json:"text"`
	Turns []Turn `json:"turns"`
	Final string `json:"final"`
}

// Turn is one tool call the mock model makes.
//
//	Claude: Bash {command}, Read {file}, Write {file, content}, Edit {file, old, new}
//	Codex:  exec_command {command}, apply_patch {patch}
//	Gemini: run_shell_command {command, is_background}, read_file {file},
//	        write_file {file, content}, replace {file, old, new}
//	Copilot: bash {command, is_background → mode "async"}, view {file},
//	        create {file, content}, edit {file, old, new}
//	opencode: bash {command}, read {file}, write {file, content}, edit {file, old, new}
type Turn struct {
	Tool    string `json:"tool"`
	Command string `json:"command,omitempty"`
	File    string `json:"file,omitempty"`
	Content string `json:"content,omitempty"`
	Old     string `json:"old,omitempty"`
	New     string `json:"new,omitempty"`
	Patch   string `json:"patch,omitempty"`
	// Background (Gemini run_shell_command's is_background, Copilot bash's mode "async"): the
	// CLI returns from the call at once and leaves the command running.
	Background bool `json:"is_background,omitempty"`
	// Subagent (Task): the index of the subagent script in Scenario.Subagents.
	Subagent *int `json:"subagent,omitempty"`
	// Parallel: the model asks for this call in the same response as the turn before it
	// (several tool_use blocks, several function calls), so their windows overlap.
	Parallel bool `json:"parallel,omitempty"`
}

//go:embed scenarios/*.json
var scenarioFS embed.FS

var validTools = map[string][]string{
	"claude":   {"Bash", "Read", "Write", "Edit", "Task"},
	"codex":    {"exec_command", "apply_patch"},
	"gemini":   {"run_shell_command", "read_file", "write_file", "replace"},
	"copilot":  {"bash", "view", "create", "edit"},
	"opencode": {"bash", "read", "write", "edit"},
}

// loadScenarios reads every embedded scenario, sorted by agent then name.
func loadScenarios() ([]Scenario, error) {
	entries, err := scenarioFS.ReadDir("scenarios")
	if err != nil {
		return nil, err
	}
	var out []Scenario
	for _, e := range entries {
		b, err := scenarioFS.ReadFile(path.Join("scenarios", e.Name()))
		if err != nil {
			return nil, err
		}
		s, err := parseScenario(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		s.placeMarkers()
		s.expandPublic()
		out = append(out, s)
		if s.AlsoFallback && s.StrongKeys {
			f := s
			f.Name, f.StrongKeys, f.AlsoFallback = s.Name+"-fallback", false, false
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Agent != out[j].Agent {
			return out[i].Agent < out[j].Agent
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

func parseScenario(b []byte) (Scenario, error) {
	var s Scenario
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return s, err
	}
	return s, s.validate()
}

func (s Scenario) validate() error {
	tools, ok := validTools[s.Agent]
	if !ok {
		return fmt.Errorf("scenario %q: agent %q: want claude, codex, gemini, copilot or opencode", s.Name, s.Agent)
	}
	if s.Name == "" || strings.ContainsAny(s.Name, "/ ") {
		return fmt.Errorf("scenario name %q: want a non-empty name without / or spaces", s.Name)
	}
	if len(s.Prompts) == 0 {
		return fmt.Errorf("scenario %q: no prompts", s.Name)
	}
	if s.NoTelemetry && (s.Agent != "claude" || s.StrongKeys || s.HooksOnly || s.AlsoFallback) {
		return fmt.Errorf("scenario %q: no_telemetry is a Claude run without telemetry or hooks: not with strong_keys, hooks_only or also_fallback", s.Name)
	}
	// vigil install configures Claude Code, Codex and Gemini CLI (and Cursor, which does not
	// run here); the managed run is the strong one, with nothing else configured.
	if s.Managed && (s.Agent != "claude" && s.Agent != "codex" && s.Agent != "gemini" || !s.StrongKeys || s.HooksOnly || s.NoTelemetry || s.AlsoFallback) {
		return fmt.Errorf("scenario %q: managed is a Claude, Codex or Gemini run with strong_keys and nothing else configured", s.Name)
	}
	// Gemini runs with one telemetry configuration, the fleet's (runner.go geminiSettings):
	// the harness has no weaker variant and no hooks for it yet.
	if s.Agent == "gemini" && (s.HooksOnly || s.AlsoFallback || len(s.Forged) > 0 || len(s.Subagents) > 0) {
		return fmt.Errorf("scenario %q: gemini scenarios have no hooks_only, also_fallback, forged or subagents", s.Name)
	}
	// Copilot runs with the fleet's OTLP settings, and its fallback variant without content
	// capture (runner.go copilotEnv); no hooks for it yet.
	if s.Agent == "copilot" && (s.HooksOnly || len(s.Forged) > 0 || len(s.Subagents) > 0) {
		return fmt.Errorf("scenario %q: copilot scenarios have no hooks_only, forged or subagents", s.Name)
	}
	// opencode runs with the fleet's OTLP settings and Vigil's plugin, and its fallback
	// variant with the OTLP settings alone (runner_opencode.go).
	if s.Agent == "opencode" && (s.HooksOnly || len(s.Forged) > 0 || len(s.Subagents) > 0) {
		return fmt.Errorf("scenario %q: opencode scenarios have no hooks_only, forged or subagents", s.Name)
	}
	for _, p := range s.Prompts {
		for _, t := range p.Turns {
			if s.Agent == "opencode" && t.Background {
				return fmt.Errorf("scenario %q: opencode's bash has no background mode (is_background)", s.Name)
			}
		}
	}
	for _, e := range s.ExpectAlerts {
		x, err := parseExpectation(e)
		if err != nil {
			return fmt.Errorf("scenario %q: %w", s.Name, err)
		}
		if x.Turn != nil && (x.Turn[0] >= len(s.allPrompts()) || x.Turn[1] >= len(s.allPrompts()[x.Turn[0]].Turns)) {
			return fmt.Errorf("scenario %q: expect_alerts %q: no turn %d of prompt %d", s.Name, e, x.Turn[1], x.Turn[0])
		}
	}
	for name, h := range s.HomeFiles {
		if name == "" || filepath.IsAbs(name) || !filepath.IsLocal(name) {
			return fmt.Errorf("scenario %q: home_files %q: want a path inside HOME", s.Name, name)
		}
		if _, err := h.perm(); err != nil {
			return fmt.Errorf("scenario %q: home_files %q: %w", s.Name, name, err)
		}
		if h.CopyOf != "" && h.Content != "" {
			return fmt.Errorf("scenario %q: home_files %q: content or copy_of, not both", s.Name, name)
		}
	}
	for name := range s.PublicFiles {
		if name == "" || strings.ContainsAny(name, "/?#") {
			return fmt.Errorf("scenario %q: public_files %q: want a plain file name", s.Name, name)
		}
	}
	for i, p := range s.allPrompts() {
		if p.Text == "" {
			return fmt.Errorf("scenario %q prompt %d: empty text", s.Name, i)
		}
		for j, t := range p.Turns {
			known := false
			for _, v := range tools {
				known = known || v == t.Tool
			}
			if !known {
				return fmt.Errorf("scenario %q prompt %d turn %d: tool %q is not one of %v", s.Name, i, j, t.Tool, tools)
			}
			if t.Background && t.Tool != "run_shell_command" && t.Tool != "bash" {
				return fmt.Errorf("scenario %q prompt %d turn %d: is_background is for run_shell_command and bash", s.Name, i, j)
			}
			switch t.Tool {
			case "Bash", "exec_command", "run_shell_command", "bash":
				if t.Command == "" {
					return fmt.Errorf("scenario %q prompt %d turn %d: %s needs command", s.Name, i, j, t.Tool)
				}
			case "Read", "Write", "Edit", "read_file", "write_file", "replace", "view", "create", "edit", "read", "write":
				if !strings.Contains(t.File, "{M}") {
					return fmt.Errorf("scenario %q prompt %d turn %d: %s needs a file whose name holds {M}, the call's marker", s.Name, i, j, t.Tool)
				}
			case "Task":
				if t.Subagent == nil || *t.Subagent < 0 || *t.Subagent >= len(s.Subagents) {
					return fmt.Errorf("scenario %q prompt %d turn %d: Task needs subagent, an index into subagents", s.Name, i, j)
				}
			case "apply_patch":
				for _, f := range patchFiles(t.Patch) {
					if !strings.Contains(f, "{M}") {
						return fmt.Errorf("scenario %q prompt %d turn %d: apply_patch file %q must hold {M}, the call's marker", s.Name, i, j, f)
					}
				}
				if t.Patch == "" {
					return fmt.Errorf("scenario %q prompt %d turn %d: apply_patch needs patch", s.Name, i, j)
				}
			}
		}
	}
	return nil
}

// placeMarkers puts each call's marker (truth.go) into its turn: {M} in a command, file,
// content or patch becomes the call's token; a shell command without {M} runs the call's
// marker helper first. A scenario uses {M} where the helper must sit elsewhere (e.g. to keep
// one command's text inside another's).
func (s *Scenario) placeMarkers() {
	all := s.allPrompts()
	for p := range all {
		for t := range all[p].Turns {
			tr := &all[p].Turns[t]
			tok := markerToken(p, t)
			if tr.Command != "" && !strings.Contains(tr.Command, "{M}") {
				tr.Command = "./" + markerHelperDir + "/{M}; " + tr.Command
			}
			for _, f := range []*string{&tr.Command, &tr.File, &tr.Content, &tr.Patch} {
				*f = strings.ReplaceAll(*f, "{M}", tok)
			}
		}
	}
}

// allPrompts are the user prompts then the subagent scripts, indexed as the mock and the
// markers number them. The slice shares the scenario's turns.
func (s *Scenario) allPrompts() []Prompt {
	return append(s.Prompts[:len(s.Prompts):len(s.Prompts)], s.Subagents...)
}

// withRunPaths replaces {VIGIL}, {SOCK} and {UNDELIVERED} in the commands with the run's
// vigil binary and the hook socket and undelivered folder in dir.
func (s Scenario) withRunPaths(vigil, dir string) Scenario {
	r := strings.NewReplacer("{VIGIL}", vigil, "{SOCK}", filepath.Join(dir, "hook.sock"), "{UNDELIVERED}", filepath.Join(dir, "hook-undelivered"))
	s.Prompts = slices.Clone(s.Prompts)
	s.Subagents = slices.Clone(s.Subagents)
	for _, ps := range [][]Prompt{s.Prompts, s.Subagents} {
		for i := range ps {
			ps[i].Turns = slices.Clone(ps[i].Turns)
			for j := range ps[i].Turns {
				ps[i].Turns[j].Command = r.Replace(ps[i].Turns[j].Command)
			}
		}
	}
	return s
}

// latency is the mock's delay before each model answer.
func (s Scenario) latency() time.Duration {
	if s.LatencyMs == nil {
		return 300 * time.Millisecond
	}
	return time.Duration(*s.LatencyMs) * time.Millisecond
}

// promptMarker tags prompt i so the mocks can find where a user turn starts in the
// conversation they are sent.
func promptMarker(i int) string { return fmt.Sprintf("[e2e-prompt-%d]", i) }

// promptText is what the agent is given for prompt i.
func (s Scenario) promptText(i int) string {
	return promptMarker(i) + " " + s.allPrompts()[i].Text
}

// patchFiles lists the files an apply_patch text adds, updates or deletes.
func patchFiles(patch string) []string {
	var out []string
	for _, l := range strings.Split(patch, "\n") {
		for _, p := range []string{"*** Add File: ", "*** Update File: ", "*** Delete File: "} {
			if f, ok := strings.CutPrefix(l, p); ok {
				out = append(out, strings.TrimSpace(f))
			}
		}
	}
	return out
}

// HomeFile is a file of the agent's HOME: its content, or a copy of an existing file
// (copy_of, e.g. /bin/echo as a stub kubectl binary), with its mode ("0600"; default 0644,
// 0755 for a copy). In JSON a plain string is the content.
type HomeFile struct {
	Content string `json:"content,omitempty"`
	CopyOf  string `json:"copy_of,omitempty"`
	Mode    string `json:"mode,omitempty"`
}

func (h *HomeFile) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*h = HomeFile{Content: s}
		return nil
	}
	type plain HomeFile
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	return dec.Decode((*plain)(h))
}

// perm is the file's mode.
func (h HomeFile) perm() (os.FileMode, error) {
	if h.Mode == "" {
		if h.CopyOf != "" {
			return 0o755, nil
		}
		return 0o644, nil
	}
	m, err := strconv.ParseUint(h.Mode, 8, 32)
	if err != nil || m > 0o777 {
		return 0, fmt.Errorf("mode %q: want octal permission bits such as 0600", h.Mode)
	}
	return os.FileMode(m), nil
}

// publicAddr is the "public" server's address ({PUBLIC}): 203.0.113.0/24 is TEST-NET-3 (RFC
// 5737), never routed, but not loopback, private, link-local or CGNAT, so the rules'
// public_endpoint() takes it for the internet.
const (
	publicIP   = "203.0.113.7"
	publicAddr = publicIP + ":8080"
)

// usesPublic says whether the scenario needs the public server.
func (s Scenario) usesPublic() bool {
	if len(s.PublicFiles) > 0 || s.ExpectUpload != "" {
		return true
	}
	for _, p := range s.allPrompts() {
		for _, t := range p.Turns {
			if strings.Contains(t.Command, publicAddr) {
				return true
			}
		}
	}
	for _, c := range s.Files {
		if strings.Contains(c, publicAddr) {
			return true
		}
	}
	return false
}

// expandPublic replaces {PUBLIC} with publicAddr in the commands, patches, contents, the
// repository's files and the served files.
func (s *Scenario) expandPublic() {
	r := strings.NewReplacer("{PUBLIC}", publicAddr)
	for _, p := range s.allPrompts() {
		for t := range p.Turns {
			tr := &p.Turns[t]
			for _, f := range []*string{&tr.Command, &tr.Content, &tr.Patch, &tr.New} {
				*f = r.Replace(*f)
			}
		}
	}
	for _, m := range []map[string]string{s.Files, s.PublicFiles} {
		for k, v := range m {
			m[k] = r.Replace(v)
		}
	}
}
