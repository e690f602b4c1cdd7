package linux

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vigil-sensor/vigil/internal/testenv"
)

func TestParseCapEff(t *testing.T) {
	for _, tc := range []struct {
		status  string
		want    uint64
		wantErr bool
	}{
		{"Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001fffeffffff\nCapBnd:\t000001ffffffffff\n", 0x000001fffeffffff, false},
		{"CapEff: 0000000000200000", 1 << 21, false},
		{"CapPrm:\t000001ffffffffff\n", 0, true},
		{"CapEff:\tzz\n", 0, true},
	} {
		got, err := parseCapEff(tc.status)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("%q: got %#x, %v", tc.status, got, err)
		}
	}
}

func TestCheckPrivilegesTable(t *testing.T) {
	status := func(capEff uint64) string {
		return fmt.Sprintf("Name:\tvigil\nUid:\t0\t0\t0\t0\nCapEff:\t%016x\n", capEff)
	}
	const (
		all     = 0x000001ffffffffff
		admin   = 1 << capSysAdmin
		bpfPerf = 1<<capBPF | 1<<capPerfmon
	)
	for _, tc := range []struct {
		name   string
		euid   int
		status string
		want   string // substring of the error; "" for nil
	}{
		{"root", 0, status(all), ""},
		{"root on this machine", 0, status(0x000001fffeffffff), ""},
		{"root with only CAP_SYS_ADMIN", 0, status(admin), ""},
		{"non-root with ambient caps", 1000, status(admin | bpfPerf), ""},
		{"unprivileged user", 1000, status(0), "vigil needs root (or CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN): running as uid 1000"},
		{"nobody", 65534, status(0), "running as uid 65534"},
		{"non-root with bpf+perfmon only", 1000, status(bpfPerf), "running as uid 1000"},
		{"root in a capability-dropped container", 0, status(bpfPerf), "lack CAP_SYS_ADMIN"},
		{"root with nothing", 0, status(0), "lack CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN"},
		{"no CapEff", 0, "Name:\tx\n", "no CapEff"},
	} {
		err := checkPrivileges(tc.euid, tc.status)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: unexpected error %v", tc.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want error containing %q", tc.name, err, tc.want)
		}
	}
}

func TestCheckBTFTable(t *testing.T) {
	tmp := t.TempDir()
	file := filepath.Join(tmp, "vmlinux")
	if err := os.WriteFile(file, []byte{0x9f, 0xeb, 1, 0}, 0o444); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want string
	}{
		{file, ""},
		{filepath.Join(tmp, "missing"), "kernel BTF not found at " + filepath.Join(tmp, "missing") +
			": Vigil's eBPF programs need a kernel built with CONFIG_DEBUG_INFO_BTF=y; use the audit fallback"},
		{tmp, "is not a BTF file"},
	} {
		err := checkBTF(tc.path)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.path, err)
			}
			continue
		}
		if err == nil || err.Error() != tc.want && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.path, err, tc.want)
		}
	}
}

func TestCheckBTF(t *testing.T) {
	if err := CheckBTF(); err != nil {
		t.Fatalf("this project's machines have kernel BTF: %v", err)
	}
}

func TestCheckPrivilegesAsRoot(t *testing.T) {
	testenv.RequireRoot(t, "CheckPrivileges' success path")
	if err := CheckPrivileges(); err != nil {
		t.Fatal(err)
	}
}

const privsHelperEnv = "VIGIL_TEST_PRIVS_HELPER"

// TestPrivilegesHelperProcess is not a test: TestCheckPrivilegesUnprivileged re-executes the
// test binary as nobody with this test selected and the environment variable set.
func TestPrivilegesHelperProcess(t *testing.T) {
	if os.Getenv(privsHelperEnv) != "1" {
		t.Skip("helper process for TestCheckPrivilegesUnprivileged")
	}
	if err := CheckPrivileges(); err != nil {
		fmt.Printf("ERR: %v\n", err)
	} else {
		fmt.Println("OK")
	}
}

func TestCheckPrivilegesUnprivileged(t *testing.T) {
	testenv.RequireRoot(t, "switching to uid 65534")
	// The go test build directory is private to root: copy the binary where nobody can run it.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "vigil-privs-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "linux.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestPrivilegesHelperProcess$", "-test.v")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), privsHelperEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	want := "ERR: vigil needs root (or CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN): running as uid 65534"
	if !strings.Contains(string(out), want) {
		t.Fatalf("helper output lacks %q:\n%s", want, out)
	}
}
