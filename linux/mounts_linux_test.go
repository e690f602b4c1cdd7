package linux

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"

	"github.com/vigil-sensor/vigil/internal/testenv"
)

func skipUnlessRootForMounts(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t, "mounting file systems")
}

func mountPoints(t *testing.T, fstype string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mps, err := parseMountinfo(f, fstype)
	if err != nil {
		t.Fatal(err)
	}
	return mps
}

// TestEnsureTracefs runs the real function twice: the first call mounts tracefs when the
// machine has none (a fresh machine), the second must find it already there. tracefs stays
// mounted: other tests in this tree attach tracepoints.
func TestEnsureTracefs(t *testing.T) {
	skipUnlessRootForMounts(t)
	wasMounted := dirExists("/sys/kernel/tracing/events") || dirExists("/sys/kernel/debug/tracing/events")
	t.Logf("tracefs reachable before the test: %v", wasMounted)
	for i := 0; i < 2; i++ {
		dir, err := EnsureTracefs()
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if !dirExists(filepath.Join(dir, "events", "syscalls")) {
			t.Fatalf("call %d: %s has no events/syscalls", i, dir)
		}
		switch dir {
		case "/sys/kernel/tracing":
			if !slices.Contains(mountPoints(t, "tracefs"), dir) {
				t.Fatalf("call %d: returned %s but no tracefs is mounted there", i, dir)
			}
		case "/sys/kernel/debug/tracing":
			if !wasMounted {
				t.Fatalf("call %d: used debugfs, which it must never mount", i)
			}
		default:
			t.Fatalf("call %d: unexpected dir %s", i, dir)
		}
	}
}

// TestEnsureTracefsMountPath exercises the mount branch for real whatever the machine's state:
// tracefs is mounted on a private temporary mount point (and unmounted afterwards; that does
// not touch /sys/kernel/tracing).
func TestEnsureTracefsMountPath(t *testing.T) {
	skipUnlessRootForMounts(t)
	tmp := t.TempDir()
	mnt := filepath.Join(tmp, "tracing")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	mounted := false
	mount := func(source, target, fstype string, flags uintptr, data string) error {
		mounted = true
		return unix.Mount(source, target, fstype, flags, data)
	}
	dir, err := ensureTracefs(mnt, filepath.Join(tmp, "debug", "tracing"), mount)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	if !mounted || dir != mnt {
		t.Fatalf("got dir %q mounted=%v, want a mount at %s", dir, mounted, mnt)
	}
	if !slices.Contains(mountPoints(t, "tracefs"), mnt) {
		t.Fatalf("no tracefs mount at %s in mountinfo", mnt)
	}
	if !dirExists(filepath.Join(mnt, "events", "sched")) {
		t.Fatalf("%s/events/sched missing after mount", mnt)
	}
	// Second call: already mounted, no new mount.
	mounted = false
	if dir, err := ensureTracefs(mnt, filepath.Join(tmp, "debug", "tracing"), mount); err != nil || dir != mnt || mounted {
		t.Fatalf("second call: dir %q err %v mounted again %v", dir, err, mounted)
	}
}

func TestEnsureTracefsChoices(t *testing.T) {
	fail := func(string, string, string, uintptr, string) error { return unix.EPERM }
	tmp := t.TempDir()
	trace := filepath.Join(tmp, "tracing")
	debug := filepath.Join(tmp, "debug", "tracing")

	// Nothing there, mount refused: the error names the mount point and wraps the cause.
	_, err := ensureTracefs(trace, debug, fail)
	if err == nil || !errors.Is(err, unix.EPERM) || !strings.Contains(err.Error(), "mount tracefs at "+trace) {
		t.Fatalf("got %v", err)
	}
	// Mount "succeeds" but leaves no events/: reported.
	noop := func(string, string, string, uintptr, string) error { return nil }
	if _, err := ensureTracefs(trace, debug, noop); err == nil || !strings.Contains(err.Error(), "no events directory") {
		t.Fatalf("got %v", err)
	}
	// debugfs tracing present: used, no mount.
	if err := os.MkdirAll(filepath.Join(debug, "events"), 0o755); err != nil {
		t.Fatal(err)
	}
	if dir, err := ensureTracefs(trace, debug, fail); err != nil || dir != debug {
		t.Fatalf("got %q %v, want %s", dir, err, debug)
	}
	// tracefs present: preferred over debugfs.
	if err := os.MkdirAll(filepath.Join(trace, "events"), 0o755); err != nil {
		t.Fatal(err)
	}
	if dir, err := ensureTracefs(trace, debug, fail); err != nil || dir != trace {
		t.Fatalf("got %q %v, want %s", dir, err, trace)
	}
}

// TestEnsureBPFFS mounts bpffs at /sys/fs/bpf when missing and leaves it mounted.
func TestEnsureBPFFS(t *testing.T) {
	skipUnlessRootForMounts(t)
	for i := 0; i < 2; i++ {
		if err := EnsureBPFFS(); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		ok, err := isBPFFS("/sys/fs/bpf")
		if err != nil || !ok {
			t.Fatalf("call %d: /sys/fs/bpf is not bpffs (err %v)", i, err)
		}
	}
	if !slices.Contains(mountPoints(t, "bpf"), "/sys/fs/bpf") {
		t.Fatal("no bpf mount at /sys/fs/bpf in mountinfo")
	}
}

