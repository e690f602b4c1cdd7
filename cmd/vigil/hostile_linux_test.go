package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	pb "google.golang.org/protobuf/proto"
)

// Hostile input cannot make the sensor grow without bound (issue 10, part 1): 64 concurrent
// 7.9 MiB OTLP posts (which took it to 1.4 GiB) and four hook frames of ~1 M nested arrays
// (67 → 825 MiB) leave the real `vigil run`, shipped defaults, under 128 MiB of peak RSS,
// alive and answering.
const hostileRSSCeiling = 128 << 20

func TestHostileInputKeepsMemoryBounded(t *testing.T) {
	s := startVigil(t, "")
	httpAddr := otlpHTTPAddr(t, s)

	// A valid export of one log record whose body is a 7.9 MiB string: read, decoded, and
	// adapted to nothing (no agent event name).
	big := strings.Repeat("x", 8_280_000) // 7.9 MiB
	body, err := pb.Marshal(&collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		ScopeLogs: []*logspb.ScopeLogs{{LogRecords: []*logspb.LogRecord{{Body: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: big}}}}}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	codes := make(chan int, 64)
	client := &http.Client{Timeout: 60 * time.Second}
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Post("http://"+httpAddr+"/v1/logs", "application/x-protobuf", bytes.NewReader(body))
			if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
				// Refused before its body was read: the server answers 503 and closes, and the
				// kernel's reset for the unread body can reach the client before the answer.
				codes <- http.StatusServiceUnavailable
				return
			}
			if err != nil {
				t.Logf("post: %v", err)
				codes <- -1
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	// Four depth bombs on the hook socket at the same time.
	sock := s.hookSocket
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("unix", sock)
			if err != nil {
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			c.Write(nestedArraysFrame(1<<20 - 16))
			var ack [1]byte
			c.Read(ack[:])
		}()
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	t.Logf("OTLP answers by status: %v", count)
	if count[http.StatusOK]+count[http.StatusServiceUnavailable] != 64 {
		t.Errorf("answers %v: want every post accepted (200) or refused as busy (503)", count)
	}
	if count[http.StatusOK] == 0 {
		t.Errorf("no post got through: the budget refused everything (%v)", count)
	}

	// Alive and answering: a small post goes through at once.
	resp, err := client.Post("http://"+httpAddr+"/v1/logs", "application/x-protobuf", bytes.NewReader(nil))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("after the attack, an empty post: %v %v", resp, err)
	}
	resp.Body.Close()
	peak := peakRSS(t, s.cmd.Process.Pid)
	t.Logf("peak RSS of vigil run: %.1f MiB (ceiling %d MiB)", float64(peak)/(1<<20), hostileRSSCeiling>>20)
	if peak > hostileRSSCeiling {
		t.Errorf("peak RSS %d MiB > %d MiB", peak>>20, hostileRSSCeiling>>20)
	}
	s.stop(t, os.Interrupt)
}

// nestedArraysFrame is a hook frame whose unknown field holds levels nested arrays.
func nestedArraysFrame(levels int) []byte {
	b := []byte{0x81, 0xa1, 'x'}
	b = append(b, bytes.Repeat([]byte{0x91}, levels)...)
	b = append(b, 0xc0)
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
}

// peakRSS is the process's VmHWM from /proc, in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

