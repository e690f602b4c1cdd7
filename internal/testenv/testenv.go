// Package testenv decides what a test does when the machine lacks something it needs (root,
// kernel BTF, a tool, a kernel facility): skip it on a developer's machine, fail it in CI.
// CI's machine has all of them (.ci/run installs the tools and runs as root), so a test that
// skips there is a test that silently stopped running.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// InCI reports whether the tests run in CI (.ci/run is started with CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// Skipf skips the test with the reason, or fails it under CI=true, where every requirement is
// met by construction.
func Skipf(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("CI=true and this test cannot run: %s (CI's machine must provide it: see .ci/run)", msg)
	}
	t.Skip(msg)
}

// RequireRoot skips (fails in CI) unless the test runs as root; why says what needs root.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Skipf(t, "%s needs root (euid %d): run the tests as root (make test does in CI)", why, os.Geteuid())
	}
}

// RequireBTF skips (fails in CI) unless the kernel exposes its BTF, which Vigil's CO-RE
// programs need to load.
func RequireBTF(t testing.TB) {
	t.Helper()
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		Skipf(t, "kernel has no BTF, Vigil's eBPF programs cannot load: %v", err)
	}
}

// LookPath returns the tool's path, or skips (fails in CI) when it is not installed.
func LookPath(t testing.TB, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		Skipf(t, "%s is not installed: %v", tool, err)
	}
	return p
}

// Nobody is the uid and gid tests give what "another user" owns.
const Nobody = 65534

// ForeignFile writes content to path, mode 0644, owned by Nobody: a file another user planted
// where the sensor writes. Chown needs root.
func ForeignFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, Nobody, Nobody); err != nil {
		t.Fatal(err)
	}
}

// Dir makes the directory dir/name with mode (permissions and sticky bit, exactly: chmod after
// mkdir, past the umask) owned by uid and gid uid, for tests of what the sensor accepts as its
// output directories. Chown needs root.
func Dir(t testing.TB, dir, name string, mode os.FileMode, uid int) string {
	t.Helper()
	d := filepath.Join(dir, name)
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(d, uid, uid); err != nil {
		t.Fatal(err)
	}
	return d
}

// auditTestLock serialises the tests that take over the kernel's audit configuration: it is
// one per machine, and `go test ./...` runs packages at once.
const auditTestLock = "/tmp/vigil-audit-tests.lock"

// LockAudit waits until no other test process uses the kernel's audit configuration and holds
// it until the test ends. Vigil's audit source itself refuses to start beside another one.
func LockAudit(t testing.TB) {
	t.Helper()
	RequireRoot(t, "taking over the kernel's audit configuration")
	f, err := os.OpenFile(auditTestLock, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("open %s: %v", auditTestLock, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("lock %s: %v", auditTestLock, err)
	}
	t.Cleanup(func() { f.Close() })
}
