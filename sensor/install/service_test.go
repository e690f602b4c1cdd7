package install

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-sensor/vigil/internal/testenv"
)

// systemdVerify runs systemd-analyze verify on a unit file and returns what it printed.
func systemdVerify(t *testing.T, unit []byte) (string, error) {
	t.Helper()
	analyze := testenv.LookPath(t, "systemd-analyze")
	path := filepath.Join(t.TempDir(), "vigil.service")
	if err := os.WriteFile(path, unit, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	return string(out), err
}

// systemd reads the unit without a warning (an unknown or misspelt directive is one), and
// the check does catch one.
func TestSystemdUnitVerifies(t *testing.T) {
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	_, unit, err := ServiceFile("linux", truePath) // an executable that exists here
	if err != nil {
		t.Fatal(err)
	}
	if out, err := systemdVerify(t, unit); err != nil || out != "" {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	broken := strings.Replace(string(unit), "ProtectSystem=strict", "ProtectSytem=strict", 1)
	if out, _ := systemdVerify(t, []byte(broken)); !strings.Contains(out, "ProtectSytem") {
		t.Fatalf("systemd-analyze verify did not report a misspelt directive: %q", out)
	}
}

// The LaunchDaemon is a property list launchd can read: checked by Python's plistlib, an
// independent parser, and for the keys launchd needs.
func TestLaunchDaemonIsAPlist(t *testing.T) {
	python := testenv.LookPath(t, "python3")
	path, plist, err := ServiceFile("darwin", "/usr/local/bin/vigil")
	if err != nil {
		t.Fatal(err)
	}
	if path != LaunchDaemonPath {
		t.Errorf("path = %s", path)
	}
	file := filepath.Join(t.TempDir(), "vigil.plist")
	if err := os.WriteFile(file, plist, 0o644); err != nil {
		t.Fatal(err)
	}
	const check = `import plistlib, sys
p = plistlib.load(open(sys.argv[1], "rb"))
assert p["Label"] == "com.vigil-sensor.vigil", p
assert p["ProgramArguments"] == ["/usr/local/bin/vigil", "run"], p
assert p["RunAtLoad"] is True and p["KeepAlive"] is True, p
print("ok")`
	out, err := exec.Command(python, "-c", check, file).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("plistlib: %v\n%s", err, out)
	}
}
