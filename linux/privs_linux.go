package linux

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// Capability numbers (linux/capability.h).
const (
	capSysAdmin     = 21
	capAuditControl = 30
	capAuditRead    = 37
	capPerfmon      = 38
	capBPF          = 39
)

// btfPath is where a kernel built with CONFIG_DEBUG_INFO_BTF=y exposes its type information.
const btfPath = "/sys/kernel/btf/vmlinux"

// CheckPrivileges reports whether this process may load and attach Vigil's eBPF programs and
// mount tracefs/bpffs. CAP_SYS_ADMIN in the effective set is enough: the kernel accepts it in
// place of CAP_BPF and CAP_PERFMON, and the mounts need it anyway. Root normally has it; a
// non-root service needs it granted (with CAP_BPF and CAP_PERFMON) as ambient capabilities.
func CheckPrivileges() error {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return fmt.Errorf("check privileges: %w", err)
	}
	return checkPrivileges(os.Geteuid(), string(status))
}

func checkPrivileges(euid int, status string) error {
	capEff, err := parseCapEff(status)
	if err != nil {
		return fmt.Errorf("check privileges: %w", err)
	}
	if hasCap(capEff, capSysAdmin) {
		return nil
	}
	if euid != 0 {
		return fmt.Errorf("vigil needs root (or CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN): running as uid %d", euid)
	}
	var missing []string
	for _, c := range []struct {
		n    uint
		name string
	}{{capBPF, "CAP_BPF"}, {capPerfmon, "CAP_PERFMON"}, {capSysAdmin, "CAP_SYS_ADMIN"}} {
		if !hasCap(capEff, c.n) {
			missing = append(missing, c.name)
		}
	}
	return fmt.Errorf("vigil runs as root but its effective capabilities (CapEff %016x) lack %s: "+
		"in a container or a restricted service unit, grant CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN",
		capEff, strings.Join(missing, ", "))
}

// checkAuditPrivileges says which capability the audit source lacks, instead of a bare
// EPERM later.
func checkAuditPrivileges() error {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return fmt.Errorf("check privileges: %w", err)
	}
	capEff, err := parseCapEff(string(status))
	if err != nil {
		return fmt.Errorf("check privileges: %w", err)
	}
	if !hasCap(capEff, capAuditControl) {
		return errors.New("the audit source needs CAP_AUDIT_CONTROL (run as root)")
	}
	if !hasCap(capEff, capAuditRead) {
		return errors.New("the audit source needs CAP_AUDIT_READ (run as root)")
	}
	return nil
}

// parseCapEff returns the effective capability mask from /proc/<pid>/status text.
func parseCapEff(status string) (uint64, error) {
	sc := bufio.NewScanner(strings.NewReader(status))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != "CapEff" {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return 0, fmt.Errorf("parse CapEff %q: %w", strings.TrimSpace(v), err)
		}
		return mask, nil
	}
	return 0, errors.New("no CapEff line in /proc/self/status")
}

func hasCap(mask uint64, c uint) bool { return mask&(1<<c) != 0 }

// CheckBTF reports whether the kernel exposes its BTF, which CO-RE eBPF programs need.
func CheckBTF() error { return checkBTF(btfPath) }

func checkBTF(path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("kernel BTF not found at %s: Vigil's eBPF programs need a kernel built with "+
			"CONFIG_DEBUG_INFO_BTF=y; use the audit fallback", path)
	}
	if err != nil {
		return fmt.Errorf("check kernel BTF: %w", err)
	}
	if fi.IsDir() {
		return fmt.Errorf("kernel BTF at %s is not a BTF file", path)
	}
	return nil
}
