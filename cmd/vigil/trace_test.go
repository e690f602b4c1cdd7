package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-sensor/vigil/correlate/workflow"
	"github.com/vigil-sensor/vigil/internal/testenv"
	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/proto/compact"
)

// The fixture comes from correlate/workflow's tests (go test ./correlate/workflow/ -update
// rewrites it): a Claude Code session, a Codex session and an agent tree without a session.
// The golden text is its rendering (go test ./cmd/vigil/ -run TestTraceTextMatchesGolden
// -update rewrites it).
const (
	traceFixture    = "../../correlate/workflow/testdata/sessions.jsonl"
	traceGoldenText = "testdata/sessions.txt.golden"
	traceCodex      = "019a8c1e-7d2f-7c40-9b1e-5a3f2e8d4c11"
	traceClaude     = "5b9d8f1e-2c47-4e0a-9a65-3d1f7c2b8e90"
)

// The repositories the golden text was made with.
func traceRepos(dir string) string {
	return map[string]string{
		"/home/dev/app": "git@github.com:acme/app.git",
		"/home/dev/svc": "https://github.com/acme/svc.git",
	}[dir]
}

// traceInput is the fixture with two malformed lines and a blank one mixed in.
func traceInput(t *testing.T) (path string, data []byte) {
	t.Helper()
	b, err := os.ReadFile(traceFixture)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	var buf bytes.Buffer
	for i, l := range lines {
		buf.WriteString(l)
		switch i {
		case 2:
			buf.WriteString("not json at all\n")
		case 5:
			buf.WriteString("\n")
		case 7:
			buf.WriteString(`{"@timestamp":"yesterday","event":{"action":"exec"}}` + "\n")
		}
	}
	path = filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, buf.Bytes()
}

func TestTraceJSONSession(t *testing.T) {
	path, _ := traceInput(t)
	var out, errOut bytes.Buffer
	if err := runTrace([]string{"--jsonl", path, "--format", "json", "--session", traceCodex}, nil, &out, &errOut, traceRepos); err != nil {
		t.Fatalf("trace: %v\n%s", err, errOut.String())
	}
	var wfs []workflow.Workflow
	if err := json.Unmarshal(out.Bytes(), &wfs); err != nil {
		t.Fatalf("output is not a JSON array of workflows: %v\n%s", err, out.String())
	}
	if len(wfs) != 1 {
		t.Fatalf("%d workflows, want only the Codex session", len(wfs))
	}
	w := wfs[0]
	if w.SessionID != traceCodex || w.Agent != "codex" || w.Repository != "https://github.com/acme/svc.git" || w.WorkingDirectory != "/home/dev/svc" {
		t.Errorf("workflow %s %s %s %s", w.SessionID, w.Agent, w.Repository, w.WorkingDirectory)
	}
	if len(w.Prompts) != 1 || w.Prompts[0].Text != "rename the config loader" || len(w.Prompts[0].ToolCalls) != 2 {
		t.Fatalf("prompts %+v", w.Prompts)
	}
	patch := w.Prompts[0].ToolCalls[1]
	if patch.Name != "apply_patch" || patch.Approval != workflow.ApprovalNone || len(patch.FilesWritten) != 2 {
		t.Errorf("apply_patch %+v", patch)
	}
	if !slices.Equal(w.FilesChanged, []string{"/home/dev/svc/src/config.rs", "/home/dev/svc/src/loader.rs"}) {
		t.Errorf("files changed %q", w.FilesChanged)
	}
	// The JSON names are snake_case and lists are arrays even when empty.
	for _, key := range []string{`"session_id"`, `"tool_calls"`, `"files_written"`, `"duration_ms"`, `"unexplained": {`, `"processes": []`, `"untrusted_telemetry": []`} {
		if !strings.Contains(out.String(), key) {
			t.Errorf("JSON lacks %s", key)
		}
	}
	wantErr := "vigil trace: skipped 2 malformed lines in " + path + " (first: line 4: unmarshal json: want a JSON object, input starts with 'n')\n"
	if errOut.String() != wantErr {
		t.Errorf("stderr %q\nwant %q", errOut.String(), wantErr)
	}
}

var traceUpdate = flag.Bool("update", false, "rewrite testdata/sessions.txt.golden from the current rendering")

// traceGolden reads the fixture and its golden rendering.
func traceGolden(t *testing.T) (fixture, text []byte) {
	t.Helper()
	text, err := os.ReadFile(traceGoldenText)
	if err != nil {
		t.Fatal(err)
	}
	fixture, err = os.ReadFile(traceFixture)
	if err != nil {
		t.Fatal(err)
	}
	return fixture, text
}

