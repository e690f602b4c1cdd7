package jsonl

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-sensor/vigil/sensor/sink/sign"
)

// failingWriter is a file that refuses every write, as a lost disk does.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk gone") }

// Lines a failed flush dropped are counted as errors and are not in the chain: the next line
// follows the last line the file holds, so the file still verifies, and the loss is told by
// the counters (and the sensor's lost records), not by a broken chain.
func TestSignedFailedFlushRollsBackTheChain(t *testing.T) {
	dir := t.TempDir()
	signer, err := sign.Open(sign.Options{KeyDir: filepath.Join(dir, "keys"), Name: "events.jsonl"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "events.jsonl")
	w, err := Open(Options{Path: path, Sign: signer})
	if err != nil {
		t.Fatal(err)
	}
	write := func(from, to uint64) {
		for i := from; i < to; i++ {
			if err := w.Write(event(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(1, 4)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	write(4, 8)
	w.out = failingWriter{}
	if err := w.Flush(); err == nil {
		t.Fatal("Flush on a failing file: want an error")
	}
	w.out = w.file
	write(8, 10)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if written, _, errs := w.Stats(); written != 5 || errs != 4 {
		t.Errorf("written %d errors %d, want 5 and 4", written, errs)
	}
	certs, err := sign.ReadKeyLog(sign.KeyLogPath(filepath.Join(dir, "keys"), "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := sign.Verify([]sign.Source{{Name: "events.jsonl", R: bytes.NewReader(b)}}, sign.Trust{Root: certs[0].Key})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Intact() || r.Lines != 1+3+2+1 {
		t.Errorf("after a failed flush: %+v, problem %v; want an intact file of 7 lines", r, r.Problem)
	}
}

func TestSignedStdoutIsRefused(t *testing.T) {
	signer, err := sign.Open(sign.Options{KeyDir: filepath.Join(t.TempDir(), "keys"), Name: "events.jsonl"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Path: Stdout, Sign: signer}); err == nil {
		t.Error("a signed standard output: want an error")
	}
}

// A start seal that cannot be written (the key log's place taken by a directory) does not keep
// the sink from opening: the lines are written and chained, and the first Flush says why the
// file is not sealed.
func TestSignedOpenSurvivesAFailedStartSeal(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if _, err := sign.Open(sign.Options{KeyDir: keys, Name: "events.jsonl"}); err != nil { // the key
		t.Fatal(err)
	}
	if err := os.Remove(sign.KeyLogPath(keys, "events.jsonl")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(sign.KeyLogPath(keys, "events.jsonl"), 0o700); err != nil {
		t.Fatal(err)
	}
	signer, err := sign.Open(sign.Options{KeyDir: keys, Name: "events.jsonl"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "events.jsonl")
	w, err := Open(Options{Path: path, Sign: signer})
	if err != nil {
		t.Fatalf("Open with a failing start seal: %v", err)
	}
	if err := w.Write(event(1)); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err == nil || !strings.Contains(err.Error(), "seal") {
		t.Errorf("first Flush: %v, want the start seal's error", err)
	}
	if err := w.Flush(); err != nil {
		t.Errorf("second Flush: %v, want the error reported once", err)
	}
	w.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := sign.ParseLink(bytes.TrimSuffix(b, []byte("\n"))); !ok || l.Seq != 1 || bytes.Count(b, []byte("\n")) != 1 {
		t.Errorf("file %q: want the one event, chained as seq 1", b)
	}
}
