package linux

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Well-known mount points of the pseudo file systems the eBPF source needs.
const (
	tracefsDir      = "/sys/kernel/tracing"
	debugTracingDir = "/sys/kernel/debug/tracing"
	bpffsDir        = "/sys/fs/bpf"
)

// EnsureTracefs makes sure tracefs is reachable and returns the tracing directory (the one
// holding events/): /sys/kernel/tracing when tracefs is mounted there, else
// /sys/kernel/debug/tracing when debugfs provides it, else it mounts tracefs at
// /sys/kernel/tracing itself and returns that.
//
// Call it first thing in main, before any tracepoint attach: cilium/ebpf looks tracefs up
// once per process (a sync.OnceValues) and caches a failure for the life of the process, so a
// mount made after the first link.Tracepoint does not help that process. tp_btf and raw
// tracepoints do not need tracefs; per-syscall tracepoints do. debugfs is never mounted here
// (its tracing automount is deprecated and subject to lockdown).
func EnsureTracefs() (string, error) {
	return ensureTracefs(tracefsDir, debugTracingDir, unix.Mount)
}

// mountFunc has unix.Mount's signature so tests can substitute it.
type mountFunc func(source, target, fstype string, flags uintptr, data string) error

func ensureTracefs(dir, debugDir string, mount mountFunc) (string, error) {
	if dirExists(filepath.Join(dir, "events")) {
		return dir, nil
	}
	if dirExists(filepath.Join(debugDir, "events")) {
		return debugDir, nil
	}
	if err := mount("tracefs", dir, "tracefs", 0, ""); err != nil {
		return "", fmt.Errorf("mount tracefs at %s: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "events")); err != nil {
		return "", fmt.Errorf("mount tracefs at %s: no events directory after mount: %w", dir, err)
	}
	return dir, nil
}

// EnsureBPFFS makes sure the BPF file system is mounted at /sys/fs/bpf (needed only to pin
// maps or links), mounting it with mode 0700 when it is not.
func EnsureBPFFS() error {
	return ensureBPFFS(bpffsDir, unix.Mount)
}

func ensureBPFFS(dir string, mount mountFunc) error {
	ok, err := isBPFFS(dir)
	if err != nil {
		return fmt.Errorf("statfs %s: %w", dir, err)
	}
	if ok {
		return nil
	}
	if err := mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("mount bpffs at %s: %w", dir, err)
	}
	ok, err = isBPFFS(dir)
	if err != nil {
		return fmt.Errorf("statfs %s after mount: %w", dir, err)
	}
	if !ok {
		return fmt.Errorf("mount bpffs at %s: mounted but statfs does not report BPF_FS_MAGIC", dir)
	}
	return nil
}

func isBPFFS(dir string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false, err
	}
	return uint32(st.Type) == uint32(unix.BPF_FS_MAGIC), nil
}

// FindCgroup2 returns the mount point of the cgroup v2 hierarchy (fstype cgroup2) from
// /proc/self/mountinfo: /sys/fs/cgroup on unified systems, /sys/fs/cgroup/unified on hybrid
// ones. cgroup/connect4|6 programs attach to it.
func FindCgroup2() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("find cgroup2 mount: %w", err)
	}
	defer f.Close()
	mps, err := parseMountinfo(f, "cgroup2")
	if err != nil {
		return "", fmt.Errorf("find cgroup2 mount: parse /proc/self/mountinfo: %w", err)
	}
	if len(mps) == 0 {
		return "", errors.New("find cgroup2 mount: no cgroup2 file system in /proc/self/mountinfo (cgroup v1 only?)")
	}
	return mps[0], nil
}

// parseMountinfo returns the mount points of every mount of file system type fstype, in
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

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
