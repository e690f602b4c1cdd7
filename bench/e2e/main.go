// Command e2e runs the real Claude Code, Codex, Gemini, Copilot and opencode CLIs, offline, under `vigil run` and
// measures how well Vigil attributes the kernel events of each tool call to that call.
//
//	sudo go run ./bench/e2e            (make e2e)
//
// Per scenario (bench/e2e/scenarios/*.json) it re-executes itself under `unshare -n` (a new
// network namespace with only lo), starts `vigil run`, a scripted mock of the agent's LLM API
// and a sibling process that runs the same commands outside the agent, then runs the agent.
// The mock chooses every tool call id and records when it handed each call out and when the
// result came back: that, with the process tree in Vigil's own JSONL, is the ground truth the
// JSONL's bindings are scored against. See bench/e2e/README.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"time"
)

// Pinned agent versions: the ones ../shared/research/agents verified.
var pinned = []npmPackage{
	{Agent: "claude", Name: "@anthropic-ai/claude-code", Version: "2.1.197"},
	{Agent: "codex", Name: "@openai/codex", Version: "0.169.0"},
	{Agent: "gemini", Name: "@google/gemini-cli", Version: "0.61.0"},
	{Agent: "copilot", Name: "@github/copilot", Version: "1.0.102"},
	// opencode has its own prefix in the npm cache (runner_opencode.go ensureOpencode).
	{Agent: "opencode", Name: "opencode-ai", Version: "1.18.33", OwnPrefix: true},
}

// npmPackage is the npm package (and version) of the agent a scenario names. OwnPrefix:
// installed apart from the shared prefix, by its agent's own installer.
type npmPackage struct {
	Agent, Name, Version string
	OwnPrefix            bool
}

// pinnedFor is the pinned package of an agent.
func pinnedFor(agent string) (npmPackage, bool) {
	for _, p := range pinned {
		if p.Agent == agent {
			return p, true
		}
	}
	return npmPackage{}, false
}

func main() {
	var (
		cache    = flag.String("npm-cache", "/var/cache/vigil-e2e/npm", "folder the pinned agents are npm-installed into (reused between runs)")
		work     = flag.String("work", "/var/tmp/vigil-e2e", "scratch folder for the scenario runs (wiped per scenario)")
		results  = flag.String("results", "bench/e2e/results", "where report.md and report.json are written")
		examples = flag.String("examples", "", "if set, write `vigil trace` of the first passing strong-key scenario per agent here (claude.txt, codex.txt, gemini.txt, copilot.txt, opencode.txt)")
		runRe    = flag.String("run", "", "only scenarios whose agent/name matches this regexp")
		skipRe   = flag.String("skip", "", "leave out scenarios whose agent/name matches this regexp")
		child    = flag.String("child", "", "internal: run this scenario inside the network namespace")
		dir      = flag.String("dir", "", "internal: scenario folder")
		vigilBin = flag.String("vigil", "", "a built vigil binary to use instead of building ./cmd/vigil (and, internal, the child's vigil binary)")
		noRecord = flag.Bool("no-recorder", false, "internal: run the agent without the independent recorder (strace)")
		noSensor = flag.Bool("no-sensor", false, "run the scenarios without `vigil run` (an OTLP sink answers the agent's telemetry instead); implies -timing")
		source   = flag.String("source", "", "vigil run's kernel event source (auto, ebpf, audit); empty: the embedded default")
		scope    = flag.String("audit-scope", "", "the audit source's kernel.audit_scope (tree, user); empty: the embedded default")
		timing   = flag.Bool("timing", false, "only time the agent: print one JSON line per scenario on standard output (agent start to exit), no scoring, no report")
	)
	flag.Parse()
	if *child != "" {
		os.Exit(childMain(*child, *dir, *cache, *vigilBin, sensorChoice{*source, *scope}, *noSensor, !*noRecord))
	}
	os.Exit(parentMain(*cache, *work, *results, *examples, *runRe, *skipRe, *vigilBin, sensorChoice{*source, *scope}, *noSensor, *timing || *noSensor))
}