func TestEnsureBPFFSErrors(t *testing.T) {
	tmp := t.TempDir() // tmpfs or disk, never bpffs
	err := ensureBPFFS(tmp, func(string, string, string, uintptr, string) error { return unix.EPERM })
	if !errors.Is(err, unix.EPERM) || !strings.Contains(err.Error(), "mount bpffs at "+tmp) {
		t.Fatalf("got %v", err)
	}
	err = ensureBPFFS(tmp, func(string, string, string, uintptr, string) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "BPF_FS_MAGIC") {
		t.Fatalf("got %v", err)
	}
	if err := ensureBPFFS(filepath.Join(tmp, "missing"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v", err)
	}
}

// A hybrid host (this project's machines), trimmed from a real /proc/self/mountinfo, plus
// optional fields, an escaped mount point and a second cgroup2 mount.
const mountinfoFixture = `22 28 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
23 28 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
28 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
30 22 0:25 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:26 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
38 30 0:33 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
40 22 0:35 / /sys/kernel/tracing rw,nosuid,nodev,noexec,relatime shared:20 master:3 - tracefs tracefs rw
41 22 0:36 / /sys/fs/bpf rw,relatime - bpf bpf rw,mode=700
42 28 0:37 / /mnt/my\040cgroup rw,relatime - cgroup2 none rw
`

func TestParseMountinfo(t *testing.T) {
	for _, tc := range []struct {
		fstype string
		want   []string
	}{
		{"cgroup2", []string{"/sys/fs/cgroup/unified", "/mnt/my cgroup"}},
		{"tracefs", []string{"/sys/kernel/tracing"}},
		{"bpf", []string{"/sys/fs/bpf"}},
		{"cgroup", []string{"/sys/fs/cgroup/cpu"}},
		{"debugfs", nil},
	} {
		got, err := parseMountinfo(strings.NewReader(mountinfoFixture), tc.fstype)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.fstype, got, tc.want)
		}
	}
	if _, err := parseMountinfo(strings.NewReader("1 2 3:4 / /x rw\n"), "ext4"); err == nil {
		t.Error("malformed line (no separator) accepted")
	}
	if got := unescapeMountinfo(`/a\134b\011c\`); got != "/a\\b\tc\\" {
		t.Errorf("unescape: got %q", got)
	}
}

// parseMountinfo (a test helper: the tests read mountinfo to verify what the sensor mounted)
// returns the mount points of every mount of file system type fstype, in
// mountinfo order. A line is
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//
// (proc(5)): the mount point is field 5, the fstype the first field after the "-" separator,
// and octal escapes (\040 for a space) are decoded.
func parseMountinfo(r io.Reader, fstype string) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if strings.TrimSpace(text) == "" {
			continue
		}
		fields := strings.Fields(text)
		sep := -1
		for i := 6; i < len(fields); i++ {
			if fields[i] == "-" {
				sep = i
				break
			}
		}
		if len(fields) < 5 || sep < 0 || sep+1 >= len(fields) {
			return nil, fmt.Errorf("line %d: malformed mountinfo line %q", line, text)
		}
		if fields[sep+1] == fstype {
			out = append(out, unescapeMountinfo(fields[4]))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// unescapeMountinfo decodes the kernel's \ooo octal escapes (space, tab, newline, backslash).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// The egress hooks attach at the cgroup2 hierarchy's root: the host's mount of it, never a
// subtree bind-mounted into a container, or one Vigil mounts.
func TestEnsureCgroup2(t *testing.T) {
	mounts := func(ms ...*procfs.MountInfo) func() ([]*procfs.MountInfo, error) {
		return func() ([]*procfs.MountInfo, error) { return ms, nil }
	}
	noMount := func(string, string, string, uintptr, string) error {
		t.Fatal("mounted although a cgroup2 root is mounted")
		return nil
	}
	hybrid := mounts(&procfs.MountInfo{FSType: "tmpfs", Root: "/", MountPoint: "/sys/fs/cgroup"},
		&procfs.MountInfo{FSType: "cgroup2", Root: "/", MountPoint: "/sys/fs/cgroup/unified"})
	if got, err := ensureCgroup2(hybrid, "/unused", noMount); err != nil || got != "/sys/fs/cgroup/unified" {
		t.Errorf("hybrid host: %q %v", got, err)
	}
	subtree := &procfs.MountInfo{FSType: "cgroup2", Root: "/system.slice/docker-1.scope", MountPoint: "/sys/fs/cgroup"}
	dir := filepath.Join(t.TempDir(), "cgroup2")
	var mountedAt, fstype string
	got, err := ensureCgroup2(mounts(subtree), dir, func(_, target, fs string, _ uintptr, _ string) error {
		mountedAt, fstype = target, fs
		return nil
	})
	if err != nil || got != dir || mountedAt != dir || fstype != "cgroup2" {
		t.Errorf("only a subtree mounted: got %q %v, mounted %s at %q", got, err, fstype, mountedAt)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("mount point %v %v, want a 0700 directory", fi, err)
	}
	_, err = ensureCgroup2(mounts(), dir, func(string, string, string, uintptr, string) error { return unix.EPERM })
	if !errors.Is(err, unix.EPERM) || !strings.Contains(err.Error(), "mount cgroup2 at "+dir) {
		t.Errorf("refused mount: %v", err)
	}
	_, err = ensureCgroup2(func() ([]*procfs.MountInfo, error) { return nil, os.ErrPermission }, dir, noMount)
	if !errors.Is(err, os.ErrPermission) || !strings.Contains(err.Error(), "find the cgroup2 mount") {
		t.Errorf("unreadable mountinfo: %v", err)
	}
}

// On this host, the sensor finds the cgroup2 mount mountinfo lists.
func TestEnsureCgroup2Here(t *testing.T) {
	got, err := EnsureCgroup2()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(mountPoints(t, "cgroup2"), got) {
		t.Errorf("EnsureCgroup2 = %q, not a cgroup2 mount point in mountinfo", got)
	}
}
