package jsonl

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
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