func childMain(name, dir, npmDir, vigil string, source sensorChoice, noSensor, record bool) int {
	scs, err := loadScenarios()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 2
	}
	for _, sc := range scs {
		if sc.Agent+"/"+sc.Name == name {
			if err := runChild(childOpts{scenario: sc, dir: dir, npmDir: npmDir, vigil: vigil, source: source, noSensor: noSensor, record: record}); err != nil {
				fmt.Fprintln(os.Stderr, "e2e:", err)
				return 1
			}
			return 0
		}
	}
	fmt.Fprintln(os.Stderr, "e2e: no scenario", name)
	return 2
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s e2e: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func parentMain(cache, work, results, examples, runRe, skipRe, vigilBin string, source sensorChoice, noSensor, timing bool) int {
	start := time.Now()
	if os.Geteuid() != 0 {
		logf("needs root (vigil run loads eBPF programs, unshare -n needs CAP_SYS_ADMIN): run `sudo make e2e`")
		return 2
	}
	for _, tool := range []string{"npm", "node", "unshare", "ip", "git", "go", "strace"} {
		if _, err := exec.LookPath(tool); err != nil {
			logf("%s not found in PATH: %v", tool, err)
			return 2
		}
	}
	scs, err := loadScenarios()
	if err != nil {
		logf("%v", err)
		return 2
	}
	for _, f := range []struct {
		flag, re string
		keep     bool
	}{{"-run", runRe, true}, {"-skip", skipRe, false}} {
		if f.re == "" {
			continue
		}
		re, err := regexp.Compile(f.re)
		if err != nil {
			logf("%s: %v", f.flag, err)
			return 2
		}
		var keep []Scenario
		for _, sc := range scs {
			if re.MatchString(sc.Agent+"/"+sc.Name) == f.keep {
				keep = append(keep, sc)
			}
		}
		scs = keep
	}
	if len(scs) == 0 {
		logf("no scenario selected")
		return 2
	}
	t := time.Now()
	installed, err := ensureAgents(cache)
	if err != nil {
		logf("npm install: %v", err)
		return 2
	}
	if more, err := ensureOpencode(cache); err != nil {
		logf("npm install: %v", err)
		return 2
	} else if more {
		installed = true
	}
	installTime := time.Since(t)
	if err := os.MkdirAll(work, 0o755); err != nil {
		logf("%v", err)
		return 2
	}
	vigil := filepath.Join(work, "vigil")
	t = time.Now()
	if vigilBin != "" {
		if vigil, err = filepath.Abs(vigilBin); err != nil {
			logf("%v", err)
			return 2
		}
	} else if out, err := exec.Command("go", "build", "-o", vigil, "./cmd/vigil").CombinedOutput(); err != nil {
		logf("go build ./cmd/vigil (run from the repository root): %v\n%s", err, out)
		return 2
	}
	buildTime := time.Since(t)
	self, err := os.Executable()
	if err != nil {
		logf("%v", err)
		return 2
	}
	failed := false
	rep := Report{Started: start, InstallSeconds: installTime.Seconds(), Installed: installed, BuildSeconds: buildTime.Seconds(),
		Commit: commandLine("git", "describe", "--always", "--dirty", "--abbrev=12"), Settings: settingsWith(source), Versions: versions()}
	for _, sc := range scs {
		sdir := filepath.Join(work, sc.Agent+"-"+sc.Name)
		os.RemoveAll(sdir)
		if err := os.MkdirAll(sdir, 0o755); err != nil {
			logf("%v", err)
			return 2
		}
		logf("%s/%s: running", sc.Agent, sc.Name)
		t := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), agentTimeout+2*time.Minute)
		args := []string{"-n"}
		if sc.Managed {
			args = append(args, "-m") // installManaged's overlay of /etc stays in the scenario
		}
		args = append(args, self, "-child", sc.Agent+"/"+sc.Name, "-dir", sdir, "-npm-cache", cache, "-vigil", vigil)
		if noSensor {
			args = append(args, "-no-sensor")
		}
		args = append(args, source.flags()...)
		if timing {
			args = append(args, "-no-recorder") // wall time without strace's cost
		}
		cmd := exec.CommandContext(ctx, "unshare", args...)
		out, runErr := cmd.CombinedOutput()
		cancel()
		os.WriteFile(filepath.Join(sdir, "harness.log"), out, 0o644)
		if timing {
			if !printTiming(sc, sdir, !noSensor, runErr, out) {
				failed = true
			}
			continue
		}
		res := analyzeDir(sc, sdir, cache)
		res.Seconds = time.Since(t).Seconds()
		if runErr != nil {
			res.Errors = append(res.Errors, fmt.Sprintf("scenario run: %v: %s", runErr, strings.TrimSpace(lastLines(string(out), 5))))
		}
		tctx, tcancel := context.WithTimeout(context.Background(), time.Minute)
		targs := []string{"trace", "--jsonl", filepath.Join(sdir, "events.jsonl")}
		if floods := filepath.Join(sdir, "floods.jsonl"); exists(floods) {
			targs = append(targs, "--floods", floods)
		}
		if len(res.Sessions) > 0 {
			targs = append(targs, "--session", res.Sessions[0]) // not the other trees on the machine
		}
		if tr, err := exec.CommandContext(tctx, vigil, targs...).Output(); err == nil {
			os.WriteFile(filepath.Join(sdir, "trace.txt"), tr, 0o644)
		}
		tcancel()
		res.gate()
		logf("%s/%s: %s in %.0fs (marker recall %s, recall %s, provably wrong %d, captured %s, outside %d, sibling %d)", sc.Agent, sc.Name,
			passWord(res.Pass), res.Seconds, pct(res.Totals.MarkerCorrect, res.Totals.Markers), pct(res.Totals.Correct, res.Totals.Truth),
			res.ProvablyWrong, pct(res.CaptureTotal.Captured, res.CaptureTotal.Recorded), res.OutsideAgentTrees, res.SiblingEvents)
		for _, e := range res.Errors {
			logf("  %s", e)
		}
		rep.Scenarios = append(rep.Scenarios, res)
	}
	if timing {
		if failed {
			return 1
		}
		return 0
	}
	rep.Seconds = time.Since(start).Seconds()
	rep.summarize()
	if err := rep.write(results); err != nil {
		logf("write report: %v", err)
		return 2
	}
	if examples != "" {
		writeExamples(rep, work, examples)
	}
	logf("report: %s (%.0fs total)", filepath.Join(results, "report.md"), rep.Seconds)
	if !rep.Pass {
		logf("FAIL")
		return 1
	}
	logf("PASS")
	return 0
}

