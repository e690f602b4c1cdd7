package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/proto/compact"
)

// TestReplayEsloggerCapture runs `vigil run --source eslogger --eslogger-input FILE` on the
// synthesized capture of a Claude Code tree among unrelated macOS processes
// (darwin/testdata/README.md): on any OS, without root, through the same decoder, tree filter,
// process table, correlator and JSONL output as a live run; the run ends with the capture.
func TestReplayEsloggerCapture(t *testing.T) {
	dir := t.TempDir()
	jsonl := filepath.Join(dir, "out", "events.jsonl")
	config := filepath.Join(dir, "vigil.yaml")
	// No network listener, hook socket or journal: nothing here needs root or a free port.
	// pipeline: the test binary's own GOMAXPROCS and memory limit are left alone.
	yaml := fmt.Sprintf("output:\n  untrusted_jsonl: \"\"\n  flood_jsonl: \"\"\n  store: %s\ncorrelate:\n  otlp_http: \"\"\n  otlp_grpc: \"\"\n  hook_socket: \"\"\n  hold_journal: \"\"\npipeline:\n  max_cpus: 0\n  memory_limit_mb: 0\n",
		filepath.Join(dir, "out", "vigil.db"))
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	err := runCommand([]string{"--config", config, "--source", "eslogger",
		"--eslogger-input", filepath.Join("..", "..", "darwin", "testdata", "agent-tree.jsonl"), "--jsonl", jsonl})
	if err != nil {
		t.Fatal(err)
	}

	lines := readJSONL(t, jsonl)
	var kernel []string
	var lost map[string]uint64
	var bootID string
	for _, e := range lines {
		switch e.Event.Action {
		case proto.ActionLost:
			for k, n := range e.Vigil.Lost {
				if lost == nil {
					lost = map[string]uint64{}
				}
				lost[k] += n
			}
			continue
		case proto.ActionAlert, proto.ActionSession, proto.ActionBinding:
			continue
		}
		if e.Event.Dataset != "vigil.kernel" {
			t.Errorf("unexpected line %s", e.Event.Action)
			continue
		}
		if e.Vigil.Source != "endpointsecurity" || e.Host == nil || !strings.HasPrefix(e.Host.BootID, "replay:") {
			t.Errorf("%s of %d: source %q host %+v", e.Event.Action, e.Process.Pid, e.Vigil.Source, e.Host)
		}
		bootID = e.Host.BootID
		// The recording machine's files are not this one's: a replay hashes nothing.
		if e.Process.Hash != nil || (e.Vigil.Exe != nil && e.Vigil.Exe.Hash != "") {
			t.Errorf("%s of %d: hash %+v %+v", e.Event.Action, e.Process.Pid, e.Process.Hash, e.Vigil.Exe)
		}
		s := fmt.Sprintf("%s %d root=%d %s parent=%d %s", e.Event.Action, e.Process.Pid, e.Vigil.Root.Pid, e.GenAI.Agent.Name, e.Process.Parent.Pid, e.Process.Executable)
		if e.File != nil {
			s += " " + e.File.Path
		}
		if e.Vigil.Rename != nil {
			s += " from " + e.Vigil.Rename.Source
		}
		kernel = append(kernel, s)
	}
	const claude = "/Users/dev/.local/share/claude/versions/2.0.14"
	want := []string{
		"exec 900 root=900 claude-code parent=812 " + claude,
		"open 900 root=900 claude-code parent=812 " + claude + " /Users/dev/project/README.md",
		"fork 901 root=900 claude-code parent=900 " + claude,
		"exec 901 root=900 claude-code parent=900 /bin/bash",
		"create 901 root=900 claude-code parent=900 /bin/bash /Users/dev/project/marker.txt",
		"open 901 root=900 claude-code parent=900 /bin/bash /Users/dev/project/marker.txt",
		"write 901 root=900 claude-code parent=900 /bin/bash /Users/dev/project/marker.txt",
		"close 901 root=900 claude-code parent=900 /bin/bash /Users/dev/project/marker.txt",
		"fork 902 root=900 claude-code parent=901 /bin/bash",
		"exec 902 root=900 claude-code parent=901 /bin/mv",
		"rename 902 root=900 claude-code parent=901 /bin/mv /Users/dev/project/marker.done from /Users/dev/project/marker.txt",
		"exit 902 root=900 claude-code parent=901 /bin/mv",
		"exit 901 root=900 claude-code parent=900 /bin/bash",
		"exit 900 root=900 claude-code parent=812 " + claude,
	}
	if strings.Join(kernel, "\n") != strings.Join(want, "\n") {
		t.Errorf("kernel lines:\n%s\nwant:\n%s", strings.Join(kernel, "\n"), strings.Join(want, "\n"))
	}
	// The three messages ES dropped after the rename: two opens by their own numbering, one
	// write shown by global_seq_num alone.
	if lost["open"] != 2 || lost["seq_gap"] != 1 || len(lost) != 2 {
		t.Errorf("lost %v, want open 2 and seq_gap 1", lost)
	}
	if !strings.HasPrefix(bootID, "replay:") {
		t.Errorf("boot id %q", bootID)
	}
	raw, err := os.ReadFile(jsonl)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"NOTAREAL", "git status", "mdworker"} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("%q reached the output", secret)
		}
	}
}

// readJSONL reads the events of a JSONL file as vigil trace does: compact lines restored.
func readJSONL(t *testing.T, path string) []*proto.Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []*proto.Event
	restorer := compact.NewRestorer(0)
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e proto.Event
		if err := proto.UnmarshalJSON(sc.Bytes(), &e); err != nil {
			t.Fatalf("%v: %s", err, sc.Text())
		}
		if err := restorer.Restore(&e); err != nil {
			t.Fatal(err)
		}
		out = append(out, &e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