// An outsider's flood of untrusted telemetry cannot rotate the agents' evidence away (issue
// 10, part 2): it goes to its own file with its own rotation. The flood here is far larger
// than the events file's whole retention (1 MiB, one rotated file), and the agent's open,
// written before it, is still in the events file afterwards, which never rotated.
func TestUntrustedFloodCannotRotateAgentEvidence(t *testing.T) {
	const limits = "  max_size_mb: 1\n  max_files: 1\n  untrusted_max_size_mb: 1\n  untrusted_max_files: 1\n"
	// The untrusted byte rate (correlate.TestUntrustedBodiesAreRateLimitedBeforeTheyAreRead) would refuse most of this
	// flood before reading it; here the flood must be written, to test where it goes.
	s := launchVigil(t, writeVigilConfig(t, t.TempDir(), 1, limits, "  untrusted_kb_per_second: 65536\n"))
	work := t.TempDir()
	agent := bashAs(t, work, "claude")
	evidence := filepath.Join(work, "evidence-"+randHex(6))
	if err := os.WriteFile(evidence, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(agent, "-c", ": < "+evidence).CombinedOutput(); err != nil {
		t.Fatalf("agent: %v: %s", err, out)
	}
	isEvidence := func(m map[string]any) bool {
		return str(m, "event.action") == "open" && str(m, "file.path") == evidence
	}
	waitForLine(t, s, isEvidence)

	// The test process is outside every agent tree: whatever it posts is untrusted. Ten posts
	// of ten 100 KiB prompts: 100 lines of ~60 KiB (each cut to the line limit, not dropped),
	// the sender's whole burst, ~6 MiB against 2 MiB of retention per file.
	o := newOTLPClient("http://" + otlpHTTPAddr(t, s))
	c := &claudeTelemetry{spec: fakeSpec{Session: uuid(), Prompt: uuid(), Trace: randHex(16)}, pid: "1", interaction: randHex(8)}
	prompt := strings.Repeat("forged ", 100<<10/7)
	for range 10 {
		var records []any
		for range 10 {
			records = append(records, c.log("user_prompt", time.Now(), kvStr("prompt", prompt)))
		}
		if err := o.post(context.Background(), "/v1/logs", c.logs(records...)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Second) // two releases and flushes
	s.stop(t, os.Interrupt)

	if _, err := os.Stat(s.jsonl + ".1"); err == nil {
		t.Errorf("the events file rotated during the flood")
	}
	found, untrustedInEvents := false, 0
	for _, m := range linesOf(t, s.jsonl) {
		found = found || isEvidence(m)
		if str(m, "event.action") == "agent.untrusted_telemetry" {
			untrustedInEvents++
		}
	}
	if !found {
		t.Errorf("the agent's open of %s is gone from the events file after the flood", evidence)
	}
	if untrustedInEvents > 0 {
		t.Errorf("%d untrusted lines in the events file", untrustedInEvents)
	}
	if _, err := os.Stat(s.config.untrusted + ".1"); err != nil {
		t.Fatalf("the untrusted file never rotated (%v): the flood was too small to test anything", err)
	}
	truncated := 0
	for _, m := range linesOf(t, s.config.untrusted) {
		if v, _ := field(m, "vigil.truncated"); containsAny(v, "vigil.prompt.text") {
			truncated++
		}
	}
	if truncated == 0 {
		t.Errorf("no untrusted line says its 100 KiB prompt was cut (vigil.truncated)")
	}
}

// An agent tree's own flood (rg over a monorepo, a test runner) cannot rotate the evidence
// before it away either (issue 16): past output.tree_lines_per_minute its lines go to the
// flood file, with its own rotation. The flood here (20,000 opens of distinct files, ~7 MB of
// lines) is far larger than either file's retention (1 MiB and one rotated file each); the
// tree's open before it is still in the events file afterwards, which never rotated, and
// holds no more of the flood than the budget allows.
func TestTreeFloodCannotRotateEvidence(t *testing.T) {
	const budget = 200 // lines a minute, and the burst
	limits := fmt.Sprintf("  max_size_mb: 1\n  max_files: 1\n  flood_max_size_mb: 1\n  flood_max_files: 1\n  tree_lines_per_minute: %d\n", budget)
	s := launchVigil(t, writeVigilConfig(t, t.TempDir(), 1, limits, ""))
	work := t.TempDir()
	agent := bashAs(t, work, "claude")
	evidence := filepath.Join(work, "evidence-"+randHex(6))
	if err := os.WriteFile(evidence, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(work, "tree")
	const files, passes = 2000, 10
	if err := os.Mkdir(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range files {
		if err := os.WriteFile(filepath.Join(tree, fmt.Sprintf("f%04d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	script := fmt.Sprintf(": < %s; cd %s; for i in $(seq %d); do cat f* > /dev/null; done", evidence, tree, passes)
	if out, err := exec.Command(agent, "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("agent: %v: %s", err, out)
	}
	elapsed := time.Since(start)
	time.Sleep(1500 * time.Millisecond) // the hold, a release and a flush
	s.stop(t, os.Interrupt)

	if _, err := os.Stat(s.jsonl + ".1"); err == nil {
		t.Errorf("the events file rotated during the tree's flood")
	}
	if _, err := os.Stat(s.config.floods + ".1"); err != nil {
		t.Fatalf("the flood file never rotated (%v): the flood was too small to test anything", err)
	}
	found, treeOpens := false, 0
	for _, m := range linesOf(t, s.jsonl) {
		if str(m, "event.action") == "open" && str(m, "file.path") == evidence {
			found = true
		}
		if str(m, "event.action") == "open" && strings.HasPrefix(str(m, "file.path"), tree+"/") {
			treeOpens++
			if fieldIs(m, "vigil.flood", true) {
				t.Errorf("a flood line in the events file: %v", m)
			}
		}
	}
	if !found {
		t.Errorf("the agent's open of %s is gone from the events file after the flood", evidence)
	}
	// The burst, what the rate earned while the loop ran, and a margin for the shell's own.
	if most := budget + int(elapsed.Minutes()*budget) + 10; treeOpens > most {
		t.Errorf("%d of the flood's opens in the events file over %s: the budget allows %d", treeOpens, elapsed.Round(time.Millisecond), most)
	}
	flood := 0
	for _, path := range []string{s.config.floods + ".1", s.config.floods} {
		for _, m := range linesOf(t, path) {
			flood++
			if !fieldIs(m, "vigil.flood", true) || str(m, "event.action") == "exec" {
				t.Errorf("a line in the flood file that is not a flood line: %v", m)
			}
		}
	}
	t.Logf("%d of the flood's %d opens in the events file over %s, %d flood lines kept", treeOpens, files*passes, elapsed.Round(time.Millisecond), flood)

	// The store keeps what the events file keeps, whole (its process context, though the
	// lines were compact), and none of the flood's surplus.
	var out, errOut bytes.Buffer
	q := fmt.Sprintf("SELECT count(*) AS n, count(executable) AS whole FROM events WHERE action = 'open' AND file_path LIKE '%s/%%'", tree)
	if err := runQuery(context.Background(), []string{"--db", s.config.store, "--format", "csv", q}, nil, &out, &errOut); err != nil {
		t.Fatalf("query: %v: %s", err, errOut.String())
	}
	if want := fmt.Sprintf("n,whole\n%d,%d\n", treeOpens, treeOpens); out.String() != want {
		t.Errorf("the store's opens of the flood: %q, want %q (the events file's, each with its executable)", out.String(), want)
	}
}
