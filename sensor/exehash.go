package sensor

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/vigil-sensor/vigil/proto"
)

// FileID names one version of one executable: its device (st_dev), inode and inode change
// time (proto.TimeLayout). The kernel reads it from the file an exec ran; a file replaced
// since (rename over the path: another inode) or modified (write, chmod: another ctime) has
// another FileID, so a digest stored under it is the digest of what ran.
type FileID struct {
	Dev, Ino uint64
	Ctime    string
}

// FileIDOf is the identity an exec line carries.
func FileIDOf(x *proto.Exe) FileID {
	return FileID{Dev: x.Dev, Ino: x.Ino, Ctime: x.Ctime}
}

// FileIDOfInfo is the identity of a stat result, comparable with the kernel's.
func FileIDOfInfo(fi os.FileInfo) (FileID, bool) {
	dev, ino, sec, nsec, ok := statIdentity(fi)
	if !ok {
		return FileID{}, false
	}
	return FileID{Dev: dev, Ino: ino, Ctime: time.Unix(sec, nsec).UTC().Format(proto.TimeLayout)}, true
}

// HashJob asks for the SHA-256 of the file an exec ran.
type HashJob struct {
	ID FileID
	// Pid is the process that ran it: /proc/<pid>/exe reaches the very file while the process
	// lives, even when it was deleted, replaced at its path, or never had one (memfd).
	Pid int
	// Path is the executable's path, tried when the process is gone.
	Path string
}

// ExeHashes gives the process table digests tied to file identities. ExeHasher implements it.
type ExeHashes interface {
	// Request returns the digest of j.ID if known; otherwise it queues j without blocking
	// and returns proto.HashPending, or proto.HashUnavailable when the queue is full.
	Request(j HashJob) (sum, status string)
	// Result returns the digest of id, or why there is none yet (proto.Hash* constants).
	Result(id FileID) (sum, status string)
}

// ExeHasherOptions configures an ExeHasher; zero values take the defaults below.
type ExeHasherOptions struct {
	// MaxEntries bounds the results kept (digests and failures), least recently used first
	// out. Agents exec the same few binaries thousands of times: a hit costs a map lookup.
	MaxEntries int
	// MaxFileBytes: larger files are not hashed (HashUnavailable). <= 0: no limit.
	MaxFileBytes int64
	// QueueSize bounds the files waiting to be hashed; a full queue refuses (counted).
	QueueSize int
	// ProcRoot is where /proc is mounted.
	ProcRoot string
}

// ExeHashStats are the hasher's cumulative counters.
type ExeHashStats struct {
	Hashed      uint64 // files read and hashed
	Hits        uint64 // requests answered from the results
	Mismatches  uint64 // the file at hand no longer had the exec's identity: not hashed
	Unavailable uint64 // could not be hashed (too large, not regular, nothing left to open)
	QueueFull   uint64 // requests refused because the queue was full
	Evictions   uint64
}

type hashResult struct {
	id     FileID
	sum    string
	status string // set when sum is empty
}

// ExeHasher computes the SHA-256 of executed files on its own goroutine, never on the
// caller's: hashing a new binary reads megabytes, and the pipeline must keep draining the
// kernel's ring meanwhile. Digests are keyed by the kernel's identity of the file that ran,
// and a file is hashed only if it still has that identity when it is opened and after it
// was read, so a binary replaced after the exec gets a mismatch, never the new file's hash.
type ExeHasher struct {
	o    ExeHasherOptions
	jobs chan HashJob
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	order   *list.List // front = most recently used; values are *hashResult
	results map[FileID]*list.Element
	queued  map[FileID]bool
	stats   ExeHashStats
}

// NewExeHasher starts the hashing goroutine; Close stops it.
func NewExeHasher(o ExeHasherOptions) *ExeHasher {
	if o.MaxEntries <= 0 {
		o.MaxEntries = 4096
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 256
	}
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	h := &ExeHasher{
		o:       o,
		jobs:    make(chan HashJob, o.QueueSize),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		order:   list.New(),
		results: map[FileID]*list.Element{},
		queued:  map[FileID]bool{},
	}
	go h.run()
	return h
}

// Close stops the goroutine after the file it is hashing, if any; queued jobs are dropped.
func (h *ExeHasher) Close() {
	close(h.stop)
	<-h.done
}