// sensorSettings says what `vigil run` ran with (runner.go startVigil).
const sensorSettings = "the embedded defaults (sensor/default.yaml) with output, OTLP and hook socket placed in the scenario's folder; " +
	"agents with their own default export intervals unless a scenario sets agent_env"

// sensorChoice is the source a run forces on vigil run, and the audit source's scope.
type sensorChoice struct{ source, auditScope string }

// flags passes the choice on to a scenario's child.
func (c sensorChoice) flags() []string {
	var out []string
	if c.source != "" {
		out = append(out, "-source", c.source)
	}
	if c.auditScope != "" {
		out = append(out, "-audit-scope", c.auditScope)
	}
	return out
}

// settingsWith is sensorSettings with what a run forced.
func settingsWith(c sensorChoice) string {
	s := sensorSettings
	if c.source != "" {
		s += "; source: " + c.source + " (vigil run --source)"
	}
	if c.auditScope != "" {
		s += "; kernel.audit_scope: " + c.auditScope
	}
	return s
}

// versions names everything the run depends on: the agents, the recorder, the kernel, Go, node.
func versions() map[string]string {
	v := map[string]string{"go": runtime.Version(), "kernel": commandLine("uname", "-r"),
		"strace": strings.TrimPrefix(commandLine("strace", "-V"), "strace -- version "), "node": commandLine("node", "--version")}
	for _, p := range pinned {
		v[p.Name] = p.Version
	}
	return v
}

