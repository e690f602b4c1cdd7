package jsonl

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vigil-sensor/vigil/internal/testenv"
	"github.com/vigil-sensor/vigil/proto"
)

// On a full disk the sink writes into the space it kept in reserve, so the records of that
// moment (and the pipeline's line counting what is lost next) still land; after that every
// record is either written or counted as an error, never silently gone.
func TestFullDiskUsesTheReserveThenCounts(t *testing.T) {
	testenv.RequireRoot(t, "mounting a small tmpfs")
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, 0) })
	path := filepath.Join(dir, "events.jsonl")
	w, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	reserve := filepath.Join(dir, ".events.jsonl.reserve")
	if fi, err := os.Stat(reserve); err != nil || fi.Size() != reserveBytes {
		t.Fatalf("reserve %v %v, want %d bytes", fi, err, reserveBytes)
	}
	// Fill the rest of the file system.
	filler, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := filler.Write(make([]byte, 4096)); err != nil {
			break
		}
	}
	filler.Close()

	event := &proto.Event{Event: proto.EventMeta{Action: proto.ActionOpen}, File: &proto.File{Path: strings.Repeat("x", 200)}}
	for range 100 {
		if err := w.Write(event); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("flush on a full disk with the reserve: %v", err)
	}
	if written, _, errs := w.Stats(); written != 100 || errs != 0 {
		t.Errorf("with the reserve: written %d errors %d, want 100 and 0", written, errs)
	}
	if _, err := os.Stat(reserve); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("reserve still there after use: %v", err)
	}
	// Past the reserve: records are counted, not lost silently.
	attempted := uint64(100)
	for range 50 {
		for range 100 {
			w.Write(event)
			attempted++
		}
		w.Flush()
	}
	written, _, errs := w.Stats()
	if errs == 0 || written+errs != attempted {
		t.Errorf("written %d + errors %d = %d, want every one of %d accounted, some as errors", written, errs, written+errs, attempted)
	}
}