// Request implements ExeHashes.
func (h *ExeHasher) Request(j HashJob) (string, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if el, ok := h.results[j.ID]; ok {
		r := el.Value.(*hashResult)
		if r.sum != "" {
			h.stats.Hits++
			h.order.MoveToFront(el)
			return r.sum, ""
		}
		// A failure is tried again: this exec's process may still be alive to read from.
	}
	if h.queued[j.ID] {
		return "", proto.HashPending
	}
	select {
	case h.jobs <- j:
		h.queued[j.ID] = true
		return "", proto.HashPending
	default:
		h.stats.QueueFull++
		return "", proto.HashUnavailable
	}
}

// Result implements ExeHashes.
func (h *ExeHasher) Result(id FileID) (string, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.queued[id] {
		return "", proto.HashPending
	}
	if el, ok := h.results[id]; ok {
		r := el.Value.(*hashResult)
		return r.sum, r.status
	}
	return "", proto.HashUnavailable // evicted, or never requested
}

// Stats returns the cumulative counters.
func (h *ExeHasher) Stats() ExeHashStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stats
}

func (h *ExeHasher) run() {
	defer close(h.done)
	for {
		select {
		case <-h.stop:
			return
		case j := <-h.jobs:
			sum, status := h.hash(j)
			h.mu.Lock()
			delete(h.queued, j.ID)
			switch status {
			case "":
				h.stats.Hashed++
			case proto.HashMismatch:
				h.stats.Mismatches++
			default:
				h.stats.Unavailable++
			}
			h.store(&hashResult{id: j.ID, sum: sum, status: status})
			h.mu.Unlock()
		}
	}
}

func (h *ExeHasher) hash(j HashJob) (string, string) {
	return HashExecutable(h.o.ProcRoot, j, h.o.MaxFileBytes)
}

// HashExecutable returns the SHA-256 (hex) of the file with j's identity, or why there is
// none (proto.HashMismatch, proto.HashUnavailable): it reads the file through the process
// first (procRoot/<pid>/exe), then by path, and never a file found with another identity.
// Files larger than maxBytes (> 0) are not read.
func HashExecutable(procRoot string, j HashJob, maxBytes int64) (string, string) {
	var candidates []string
	if j.Pid > 0 {
		candidates = append(candidates, filepath.Join(procRoot, strconv.Itoa(j.Pid), "exe"))
	}
	if filepath.IsAbs(j.Path) {
		candidates = append(candidates, j.Path)
	}
	status := proto.HashUnavailable
	for _, path := range candidates {
		sum, st, err := hashFile(path, j.ID, maxBytes)
		if err == nil {
			return sum, ""
		}
		if st == proto.HashMismatch {
			status = st
		}
	}
	return "", status
}

// hashFile hashes path if it is a regular file with identity id, before and after reading.
func hashFile(path string, id FileID, maxBytes int64) (string, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", proto.HashUnavailable, fmt.Errorf("hash %s: open: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", proto.HashUnavailable, fmt.Errorf("hash %s: fstat: %w", path, err)
	}
	if got, ok := FileIDOfInfo(fi); !ok || got != id {
		return "", proto.HashMismatch, fmt.Errorf("hash %s: identity %+v, the exec's was %+v", path, got, id)
	}
	// Only regular files: reading a FIFO or a device as root could block or never end.
	if !fi.Mode().IsRegular() {
		return "", proto.HashUnavailable, fmt.Errorf("hash %s: not a regular file (%s)", path, fi.Mode().Type())
	}
	if maxBytes > 0 && fi.Size() > maxBytes {
		return "", proto.HashUnavailable, fmt.Errorf("hash %s: %d bytes exceeds %d", path, fi.Size(), maxBytes)
	}
	d := sha256.New()
	if _, err := io.Copy(d, f); err != nil {
		return "", proto.HashUnavailable, fmt.Errorf("hash %s: read: %w", path, err)
	}
	// Written while it was read: the digest is of neither version.
	if after, err := f.Stat(); err != nil {
		return "", proto.HashUnavailable, fmt.Errorf("hash %s: fstat after read: %w", path, err)
	} else if got, _ := FileIDOfInfo(after); got != id || after.Size() != fi.Size() {
		return "", proto.HashMismatch, fmt.Errorf("hash %s: changed while it was read", path)
	}
	return hex.EncodeToString(d.Sum(nil)), "", nil
}

// store keeps r, replacing an earlier result for its file; h.mu is held.
func (h *ExeHasher) store(r *hashResult) {
	if el, ok := h.results[r.id]; ok {
		el.Value = r
		h.order.MoveToFront(el)
		return
	}
	h.results[r.id] = h.order.PushFront(r)
	for h.order.Len() > h.o.MaxEntries {
		oldest := h.order.Back()
		h.order.Remove(oldest)
		delete(h.results, oldest.Value.(*hashResult).id)
		h.stats.Evictions++
	}
}
