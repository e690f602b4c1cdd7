package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"unsafe"
)

// setupWalk: an rg-like reader. Each run walks a tree of distinct files once: open the
// directory, getdents64 until it is empty, and for each entry either descend (a directory,
// opened with O_DIRECTORY) or read the file: openat(O_RDONLY|O_CLOEXEC) relative to the
// directory, fstat, read until end of file, close. The timed loop walks s.tree/timed (n
// files), the warm-up s.tree/warmup (warmup files), so no file is opened twice in a run.
// Without s.tree both trees are made here first, untimed (a tracked run then also records
// their creation; the driver makes them with the untracked binary and passes -tree).
//
// Tracked, every open is an event: one per file and one per directory (the root included).
// The walker counts the opens it makes; the loop fails when it did not find n files.
func (w *worker) setupWalk(s settings, n, warmup int) error {
	root := s.tree
	if root == "" {
		dir, err := os.MkdirTemp("", "vigil-loadgen-walk-")
		if err != nil {
			return fmt.Errorf("create temp dir: %w", err)
		}
		w.cleanup = append(w.cleanup, func() { os.RemoveAll(dir) })
		if err := buildTrees(dir, n, warmup, s.perDir); err != nil {
			return err
		}
		root = dir
	}
	wk := &walker{rbuf: make([]byte, 64<<10)}
	walkTree := func(tree string, want int) error {
		before := wk.files
		if err := wk.walk(filepath.Join(root, tree)); err != nil {
			return err
		}
		if got := wk.files - before; got != want {
			return fmt.Errorf("%s holds %d files, want %d (make it with -make-tree and the same -n and -warmup)", filepath.Join(root, tree), got, want)
		}
		return nil
	}
	w.loop = func(n int) error { return walkTree(timedTree, n) }
	w.warm = func(n int) error {
		if n == 0 {
			return nil
		}
		return walkTree(warmupTree, n)
	}
	w.tally = func() map[string]int { return map[string]int{"open": wk.files + wk.dirs} }
	return nil
}

// walker walks directories with raw system calls; its buffers are reused (one getdents
// buffer per depth), so a walk allocates nothing after the first.
type walker struct {
	bufs        [][]byte
	rbuf        []byte
	st          syscall.Stat_t
	files, dirs int // successful opens of regular files and of directories
}

const (
	dirFlags  = syscall.O_RDONLY | syscall.O_DIRECTORY | syscall.O_CLOEXEC
	fileFlags = syscall.O_RDONLY | syscall.O_CLOEXEC
)

func (wk *walker) walk(root string) error {
	p, err := syscall.BytePtrFromString(root)
	if err != nil {
		return fmt.Errorf("tree path: %w", err)
	}
	fd, errno := openat(atFDCWD, unsafe.Pointer(p), dirFlags)
	if errno != 0 {
		return fmt.Errorf("open %s: %w", root, errno)
	}
	wk.dirs++
	return wk.dir(fd, 0)
}

// dir reads the directory fd (and closes it), descending into subdirectories.
func (wk *walker) dir(fd, depth int) error {
	defer syscall.Close(fd)
	for len(wk.bufs) <= depth {
		wk.bufs = append(wk.bufs, make([]byte, 32<<10))
	}
	buf := wk.bufs[depth]
	for {
		nb, err := syscall.Getdents(fd, buf)
		if err != nil {
			return fmt.Errorf("getdents: %w", err)
		}
		if nb == 0 {
			return nil
		}
		// struct linux_dirent64: d_ino u64, d_off s64, d_reclen u16, d_type u8, d_name
		// (NUL-terminated, padded to d_reclen).
		for off := 0; off < nb; {
			reclen := int(*(*uint16)(unsafe.Pointer(&buf[off+16])))
			typ := buf[off+18]
			name := buf[off+19 : off+reclen]
			off += reclen
			if name[0] == '.' && (name[1] == 0 || name[1] == '.' && name[2] == 0) {
				continue
			}
			np := unsafe.Pointer(&name[0])
			switch typ {
			case syscall.DT_DIR:
				cfd, errno := openat(uintptr(fd), np, dirFlags)
				if errno != 0 {
					return fmt.Errorf("open directory %s: %w", cstring(name), errno)
				}
				wk.dirs++
				if err := wk.dir(cfd, depth+1); err != nil {
					return err
				}
			case syscall.DT_REG:
				if err := wk.read(fd, np, name); err != nil {
					return err
				}
			case syscall.DT_UNKNOWN:
				return fmt.Errorf("%s: the file system gives no entry types (d_type); the walk needs them", cstring(name))
			}
		}
	}
}

// read opens, stats and reads one file to its end, as a search tool reads each candidate.
func (wk *walker) read(dirfd int, np unsafe.Pointer, name []byte) error {
	fd, errno := openat(uintptr(dirfd), np, fileFlags)
	if errno != 0 {
		return fmt.Errorf("open %s: %w", cstring(name), errno)
	}
	wk.files++
	defer syscall.Close(fd)
	if err := syscall.Fstat(fd, &wk.st); err != nil {
		return fmt.Errorf("fstat %s: %w", cstring(name), err)
	}
	for {
		k, err := syscall.Read(fd, wk.rbuf)
		if err != nil {
			return fmt.Errorf("read %s: %w", cstring(name), err)
		}
		if k == 0 {
			return nil
		}
	}
}

func openat(dirfd uintptr, path unsafe.Pointer, flags int) (int, syscall.Errno) {
	fd, _, errno := syscall.Syscall6(syscall.SYS_OPENAT, dirfd, uintptr(path), uintptr(flags), 0, 0, 0)
	return int(fd), errno
}

// cstring is a NUL-terminated name as a string (error messages only).
func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
