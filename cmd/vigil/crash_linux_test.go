package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKilledSensorKeepsWhatItHeld is the measurement: an agent opens 97 files, the
// sensor holds their lines for its 10 s correlation hold and is SIGKILLed inside it. Before
// the hold journal all 97 were lost without a trace. The next start must write each of them
// exactly once, marked recovered. The truth is the 97 file names the scenario made.
func TestKilledSensorKeepsWhatItHeld(t *testing.T) {
	const files = 97
	dir := t.TempDir()
	c := writeVigilConfig(t, dir, 10, "", "")
	s := launchVigil(t, c)

	work := t.TempDir()
	agent := bashAs(t, work, "claude")
	marker := "held-" + randHex(6)
	var want []string
	for i := range files {
		p := filepath.Join(work, fmt.Sprintf("%s-%03d", marker, i))
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		want = append(want, p)
	}
	// bash opens each file itself (a redirection): 97 opens from the agent's root process.
	script := fmt.Sprintf("for f in %s-*; do : < \"$f\"; done", marker)
	cmd := exec.Command(agent, "-c", script)
	cmd.Dir = work
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("agent: %v: %s", err, out)
	}

	// Wait until the sensor has the opens (they reach its journal within a pipeline flush),
	// well inside the 10 s hold.
	deadline := time.Now().Add(5 * time.Second)
	for journalMentions(t, c.journal, marker) < files {
		if time.Now().After(deadline) {
			t.Fatalf("the sensor's journal names %d of the %d files after 5 s", journalMentions(t, c.journal, marker), files)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := markerOpens(t, s, marker); len(n) != 0 {
		t.Fatalf("%d opens were written before the kill: the hold did not hold them, nothing is tested", len(n))
	}
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = s.cmd.Wait() // killed: the exit status says so

	next := launchVigil(t, c)
	next.stop(t, syscall.SIGTERM)
	got := markerOpens(t, next, marker)
	for _, p := range want {
		switch recovered := got[p]; {
		case len(recovered) == 0:
			t.Errorf("open of %s: no line after the restart", filepath.Base(p))
		case len(recovered) > 1:
			t.Errorf("open of %s: %d lines, want one", filepath.Base(p), len(recovered))
		case !recovered[0]:
			t.Errorf("open of %s: written without vigil.recovered", filepath.Base(p))
		}
	}
	if len(got) != files {
		t.Errorf("%d distinct files opened in the output, want %d", len(got), files)
	}
	if !strings.Contains(next.stderr.String(), "wrote them from its hold journal") {
		t.Errorf("the restart did not say it recovered held events:\n%s", next.stderr)
	}
	if left, _ := filepath.Glob(filepath.Join(c.journal, "*.hold")); len(left) != 0 {
		t.Errorf("journal segments left after a clean stop: %v", left)
	}
}

// journalMentions counts the distinct marker files (marker-NNN) the journal's segments
// name. Files, not mentions: every line of the agent's shell also names the marker in its
// argv (the for loop's glob), which once made the test kill the sensor too early.
func journalMentions(t *testing.T, dir, marker string) int {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "*.hold"))
	if err != nil {
		t.Fatal(err)
	}
	file := regexp.MustCompile(regexp.QuoteMeta(marker) + `-\d{3}`)
	seen := map[string]bool{}
	for _, p := range segs {
		data, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, m := range file.FindAllString(string(data), -1) {
			seen[m] = true
		}
	}
	return len(seen)
}

// markerOpens maps each opened file whose name has marker to the vigil.recovered flag of
// each line of its open.
func markerOpens(t *testing.T, s *runningSensor, marker string) map[string][]bool {
	t.Helper()
	out := map[string][]bool{}
	for _, m := range s.lines(t) {
		if str(m, "event.action") != "open" || !strings.Contains(str(m, "file.path"), marker) {
			continue
		}
		recovered, _ := field(m, "vigil.recovered")
		out[str(m, "file.path")] = append(out[str(m, "file.path")], recovered == true)
	}
	return out
}
