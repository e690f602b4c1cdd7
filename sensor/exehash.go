package sensor

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
)

// ErrFileTooLarge is returned (wrapped) by HashCache.SHA256 for files above the size limit:
// hashing a multi-gigabyte image on the event path would stall the pipeline, so such files
// get no process.hash.sha256 rather than a late one.
var ErrFileTooLarge = errors.New("file larger than the hash size limit")

// fileIdentity returns the device and inode behind fi. syscall.Stat_t has Dev and Ino on
// both Linux and macOS (with different integer types, hence the conversions), so this needs
// no build tags.
func fileIdentity(fi os.FileInfo) (dev, ino uint64, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return uint64(st.Dev), uint64(st.Ino), true
}

// hashKey identifies one version of one file. Size and mtime are part of it because an
// upgrade that rewrites a binary in place keeps its inode; a package manager that replaces
// the file gets a new inode anyway.
type hashKey struct {
	dev, ino uint64
	size     int64
	mtimeNs  int64
}

type hashEntry struct {
	key hashKey
	sum string
}

// HashCache computes SHA-256 digests of executables for process.hash.sha256 and remembers
// them by file identity, because agents exec the same few binaries (bash, git, node)
// thousands of times and rereading them on every exec would cost more than the sensor
// itself. It is bounded (least recently used entries are evicted) and safe for concurrent use.
type HashCache struct {
	maxEntries   int
	maxFileBytes int64

	mu        sync.Mutex
	order     *list.List // front = most recently used; values are *hashEntry
	entries   map[hashKey]*list.Element
	hits      uint64
	misses    uint64
	evictions uint64
}

// NewHashCache returns a cache holding at most maxEntries digests (at least 1) that refuses
// to hash files larger than maxFileBytes (no limit when maxFileBytes <= 0).
func NewHashCache(maxEntries int, maxFileBytes int64) *HashCache {
	return &HashCache{
		maxEntries:   max(maxEntries, 1),
		maxFileBytes: maxFileBytes,
		order:        list.New(),
		entries:      make(map[hashKey]*list.Element),
	}
}

// SHA256 returns the lowercase hex SHA-256 of the file at path, following symlinks. A hit
// costs one stat. On a miss the file is opened and the identity checked again on the open
// descriptor, so a path swapped between stat and open is hashed under its own key; the
// lock is not held while hashing, so one large file does not block lookups of others.
func (h *HashCache) SHA256(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("hash %s: stat: %w", path, err)
	}
	key, err := h.keyOf(path, fi)
	if err != nil {
		return "", err
	}
	if sum, ok := h.lookup(key); ok {
		return sum, nil
	}

	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hash %s: open: %w", path, err)
	}
	defer f.Close()
	fi, err = f.Stat()
	if err != nil {
		return "", fmt.Errorf("hash %s: fstat: %w", path, err)
	}
	if key, err = h.keyOf(path, fi); err != nil {
		return "", err
	}
	d := sha256.New()
	if _, err := io.Copy(d, f); err != nil {
		return "", fmt.Errorf("hash %s: read: %w", path, err)
	}
	sum := hex.EncodeToString(d.Sum(nil))

	// A file written while it was read has a new size or mtime; its digest matches neither
	// version for sure, so it is returned but not cached under the old key.
	if after, err := f.Stat(); err == nil && after.Size() == fi.Size() && after.ModTime().Equal(fi.ModTime()) {
		h.store(key, sum)
	}
	return sum, nil
}

// keyOf checks that fi can be hashed and returns its cache key. Only regular files are
// hashed: reading a FIFO or a device as root could block forever or never end.
func (h *HashCache) keyOf(path string, fi os.FileInfo) (hashKey, error) {
	if !fi.Mode().IsRegular() {
		return hashKey{}, fmt.Errorf("hash %s: not a regular file (%s)", path, fi.Mode().Type())
	}
	if h.maxFileBytes > 0 && fi.Size() > h.maxFileBytes {
		return hashKey{}, fmt.Errorf("hash %s: %d bytes exceeds %d: %w", path, fi.Size(), h.maxFileBytes, ErrFileTooLarge)
	}
	dev, ino, ok := fileIdentity(fi)
	if !ok {
		return hashKey{}, fmt.Errorf("hash %s: no device/inode in stat result", path)
	}
	return hashKey{dev: dev, ino: ino, size: fi.Size(), mtimeNs: fi.ModTime().UnixNano()}, nil
}

func (h *HashCache) lookup(key hashKey) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if el, ok := h.entries[key]; ok {
		h.hits++
		h.order.MoveToFront(el)
		return el.Value.(*hashEntry).sum, true
	}
	h.misses++
	return "", false
}

func (h *HashCache) store(key hashKey, sum string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if el, ok := h.entries[key]; ok { // another goroutine hashed it meanwhile
		h.order.MoveToFront(el)
		return
	}
	h.entries[key] = h.order.PushFront(&hashEntry{key: key, sum: sum})
	for h.order.Len() > h.maxEntries {
		oldest := h.order.Back()
		h.order.Remove(oldest)
		delete(h.entries, oldest.Value.(*hashEntry).key)
		h.evictions++
	}
}

// Stats returns cumulative cache hits, misses and evictions, for the sensor's metrics: a
// high eviction rate means maxEntries is too small for the machine's working set.
func (h *HashCache) Stats() (hits, misses, evictions uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hits, h.misses, h.evictions
}