// commandLine returns the first line a command prints, or what went wrong.
func commandLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return name + ": " + err.Error()
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return first
}

func passWord(ok bool) string {
	if ok {
		return "pass"
	}
	return "FAIL"
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// ensureAgents installs the pinned versions into dir unless they are already there.
func ensureAgents(dir string) (bool, error) {
	if agentsPresent(dir) {
		return false, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	args := []string{"install", "--no-audit", "--no-fund", "--no-save", "--prefix", dir}
	for _, p := range pinned {
		if p.OwnPrefix {
			continue
		}
		args = append(args, p.Name+"@"+p.Version)
	}
	if err := runNpm(args...); err != nil {
		return true, err
	}
	// npm ≥ 11 may skip install scripts it has not been told to allow; Claude Code's
	// postinstall copies the native binary over bin/claude.exe.
	exe := claudeBinary(dir)
	if !nativeBinary(exe) {
		cmd := exec.Command("node", "install.cjs")
		cmd.Dir = filepath.Dir(filepath.Dir(exe))
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return true, fmt.Errorf("claude-code postinstall: %w", err)
		}
	}
	if err := unpackCopilot(dir); err != nil {
		return true, err
	}
	if !agentsPresent(dir) {
		return true, fmt.Errorf("pinned versions still missing in %s after npm install", dir)
	}
	return true, nil
}

// copilotBinary is Copilot CLI's native single-executable binary, which the npm loader
// (.bin/copilot, node) spawns.
func copilotBinary(dir string) string {
	return filepath.Join(dir, "node_modules", "@github", "copilot-linux-x64", "copilot")
}

// copilotUnpacked says whether the binary's package is unpacked into copilotPkgCache: the
// binary marks a finished extraction with .extraction-complete (a partial one lacks it).
func copilotUnpacked(dir string) bool {
	p, _ := pinnedFor("copilot")
	_, err := os.Stat(filepath.Join(copilotPkgCache(dir), "pkg", "linux-x64", p.Version, ".extraction-complete"))
	return err == nil
}

// unpackCopilot has the binary unpack itself into copilotPkgCache (COPILOT_SEA_EXTRACT_ONLY),
// without network (unshare -n), once: otherwise every scenario's first start would.
func unpackCopilot(dir string) error {
	if copilotUnpacked(dir) {
		return nil
	}
	cmd := exec.Command("unshare", "-n", "env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin", "HOME="+dir,
		"COPILOT_SEA_EXTRACT_ONLY=1", "COPILOT_OFFLINE=true", "COPILOT_PKG_CACHE_HOME="+copilotPkgCache(dir), copilotBinary(dir), "--binary-version")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("copilot unpack: %w", err)
	}
	if !copilotUnpacked(dir) {
		return fmt.Errorf("copilot unpack: nothing in %s", copilotPkgCache(dir))
	}
	return nil
}

// agentsPresent says whether the pinned versions of the agents in the shared prefix dir are
// installed, native binaries included.
func agentsPresent(dir string) bool {
	for _, p := range pinned {
		if !p.OwnPrefix && !npmInstalled(dir, p.Name, p.Version) {
			return false
		}
	}
	if !nativeBinary(claudeBinary(dir)) {
		return false
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@openai", "codex-linux-x64")); err != nil {
		return false
	}
	// Gemini CLI is one bundled script; .bin/gemini links to it.
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@google", "gemini-cli", "bundle", "gemini.js")); err != nil {
		return false
	}
	// Copilot CLI: the npm loader's native binary (an optional dependency), unpacked.
	return nativeBinary(copilotBinary(dir)) && copilotUnpacked(dir)
}