func TestTraceTextMatchesGolden(t *testing.T) {
	data, want := traceGolden(t)
	// From stdin, default format.
	var out, errOut bytes.Buffer
	if err := runTrace([]string{"--jsonl", "-"}, bytes.NewReader(data), &out, &errOut, traceRepos); err != nil {
		t.Fatalf("trace: %v", err)
	}
	if *traceUpdate {
		if err := os.WriteFile(traceGoldenText, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if out.String() != string(want) {
		t.Errorf("text output differs from %s (-update rewrites it)\n--- got\n%s", traceGoldenText, out.String())
	}
	if errOut.Len() != 0 {
		t.Errorf("stderr %q on a clean file", errOut.String())
	}
}

// The fixture written with compact lines (output.compact) renders the same text.
func TestTraceReadsCompactLines(t *testing.T) {
	data, want := traceGolden(t)
	var in bytes.Buffer
	w := compact.NewWriter(0)
	n := 0
	for _, l := range bytes.SplitAfter(data, []byte("\n")) {
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		var e proto.Event
		if err := proto.UnmarshalJSON(l, &e); err != nil {
			t.Fatal(err)
		}
		v := w.Line(&e)
		if v.Vigil.Compact {
			n++
		}
		line, err := proto.AppendLine(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		in.Write(line)
	}
	if n == 0 {
		t.Fatal("no compact line: the fixture has no process with two kernel lines")
	}
	var out, errOut bytes.Buffer
	if err := runTrace([]string{"--jsonl", "-"}, &in, &out, &errOut, traceRepos); err != nil {
		t.Fatalf("trace: %v", err)
	}
	if out.String() != string(want) || errOut.Len() != 0 {
		t.Errorf("%d compact lines: text differs from %s (stderr %q)\n--- got\n%s", n, traceGoldenText, errOut.String(), out.String())
	}
}

// Untrusted telemetry written apart (output.untrusted_jsonl) is read with --untrusted: the
// two files give the trace the one file gives.
func TestTraceReadsUntrustedApart(t *testing.T) {
	data, err := os.ReadFile(traceFixture)
	if err != nil {
		t.Fatal(err)
	}
	var events, untrusted strings.Builder
	for _, l := range strings.SplitAfter(string(data), "\n") {
		if strings.Contains(l, `"agent.untrusted_telemetry"`) {
			untrusted.WriteString(l)
		} else {
			events.WriteString(l)
		}
	}
	if untrusted.Len() == 0 {
		t.Fatal("the fixture has no untrusted line: nothing to test")
	}
	dir := t.TempDir()
	eventsPath, untrustedPath := filepath.Join(dir, "events.jsonl"), filepath.Join(dir, "untrusted.jsonl")
	for path, text := range map[string]string{eventsPath: events.String(), untrustedPath: untrusted.String()} {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var whole, apart, without, errOut bytes.Buffer
	for _, run := range []struct {
		args []string
		in   io.Reader
		out  *bytes.Buffer
	}{
		{[]string{"--jsonl", "-"}, bytes.NewReader(data), &whole},
		{[]string{"--jsonl", eventsPath, "--untrusted", untrustedPath}, nil, &apart},
		{[]string{"--jsonl", eventsPath}, nil, &without},
	} {
		if err := runTrace(run.args, run.in, run.out, &errOut, traceRepos); err != nil {
			t.Fatalf("trace %v: %v\n%s", run.args, err, errOut.String())
		}
	}
	if apart.String() != whole.String() {
		t.Errorf("trace of the two files differs from the trace of one:\n--- two\n%s\n--- one\n%s", apart.String(), whole.String())
	}
	if without.String() == whole.String() {
		t.Error("the trace without the untrusted file is the same: the fixture's untrusted line shows nowhere")
	}
}

// TestTraceCommand runs the command as main does, on a file, with the real repository lookup.
func TestTraceCommand(t *testing.T) {
	path, _ := traceInput(t)
	out, errOut := captureStdio(t, func() {
		if err := traceCommand([]string{"--jsonl", path, "--session", "5b9d8f1e", "--format", "text"}); err != nil {
			t.Errorf("traceCommand: %v", err)
		}
	})
	for _, want := range []string{
		"Session " + traceClaude + " - claude-code on host vm, ",
		"cwd /home/dev/app", // with a repository only where /home/dev/app is one
		"root pid 1200, 2025-11-24 08:36:35-08:36:42 UTC\n",
		"     read  /home/dev/.aws/credentials  [secret-looking]  by curl pid 1300\n",
		"     wrote /home/dev/app/parse_test.go  (O_CREAT|O_TRUNC)  (atomic write via parse_test.go.tmp.1200.19a8f3c2b1d)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, traceCodex) {
		t.Errorf("--session let the Codex session through:\n%s", out)
	}
	if !strings.Contains(errOut, "skipped 2 malformed lines") {
		t.Errorf("stderr %q", errOut)
	}
}

func TestTraceErrors(t *testing.T) {
	path, _ := traceInput(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "--jsonl PATH is required"},
		{[]string{"--jsonl", path, "--format", "yaml"}, `--format "yaml": want text or json`},
		{[]string{"--jsonl", filepath.Join(t.TempDir(), "missing.jsonl")}, "no such file"},
		{[]string{"--jsonl", path, "--session", "nope"}, `no session matching "nope"`},
		{[]string{"--jsonl", path, "extra"}, `unexpected argument "extra"`},
		{[]string{"--bogus"}, "flag provided but not defined"},
	} {
		var out, errOut bytes.Buffer
		err := runTrace(tc.args, nil, &out, &errOut, traceRepos)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("trace %q: error %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestTraceEmptyInput(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := runTrace([]string{"--jsonl", "-", "--format", "json"}, strings.NewReader(""), &out, &errOut, traceRepos); err != nil {
		t.Fatal(err)
	}
	if out.String() != "[]\n" {
		t.Errorf("json for no events %q", out.String())
	}
	out.Reset()
	errOut.Reset()
	if err := runTrace([]string{"--jsonl", "-"}, strings.NewReader("garbage\n"), &out, &errOut, traceRepos); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 || !strings.Contains(errOut.String(), "skipped 1 malformed line in - (first: line 1:") ||
		!strings.Contains(errOut.String(), "no agent activity in -") {
		t.Errorf("out %q err %q", out.String(), errOut.String())
	}
}

func TestTraceGitRemote(t *testing.T) {
	testenv.LookPath(t, "git")
	t.Setenv("GIT_CONFIG_GLOBAL", os.DevNull)
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	repo := t.TempDir()
	for _, args := range [][]string{
		{"init", "-q", repo},
		{"-C", repo, "config", "remote.origin.url", "https://dev:s3cr3tpassw0rd@git.example.com/acme/app.git"},
	} {
		if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
			t.Fatalf("git %q: %v\n%s", args, err, out)
		}
	}
	sub := filepath.Join(repo, "pkg")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	got := gitRemoteURL(sub)
	if strings.Contains(got, "s3cr3tpassw0rd") || !strings.Contains(got, "git.example.com/acme/app.git") || !strings.Contains(got, "[REDACTED]") {
		t.Errorf("gitRemoteURL = %q: want the URL with the password redacted", got)
	}
	// Root reads a repository someone else owns (git refuses those by default).
	if os.Geteuid() == 0 {
		if err := filepath.Walk(repo, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, 65534, 65534)
		}); err != nil {
			t.Fatal(err)
		}
		if got := gitRemoteURL(sub); !strings.Contains(got, "git.example.com/acme/app.git") {
			t.Errorf("gitRemoteURL(repository of another owner) = %q", got)
		}
	}
	if got := gitRemoteURL(t.TempDir()); got != "" {
		t.Errorf("gitRemoteURL(not a repository) = %q", got)
	}
	if got := gitRemoteURL(filepath.Join(repo, "does-not-exist")); got != "" {
		t.Errorf("gitRemoteURL(missing dir) = %q", got)
	}
}

// captureStdio runs f with os.Stdout and os.Stderr sent to pipes and returns what it wrote.
func captureStdio(t *testing.T, f func()) (string, string) {
	t.Helper()
	read := func(r *os.File, into *string, done chan<- struct{}) {
		b, _ := io.ReadAll(r)
		*into = string(b)
		close(done)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut string
	outDone, errDone := make(chan struct{}), make(chan struct{})
	go read(outR, &out, outDone)
	go read(errR, &errOut, errDone)
	oldOut, oldErr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = outW, errW
	defer func() { os.Stdout, os.Stderr = oldOut, oldErr }()
	f()
	os.Stdout, os.Stderr = oldOut, oldErr
	outW.Close()
	errW.Close()
	<-outDone
	<-errDone
	return out, errOut
}
