package sensor

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/proto"
)

func sumHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// idOfPath is the identity of the file at p now, as the kernel would report it at exec.
func idOfPath(t *testing.T, p string) FileID {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	id, ok := FileIDOfInfo(fi)
	if !ok {
		t.Fatal("no identity in stat result")
	}
	return id
}

// waitResult polls Result until it is no longer pending.
func waitResult(t *testing.T, h *ExeHasher, id FileID) (string, string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if sum, status := h.Result(id); status != proto.HashPending {
			return sum, status
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("result for %+v still pending", id)
	return "", ""
}

func newTestHasher(t *testing.T, o ExeHasherOptions) *ExeHasher {
	t.Helper()
	if o.ProcRoot == "" {
		o.ProcRoot = t.TempDir() // no process to read through unless a test says so
	}
	h := NewExeHasher(o)
	t.Cleanup(h.Close)
	return h
}

func TestExeHasherHashesByIdentity(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tool")
	v1 := []byte("#!/bin/sh\necho v1\n")
	if err := os.WriteFile(path, v1, 0o755); err != nil {
		t.Fatal(err)
	}
	h := newTestHasher(t, ExeHasherOptions{MaxEntries: 8})
	id := idOfPath(t, path)

	if sum, status := h.Request(HashJob{ID: id, Path: path}); sum != "" || status != proto.HashPending {
		t.Fatalf("first request = %q %q, want pending: hashing never happens on the caller's goroutine", sum, status)
	}
	if sum, status := waitResult(t, h, id); sum != sumHex(v1) || status != "" {
		t.Fatalf("result = %q %q, want %s", sum, status, sumHex(v1))
	}
	if sum, status := h.Request(HashJob{ID: id, Path: path}); sum != sumHex(v1) || status != "" {
		t.Errorf("second request = %q %q, want the digest at once", sum, status)
	}

	// Replaced at its path (another inode): the exec's identity is not the new file's.
	v2 := filepath.Join(dir, "tool.new")
	if err := os.WriteFile(v2, []byte("#!/bin/sh\necho v2, another file\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	old := id
	old.Ino++ // an identity the path never had: what ran is gone
	if err := os.Rename(v2, path); err != nil {
		t.Fatal(err)
	}
	h.Request(HashJob{ID: old, Path: path})
	if sum, status := waitResult(t, h, old); sum != "" || status != proto.HashMismatch {
		t.Errorf("replaced file: %q %q, want mismatch and no digest", sum, status)
	}

	// Modified in place (same inode, new ctime): also another identity.
	cur := idOfPath(t, path)
	time.Sleep(10 * time.Millisecond)
	if err := os.Chmod(path, 0o700); err != nil {
		t.Fatal(err)
	}
	h.Request(HashJob{ID: cur, Path: path})
	if sum, status := waitResult(t, h, cur); sum != "" || status != proto.HashMismatch {
		t.Errorf("changed file: %q %q, want mismatch", sum, status)
	}

	st := h.Stats()
	if st.Hashed != 1 || st.Hits != 1 || st.Mismatches != 2 {
		t.Errorf("stats = %+v, want 1 hashed, 1 hit, 2 mismatches", st)
	}
}

// A live process's /proc/<pid>/exe is read first: it is the file that ran even when its
// path names another one now. The test stands in a directory for /proc.
func TestExeHasherReadsThroughTheProcess(t *testing.T) {
	dir := t.TempDir()
	ran := []byte("what ran")
	procRoot := filepath.Join(dir, "proc")
	if err := os.MkdirAll(filepath.Join(procRoot, "42"), 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(procRoot, "42", "exe")
	if err := os.WriteFile(exe, ran, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "bin")
	if err := os.WriteFile(path, []byte("the file at the path now"), 0o755); err != nil {
		t.Fatal(err)
	}
	h := newTestHasher(t, ExeHasherOptions{ProcRoot: procRoot})
	id := idOfPath(t, exe)
	h.Request(HashJob{ID: id, Pid: 42, Path: path})
	if sum, status := waitResult(t, h, id); sum != sumHex(ran) || status != "" {
		t.Errorf("result = %q %q, want the digest of what ran", sum, status)
	}
	// A memfd has no path: without its process, nothing is left to read.
	gone := FileID{Dev: 1, Ino: 2, Ctime: "x"}
	h.Request(HashJob{ID: gone, Pid: 43, Path: "memfd:payload"})
	if sum, status := waitResult(t, h, gone); sum != "" || status != proto.HashUnavailable {
		t.Errorf("memfd of an exited process: %q %q, want unavailable", sum, status)
	}
}

func TestExeHasherRefusals(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, 2048), 0o644); err != nil {
		t.Fatal(err)
	}
	h := newTestHasher(t, ExeHasherOptions{MaxFileBytes: 1024})
	for name, j := range map[string]HashJob{
		"too large":      {ID: idOfPath(t, big), Path: big},
		"directory":      {ID: idOfPath(t, dir), Path: dir},
		"missing":        {ID: FileID{Ino: 1}, Path: filepath.Join(dir, "missing")},
		"relative path":  {ID: FileID{Ino: 2}, Path: "bin/tool"},
		"no path at all": {ID: FileID{Ino: 3}},
	} {
		h.Request(j)
		if sum, status := waitResult(t, h, j.ID); sum != "" || status != proto.HashUnavailable {
			t.Errorf("%s: %q %q, want unavailable", name, sum, status)
		}
	}
	if _, status := h.Result(FileID{Ino: 99}); status != proto.HashUnavailable {
		t.Errorf("never requested: %q, want unavailable", status)
	}
}

// A full queue refuses at once (counted) instead of blocking the caller.
func TestExeHasherQueueFull(t *testing.T) {
	// No worker: the one queued job stays queued.
	h := &ExeHasher{o: ExeHasherOptions{MaxEntries: 4, QueueSize: 1}, jobs: make(chan HashJob, 1),
		order: list.New(), results: map[FileID]*list.Element{}, queued: map[FileID]bool{}}
	if _, status := h.Request(HashJob{ID: FileID{Ino: 1}}); status != proto.HashPending {
		t.Fatalf("first: %q", status)
	}
	if _, status := h.Request(HashJob{ID: FileID{Ino: 1}}); status != proto.HashPending {
		t.Fatalf("same file again: %q, want pending (queued once)", status)
	}
	if _, status := h.Request(HashJob{ID: FileID{Ino: 2}}); status != proto.HashUnavailable {
		t.Fatalf("queue full: %q, want unavailable", status)
	}
	if st := h.Stats(); st.QueueFull != 1 {
		t.Errorf("queue full count = %d, want 1", st.QueueFull)
	}
}

func TestExeHasherEviction(t *testing.T) {
	dir := t.TempDir()
	h := newTestHasher(t, ExeHasherOptions{MaxEntries: 2})
	var ids []FileID
	for _, name := range []string{"a", "b", "c"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
		id := idOfPath(t, p)
		ids = append(ids, id)
		h.Request(HashJob{ID: id, Path: p})
		waitResult(t, h, id)
	}
	if _, status := h.Result(ids[0]); status != proto.HashUnavailable {
		t.Errorf("oldest result kept: %q", status)
	}
	if sum, _ := h.Result(ids[2]); sum != sumHex([]byte("c")) {
		t.Errorf("newest result = %q", sum)
	}
	if st := h.Stats(); st.Evictions != 1 {
		t.Errorf("evictions = %d, want 1", st.Evictions)
	}
}

func TestExeHasherConcurrent(t *testing.T) {
	dir := t.TempDir()
	h := newTestHasher(t, ExeHasherOptions{MaxEntries: 3, QueueSize: 64})
	type file struct {
		id   FileID
		path string
	}
	var files []file
	for i := range 5 {
		p := filepath.Join(dir, string(rune('a'+i)))
		if err := os.WriteFile(p, []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, file{idOfPath(t, p), p})
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				f := files[(g+i)%len(files)]
				if sum, status := h.Request(HashJob{ID: f.id, Path: f.path}); sum != "" && sum != sumHex([]byte(f.path)) {
					t.Errorf("Request(%s) = %s %s", f.path, sum, status)
					return
				}
				if sum, _ := h.Result(f.id); sum != "" && sum != sumHex([]byte(f.path)) {
					t.Errorf("Result(%s) = %s", f.path, sum)
					return
				}
			}
		}()
	}
	wg.Wait()
}
