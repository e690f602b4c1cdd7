package main

import (
	"bytes"
	"debug/macho"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-sensor/vigil/darwin"
	"github.com/vigil-sensor/vigil/internal/testenv"
	"github.com/vigil-sensor/vigil/sensor/install"
)

// plist reads a property list with Python's plistlib, a parser independent of whoever wrote
// the file, and returns it as JSON values.
func plist(t *testing.T, path string) map[string]any {
	t.Helper()
	python := testenv.LookPath(t, "python3")
	const toJSON = `import json, plistlib, sys
print(json.dumps(plistlib.load(open(sys.argv[1], "rb")), default=str))`
	out, err := exec.Command(python, "-c", toJSON, path).Output()
	if err != nil {
		t.Fatalf("plistlib cannot read %s: %v", path, err)
	}
	var v map[string]any
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

var uuidRE = regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$`)

// The PPPC profile is what an MDM accepts and macOS applies: a System-scope configuration
// profile whose TCC payload grants Full Disk Access to the sensor's binary and to eslogger,
// each by path with a code requirement.
func TestPPPCProfile(t *testing.T) {
	const signingID = "com.vigil-sensor.vigil"
	p := plist(t, filepath.Join("..", "..", "..", "darwin", "package", "com.vigil-sensor.vigil.pppc.mobileconfig"))
	for k, want := range map[string]any{"PayloadType": "Configuration", "PayloadScope": "System", "PayloadVersion": 1.0, "PayloadIdentifier": "com.vigil-sensor.vigil.pppc"} {
		if p[k] != want {
			t.Errorf("profile %s = %v, want %v", k, p[k], want)
		}
	}
	content, _ := p["PayloadContent"].([]any)
	if len(content) != 1 {
		t.Fatalf("PayloadContent has %d payloads, want the TCC one", len(content))
	}
	tcc, _ := content[0].(map[string]any)
	if tcc["PayloadType"] != "com.apple.TCC.configuration-profile-policy" || tcc["PayloadVersion"] != 1.0 {
		t.Errorf("payload type %v version %v", tcc["PayloadType"], tcc["PayloadVersion"])
	}
	if id, _ := tcc["PayloadIdentifier"].(string); !strings.HasPrefix(id, "com.vigil-sensor.") {
		t.Errorf("payload identifier %q is not under com.vigil-sensor.", id)
	}
	uuids := []any{p["PayloadUUID"], tcc["PayloadUUID"]}
	for _, u := range uuids {
		if s, _ := u.(string); !uuidRE.MatchString(s) {
			t.Errorf("PayloadUUID %v is not an upper-case UUID", u)
		}
	}
	if uuids[0] == uuids[1] {
		t.Error("the profile and its payload share a PayloadUUID")
	}
	services, _ := tcc["Services"].(map[string]any)
	entries, _ := services["SystemPolicyAllFiles"].([]any)
	want := map[string]string{
		install.DefaultBinary: `identifier "` + signingID + `" and anchor apple generic`,
		darwin.EsloggerPath:   `identifier "com.apple.eslogger" and anchor apple`,
	}
	var seen []string
	for _, e := range entries {
		e, _ := e.(map[string]any)
		id, _ := e["Identifier"].(string)
		seen = append(seen, id)
		req, _ := e["CodeRequirement"].(string)
		if prefix, ok := want[id]; !ok || !strings.HasPrefix(req, prefix) {
			t.Errorf("%s: CodeRequirement %q, want one starting %q", id, req, prefix)
		}
		// Apple's schema: Authorization or Allowed, never both.
		if e["IdentifierType"] != "path" || e["Authorization"] != "Allow" || e["Allowed"] != nil || e["StaticCode"] != false {
			t.Errorf("%s: IdentifierType %v, Authorization %v, Allowed %v, StaticCode %v; want path, Allow, none, false",
				id, e["IdentifierType"], e["Authorization"], e["Allowed"], e["StaticCode"])
		}
	}
	if slices.Sort(seen); !slices.Equal(seen, []string{darwin.EsloggerPath, install.DefaultBinary}) {
		t.Errorf("SystemPolicyAllFiles grants %v", seen)
	}
	// The requirement names the identifier build-pkg.sh signs the binary with.
	script, err := os.ReadFile(filepath.Join("..", "..", "..", "darwin", "package", "build-pkg.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(script, []byte("identifier="+signingID+"\n")) || !bytes.Contains(script, []byte(`--identifier "$identifier"`)) {
		t.Errorf("build-pkg.sh does not sign with the identifier %s", signingID)
	}
}

// compileDarwinStub builds a minimal darwin executable for arch, a stand-in for vigil that
// takes seconds rather than a minute to cross-compile.
func compileDarwinStub(t *testing.T, dir, arch string) string {
	t.Helper()
	src := filepath.Join(dir, "stub.go")
	if err := os.WriteFile(src, []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "darwin_"+arch, "vigil")
	cmd := exec.Command("go", "build", "-o", exe, "stub.go")
	cmd.Dir = dir // outside the module: the stub is a program of its own
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=darwin", "GOARCH="+arch)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("compile a darwin/%s stub: %v\n%s", arch, err, out)
	}
	return exe
}

// The universal binary holds each slice byte for byte, at aligned offsets, x86-64 first, and
// Go's own Mach-O reader opens it as lipo's output.
func TestUniversalBinary(t *testing.T) {
	dir := t.TempDir()
	arm := compileDarwinStub(t, dir, "arm64")
	amd := compileDarwinStub(t, dir, "amd64")
	fat, err := universalBinary([]string{arm, amd})
	if err != nil {
		t.Fatal(err)
	}
	f, err := macho.NewFatFile(bytes.NewReader(fat))
	if err != nil {
		t.Fatalf("debug/macho cannot read the universal binary: %v", err)
	}
	if len(f.Arches) != 2 || f.Arches[0].Cpu != macho.CpuAmd64 || f.Arches[1].Cpu != macho.CpuArm64 {
		t.Fatalf("arches %+v, want amd64 then arm64", f.Arches)
	}
	for i, exe := range []string{amd, arm} {
		a := f.Arches[i]
		want, err := os.ReadFile(exe)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(io.NewSectionReader(bytes.NewReader(fat), int64(a.Offset), int64(a.Size)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%v slice is not %s byte for byte (%v)", a.Cpu, exe, err)
		}
		if a.Offset%(1<<fatAlign) != 0 || a.Align != fatAlign {
			t.Errorf("%v slice at offset %d, align %d", a.Cpu, a.Offset, a.Align)
		}
	}
}

// make package's dist/darwin is the complete input of pkgbuild: the payload root with the
// universal binary and the LaunchDaemon launchd can read, the scripts with their modes, the
// profile and the version.
func TestDarwinPayload(t *testing.T) {
	out := t.TempDir()
	b, err := newBuilder(testDescribe, testLDFLAGS, out, defaultMaintainer)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	// Stubs where compile keeps its executables: it finds them and compiles nothing.
	compileDarwinStub(t, b.scratch, "amd64")
	compileDarwinStub(t, b.scratch, "arm64")
	dir, err := b.darwinPayload()
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]os.FileMode{
		"root" + install.DefaultBinary:    0o755,
		"root" + install.LaunchDaemonPath: 0o644,
		"VERSION":                         0o644,
	}
	for _, f := range darwinFiles {
		modes[f.name] = f.mode
	}
	var found []string
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		found = append(found, rel)
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if want, ok := modes[rel]; !ok || st.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v (listed: %v)", rel, st.Mode().Perm(), want, ok)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != len(modes) {
		t.Errorf("dist/darwin holds %v, want %d files", found, len(modes))
	}
	if v, _ := os.ReadFile(filepath.Join(dir, "VERSION")); string(v) != testVersion+"\n" {
		t.Errorf("VERSION = %q", v)
	}
	f, err := macho.OpenFat(filepath.Join(dir, "root", install.DefaultBinary))
	if err != nil {
		t.Fatalf("the payload's binary is not universal: %v", err)
	}
	f.Close()
	daemon := plist(t, filepath.Join(dir, "root", install.LaunchDaemonPath))
	if daemon["Label"] != "com.vigil-sensor.vigil" || filepath.Base(install.LaunchDaemonPath) != "com.vigil-sensor.vigil.plist" {
		t.Errorf("LaunchDaemon label %v at %s", daemon["Label"], install.LaunchDaemonPath)
	}
	if args, _ := daemon["ProgramArguments"].([]any); len(args) != 2 || args[0] != install.DefaultBinary || args[1] != "run" {
		t.Errorf("ProgramArguments %v", daemon["ProgramArguments"])
	}
	if daemon["RunAtLoad"] != true || daemon["KeepAlive"] != true {
		t.Errorf("RunAtLoad %v, KeepAlive %v", daemon["RunAtLoad"], daemon["KeepAlive"])
	}
	// The scripts start and stop what the payload installs.
	post, err := os.ReadFile(filepath.Join(dir, "scripts", "postinstall"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"launchctl bootstrap system " + install.LaunchDaemonPath, "/usr/local/bin/vigil\" install", "--binary " + install.DefaultBinary} {
		if !strings.Contains(string(post), s) {
			t.Errorf("postinstall lacks %q", s)
		}
	}
}
