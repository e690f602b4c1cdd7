package linux

import (
	"path/filepath"

	"golang.org/x/sys/unix"
)

// legacyOpenCalls makes x86-64's open(2) and creat(2) calls, which arm64 does not have.
func legacyOpenCalls(dir string, call func(step string, trap uintptr, a ...uintptr) uintptr, str func(string) uintptr) {
	call("open", unix.SYS_OPEN, str(filepath.Join(dir, "open.txt")), unix.O_RDONLY|unix.O_CLOEXEC)
	call("creat", unix.SYS_CREAT, str(filepath.Join(dir, "creat.txt")), 0o600)
	call("missing", unix.SYS_OPEN, str(filepath.Join(dir, "missing.txt")), unix.O_RDONLY)
}

// legacyOpenWants are the records of legacyOpenCalls.
func legacyOpenWants(dir string) []openWant {
	return []openWant{
		{"open(2)", filepath.Join(dir, "open.txt"), "O_RDONLY|O_CLOEXEC", "read", 0},
		{"creat(2)", filepath.Join(dir, "creat.txt"), "O_WRONLY|O_CREAT|O_TRUNC", "write", 0},
		{"open(2) of a missing file", filepath.Join(dir, "missing.txt"), "O_RDONLY", "read", int(unix.ENOENT)},
	}
}
