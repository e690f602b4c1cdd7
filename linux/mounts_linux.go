package linux

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// Well-known mount points of the pseudo file systems the eBPF source needs.
const (
	tracefsDir      = "/sys/kernel/tracing"
	debugTracingDir = "/sys/kernel/debug/tracing"
	bpffsDir        = "/sys/fs/bpf"
	// cgroup2Dir is where Vigil mounts the cgroup2 hierarchy on a host that has none mounted.
	cgroup2Dir = "/run/vigil/cgroup2"
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

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// EnsureCgroup2 returns a mount point of the root of the cgroup2 hierarchy, where the egress
// hooks attach (a program attached there runs for every process): the host's (/sys/fs/cgroup
// on a unified host, /sys/fs/cgroup/unified on a hybrid one), or one it mounts at
// /run/vigil/cgroup2 (mode 0700) when none is mounted.
func EnsureCgroup2() (string, error) {
	return ensureCgroup2(procfs.GetMounts, cgroup2Dir, unix.Mount)
}

func ensureCgroup2(mounts func() ([]*procfs.MountInfo, error), dir string, mount mountFunc) (string, error) {
	all, err := mounts()
	if err != nil {
		return "", fmt.Errorf("find the cgroup2 mount: %w", err)
	}
	for _, m := range all {
		// Root "/": the hierarchy's root, not a subtree bind-mounted (as in a container).
		if m.FSType == "cgroup2" && m.Root == "/" {
			return m.MountPoint, nil
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create %s for the cgroup2 hierarchy: %w", dir, err)
	}
	if err := mount("cgroup2", dir, "cgroup2", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return "", fmt.Errorf("mount cgroup2 at %s: %w", dir, err)
	}
	return dir, nil
}