// claudeBinary is Claude Code's native binary, which its postinstall puts in place.
func claudeBinary(dir string) string {
	return filepath.Join(dir, "node_modules", "@anthropic-ai", "claude-code", "bin", "claude.exe")
}

// npmInstalled says whether package name is installed at version under the npm prefix dir.
func npmInstalled(dir, name, version string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", name, "package.json"))
	if err != nil {
		return false
	}
	var pj struct{ Version string }
	return json.Unmarshal(b, &pj) == nil && pj.Version == version
}

// nativeBinary says whether an agent's native binary is in place: at least 1 MiB, since npm
// leaves a small placeholder (Claude Code) or nothing when an install script or optional
// dependency did not run.
func nativeBinary(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Size() >= 1<<20
}

// runNpm runs npm with args, its output on stderr beside the harness's log.
func runNpm(args ...string) error {
	logf("npm %s", strings.Join(args, " "))
	cmd := exec.Command("npm", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

// exampleScenario is the scenario whose trace docs/examples shows: every kind of tool call.
const exampleScenario = "filetools"

func writeExamples(rep Report, work, dir string) {
	done := map[string]bool{}
	scs := append([]ScenarioResult(nil), rep.Scenarios...)
	sort.SliceStable(scs, func(i, j int) bool { return scs[i].Name == exampleScenario && scs[j].Name != exampleScenario })
	for _, r := range scs {
		if done[r.Agent] || !r.StrongKeys || !r.Pass {
			continue
		}
		b, err := os.ReadFile(filepath.Join(work, r.Agent+"-"+r.Name, "trace.txt"))
		if err != nil || len(b) == 0 {
			continue
		}
		session := ""
		if len(r.Sessions) > 0 {
			session = " --session " + r.Sessions[0]
		}
		header := fmt.Sprintf("# vigil trace --jsonl events.jsonl%s   (bench/e2e scenario %s/%s, %s; make e2e E2E_FLAGS=\"-examples docs/examples\")\n# %s\n\n",
			session, r.Agent, r.Name, r.Version, r.Description)
		if err := os.MkdirAll(dir, 0o755); err == nil {
			os.WriteFile(filepath.Join(dir, r.Agent+".txt"), append([]byte(header), b...), 0o644)
			done[r.Agent] = true
		}
	}
}

// Timing is what -timing prints per scenario: the agent's wall time, from just before the
// harness starts the agent process to its exit (every process, for multi-process scenarios),
// taken inside the namespace by the in-namespace run (Meta.Start/End).
type Timing struct {
	Scenario     string   `json:"scenario"` // agent/name
	Sensor       bool     `json:"sensor"`   // whether `vigil run` ran
	AgentSeconds float64  `json:"agent_seconds"`
	Exit         []string `json:"exit"`
	Error        string   `json:"error,omitempty"`
}

// printTiming prints the scenario's Timing as one JSON line; false when the run failed.
func printTiming(sc Scenario, sdir string, sensor bool, runErr error, out []byte) bool {
	t := Timing{Scenario: sc.Agent + "/" + sc.Name, Sensor: sensor}
	var m Meta
	if b, err := os.ReadFile(filepath.Join(sdir, "meta.json")); err != nil {
		t.Error = err.Error()
	} else if err := json.Unmarshal(b, &m); err != nil {
		t.Error = err.Error()
	} else {
		t.AgentSeconds, t.Exit = m.AgentSeconds, m.Exit
	}
	if runErr != nil && t.Error == "" {
		t.Error = fmt.Sprintf("scenario run: %v: %s", runErr, strings.TrimSpace(lastLines(string(out), 5)))
	}
	b, _ := json.Marshal(t)
	fmt.Println(string(b))
	logf("%s (sensor %v): agent %.3fs %s", t.Scenario, sensor, t.AgentSeconds, t.Error)
	return t.Error == ""
}

// exists reports whether path names a file.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
