package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/sensor/sink/otlp"
	"github.com/vigil-sensor/vigil/sensor/sink/otlp/otlptest"
)

// chainField is the field output.sign appends to each line (docs/integrity.md); without it a
// line is the record as the pipeline encoded it, which is what the OTLP body carries.
var chainField = regexp.MustCompile(`,"chain":\{"seq":\d+,"prev":"[0-9a-f]{64}"\}\}$`)

// TestRunFleetOutputs runs `vigil run` with the fleet outputs on — output.sign, the OTLP
// export to a real OpenTelemetry Collector over gRPC, in each output.format — while an agent
// tree opens marker files the test made. The collector is stopped for the middle third of
// the markers and started again. Judged by the markers and by the collector's own file
// exporter (never by the sensor's counters):
//   - every marker's open is in the JSONL once, and arrived at the collector under one record
//     id (a resent copy must say so: vigil.export.attempt >= 2);
//   - the JSONL files and the collector hold the same records, byte for byte (the JSONL line
//     without its chain field is the OTLP body, whichever the format);
//   - `vigil verify`, pinned to the key log's first line copied at start, finds the events
//     file intact and sealed to its last line.
func TestRunFleetOutputs(t *testing.T) {
	for _, format := range []string{"ecs", "ocsf"} {
		t.Run(format, func(t *testing.T) {
			col := otlptest.New(t)
			col.Start()
			dir := t.TempDir()
			keyDir := filepath.Join(dir, "sign")
			output := fmt.Sprintf("  format: %s\n  sign: true\n  sign_key_dir: %s\n  seal_interval_seconds: 1\n"+
				"  otlp:\n    endpoint: http://%s\n    protocol: grpc\n    spool_dir: %s\n",
				format, keyDir, col.GRPCAddr, filepath.Join(dir, "spool"))
			c := writeVigilConfig(t, dir, 1, output, "")
			s := launchVigil(t, c)

			// The pin an admin copies off the machine when the key is made.
			pin := filepath.Join(t.TempDir(), "events.pin")
			keyLog, err := os.ReadFile(filepath.Join(keyDir, "events.jsonl.pub"))
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := bytes.Cut(keyLog, []byte("\n"))
			if err := os.WriteFile(pin, append(first, '\n'), 0o600); err != nil {
				t.Fatal(err)
			}

			work := t.TempDir()
			agent := bashAs(t, work, "claude")
			const n = 300
			markers := make([]string, n)
			for i := range markers {
				markers[i] = filepath.Join(work, fmt.Sprintf("m-%03d", i))
				if err := os.WriteFile(markers[i], []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			open := func(from, to int) {
				t.Helper()
				cmd := exec.Command(agent, "-c", "cat \"$@\" >/dev/null", "agent")
				for _, m := range markers[from:to] {
					cmd.Args = append(cmd.Args, filepath.Base(m)) // the exec line names no marker's path
				}
				cmd.Dir = work
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("agent: %v: %s", err, out)
				}
			}
			open(0, n/3)
			col.Stop() // mid-stream: the exporter's batches are in flight
			col.Wait()
			open(n/3, 2*n/3)
			time.Sleep(1500 * time.Millisecond) // the exporter tries, fails and spools meanwhile
			col.Start()
			open(2*n/3, n)
			time.Sleep(300 * time.Millisecond) // past the reader's poll and the sink's flush
			s.stop(t, syscall.SIGTERM)         // the exporter sends what is left before it exits
			col.Stop()
			col.Wait()

			lines := jsonlWithoutChain(t, c.jsonl, c.untrusted)
			records := col.Records()
			bodies := map[string]bool{}
			idsOf := map[string]map[string]bool{} // marker -> record ids it arrived under
			for _, r := range records {
				bodies[r.Body] = true
				id, _ := r.Attrs[otlp.AttrRecordID].(string)
				for _, m := range markersIn(r.Body, markers) {
					if idsOf[m] == nil {
						idsOf[m] = map[string]bool{}
					}
					if idsOf[m][id] && r.Int(otlp.AttrAttempt) < 2 {
						t.Errorf("record %s (%s) arrived again with attempt %d: an unmarked duplicate", id, m, r.Int(otlp.AttrAttempt))
					}
					idsOf[m][id] = true
				}
			}
			inJSONL := map[string]int{}
			for _, l := range lines {
				for _, m := range markersIn(l, markers) {
					inJSONL[m]++
				}
				if !bodies[l] {
					t.Errorf("a JSONL record never reached the collector: %.200s", l)
				}
			}
			jsonlSet := map[string]bool{}
			for _, l := range lines {
				jsonlSet[l] = true
			}
			for b := range bodies {
				if !jsonlSet[b] {
					t.Errorf("the collector holds a record the JSONL does not: %.200s", b)
				}
			}
			for _, m := range markers {
				if inJSONL[m] != 1 || len(idsOf[m]) != 1 {
					t.Errorf("%s: %d JSONL lines, %d record ids at the collector; want 1 and 1", filepath.Base(m), inJSONL[m], len(idsOf[m]))
				}
			}

			out, err := exec.Command(vigilBin, "verify", "--key", pin, "--config", c.path, c.jsonl).CombinedOutput()
			if err != nil {
				t.Errorf("vigil verify: %v\n%s", err, out)
			}
			t.Logf("%d JSONL records, %d log records at the collector; verify: %s", len(lines), len(records), strings.TrimSpace(string(out)))
		})
	}
}

// jsonlWithoutChain is every line of the files but their seals, with the chain field cut off.
func jsonlWithoutChain(t *testing.T, paths ...string) []string {
	t.Helper()
	var lines []string
	for _, path := range paths {
		f, err := os.Open(path)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			l := sc.Text()
			if !chainField.MatchString(l) {
				t.Fatalf("%s: a line without its chain field: %.200s", path, l)
			}
			if strings.Contains(l, `"dataset":"vigil.integrity"`) {
				continue // a seal: the JSONL writer's own, never exported
			}
			lines = append(lines, chainField.ReplaceAllString(l, "}"))
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return lines
}

// markersIn is the markers whose path a line names (as a whole JSON string).
func markersIn(line string, markers []string) []string {
	var in []string
	for _, m := range markers {
		if strings.Contains(line, `"`+m+`"`) {
			in = append(in, m)
		}
	}
	return in
}
