package sensor

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func sumHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestHashCacheSHA256(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tool")
	v1 := []byte("#!/bin/sh\necho v1\n")
	if err := os.WriteFile(path, v1, 0o755); err != nil {
		t.Fatal(err)
	}
	h := NewHashCache(8, 1<<20)

	steps := []struct {
		name      string
		setup     func()
		path      string
		want      string
		hits, mis uint64
	}{
		{name: "first hash is a miss", path: path, want: sumHex(v1), hits: 0, mis: 1},
		{name: "second is a hit", path: path, want: sumHex(v1), hits: 1, mis: 1},
		{
			name: "symlink shares the identity",
			setup: func() {
				if err := os.Symlink(path, filepath.Join(dir, "link")); err != nil {
					t.Fatal(err)
				}
			},
			path: filepath.Join(dir, "link"), want: sumHex(v1), hits: 2, mis: 1,
		},
		{
			name: "rewrite in place gives a new hash",
			setup: func() {
				if err := os.WriteFile(path, []byte("#!/bin/sh\necho version 2\n"), 0o755); err != nil {
					t.Fatal(err)
				}
				// Same-size rewrites within the timestamp granularity are still told apart.
				if err := os.Chtimes(path, time.Now(), time.Now().Add(time.Second)); err != nil {
					t.Fatal(err)
				}
			},
			path: path, want: sumHex([]byte("#!/bin/sh\necho version 2\n")), hits: 2, mis: 2,
		},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if s.setup != nil {
				s.setup()
			}
			got, err := h.SHA256(s.path)
			if err != nil {
				t.Fatal(err)
			}
			if got != s.want {
				t.Errorf("SHA256 = %s, want %s", got, s.want)
			}
			if hits, misses, _ := h.Stats(); hits != s.hits || misses != s.mis {
				t.Errorf("hits, misses = %d, %d; want %d, %d", hits, misses, s.hits, s.mis)
			}
		})
	}
}

func TestHashCacheErrors(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, 2048), 0o644); err != nil {
		t.Fatal(err)
	}
	h := NewHashCache(4, 1024)
	tests := []struct {
		name    string
		path    string
		is      error
		wantMsg string
	}{
		{"too large", big, ErrFileTooLarge, "2048 bytes exceeds 1024"},
		{"missing", filepath.Join(dir, "missing"), fs.ErrNotExist, "stat"},
		{"directory", dir, nil, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sum, err := h.SHA256(tt.path)
			if err == nil || sum != "" {
				t.Fatalf("SHA256 = %q, %v; want an error", sum, err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) || !strings.Contains(err.Error(), tt.path) {
				t.Errorf("error %q should name %s and say %q", err, tt.path, tt.wantMsg)
			}
		})
	}
}

func TestHashCacheEviction(t *testing.T) {
	dir := t.TempDir()
	h := NewHashCache(2, 0)
	var paths []string
	for _, name := range []string{"a", "b", "c"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	mustHash := func(p string) {
		t.Helper()
		if _, err := h.SHA256(p); err != nil {
			t.Fatal(err)
		}
	}
	mustHash(paths[0]) // miss
	mustHash(paths[1]) // miss
	mustHash(paths[0]) // hit: a is now the most recently used
	mustHash(paths[2]) // miss, evicts b
	mustHash(paths[0]) // hit
	mustHash(paths[1]) // miss again, evicts c
	if hits, misses, evictions := h.Stats(); hits != 2 || misses != 4 || evictions != 2 {
		t.Errorf("hits, misses, evictions = %d, %d, %d; want 2, 4, 2", hits, misses, evictions)
	}
}

func TestHashCacheConcurrent(t *testing.T) {
	dir := t.TempDir()
	h := NewHashCache(3, 0)
	var paths []string
	for i := range 5 {
		p := filepath.Join(dir, string(rune('a'+i)))
		if err := os.WriteFile(p, []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				p := paths[(g+i)%len(paths)]
				if got, err := h.SHA256(p); err != nil || got != sumHex([]byte(p)) {
					t.Errorf("SHA256(%s) = %s, %v", p, got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if hits, misses, _ := h.Stats(); hits+misses != 400 {
		t.Errorf("hits+misses = %d, want 400", hits+misses)
	}
}
