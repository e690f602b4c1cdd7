package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-sensor/vigil/internal/testenv"
	"github.com/vigil-sensor/vigil/sensor"
	"github.com/vigil-sensor/vigil/sensor/install"
)

// testDescribe is the version the tests build: three commits past a tag, dirty.
const (
	testDescribe = "v1.2.3-4-gabcdef0-dirty"
	// testLDFLAGS are the Makefile's LDFLAGS for that version.
	testLDFLAGS = "-s -w -X main.version=" + testDescribe + " -X main.commit=abcdef0123456789abcdef0123456789abcdef01-dirty"
	testVersion = "1.2.3+4.gabcdef0.dirty"
)

var shared struct {
	once sync.Once
	b    *builder
	err  error
}

// testBuilder is one builder for the whole run, so that each platform is compiled once.
func testBuilder(t *testing.T) *builder {
	t.Helper()
	shared.once.Do(func() {
		out, err := os.MkdirTemp("", "vigil-package-test-")
		if err != nil {
			shared.err = err
			return
		}
		shared.b, shared.err = newBuilder(testDescribe, testLDFLAGS, out, defaultMaintainer)
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.b
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.b != nil {
		shared.b.close()
		os.RemoveAll(shared.b.out)
	}
	os.Exit(code)
}

func TestPackageVersion(t *testing.T) {
	for _, c := range []struct{ describe, want string }{
		{"v1.2.3", "1.2.3"},
		{"1.2.3", "1.2.3"},
		{"v1.2.3-dirty", "1.2.3+dirty"},
		{"v1.2.3-rc.1", "1.2.3~rc.1"},
		{"v1.2.3-rc-1", "1.2.3~rc.1"},
		{"v1.2.3-4-gabcdef0", "1.2.3+4.gabcdef0"},
		{testDescribe, testVersion},
		{"v1.2.3-rc.1-4-gabcdef0", "1.2.3~rc.1+4.gabcdef0"},
		{"765d1f5", "0.0.0~g765d1f5"},
		{"765d1f5-dirty", "0.0.0~g765d1f5.dirty"},
		{"dev", "0.0.0~dev"},
	} {
		got, err := packageVersion(c.describe)
		if err != nil || got != c.want {
			t.Errorf("packageVersion(%q) = %q, %v; want %q", c.describe, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "release-x-4-gabcdef0", "v1.2.3 beta", "a/b"} {
		if got, err := packageVersion(bad); err == nil {
			t.Errorf("packageVersion(%q) = %q, want an error", bad, got)
		}
	}
}

// The versions order as the builds were made, by dpkg's own comparison: an untagged build
// below every release, a prerelease below its release, commits past a tag above it.
func TestPackageVersionOrder(t *testing.T) {
	dpkg := testenv.LookPath(t, "dpkg")
	order := []string{"765d1f5-dirty", "v1.2.3-rc.1", "v1.2.3", "v1.2.3-4-gabcdef0", "v1.2.3-4-gabcdef0-dirty", "v1.2.3-5-g0123456", "v1.2.4-rc.1"}
	for i := 1; i < len(order); i++ {
		lo, err := packageVersion(order[i-1])
		if err != nil {
			t.Fatal(err)
		}
		hi, err := packageVersion(order[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := exec.Command(dpkg, "--compare-versions", lo, "lt", hi).Run(); err != nil {
			t.Errorf("dpkg does not order %s (%s) below %s (%s): %v", lo, order[i-1], hi, order[i], err)
		}
	}
}

// The maintainer scripts are POSIX sh: sh -n parses them and shellcheck finds nothing.
func TestShellScripts(t *testing.T) {
	scripts, err := filepath.Glob("scripts/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range darwinFiles {
		if strings.HasSuffix(f.name, ".sh") || strings.HasPrefix(f.name, "scripts/") {
			scripts = append(scripts, filepath.Join("..", "..", "..", "darwin", "package", f.name))
		}
	}
	if len(scripts) != 7 {
		t.Fatalf("found %d scripts, want the 3 Linux and 4 macOS ones: %v", len(scripts), scripts)
	}
	for _, s := range scripts {
		if out, err := exec.Command("sh", "-n", s).CombinedOutput(); err != nil {
			t.Errorf("sh -n %s: %v\n%s", s, err, out)
		}
	}
	shellcheck := testenv.LookPath(t, "shellcheck")
	if out, err := exec.Command(shellcheck, append([]string{"-s", "sh"}, scripts...)...).CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}

// runOut runs a command and returns its standard output, failing the test with both outputs.
func runOut(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.String()
}

// The .deb holds the binary, the unit, the configuration as a conffile and the documentation,
// with their modes, and the maintainer scripts as committed.
func TestDebContents(t *testing.T) {
	dpkgDeb := testenv.LookPath(t, "dpkg-deb")
	deb, err := testBuilder(t).linuxPackage("deb", "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if want := "vigil_" + testVersion + "_amd64.deb"; filepath.Base(deb) != want {
		t.Errorf("package file %s, want %s", filepath.Base(deb), want)
	}
	// dpkg-deb -c: "-rwxr-xr-x root/root 30433442 2026-12-05 09:15 ./usr/bin/vigil"
	listed := map[string]string{}
	for line := range strings.Lines(runOut(t, dpkgDeb, "-c", deb)) {
		f := strings.Fields(line)
		if len(f) == 6 && !strings.HasPrefix(f[0], "d") {
			listed[strings.TrimPrefix(f[5], ".")] = f[0] + " " + f[1]
		}
	}
	want := map[string]string{
		linuxBinary:                      "-rwxr-xr-x root/root",
		install.SystemdUnitPath:          "-rw-r--r-- root/root",
		install.DefaultConfigPath:        "-rw-r----- root/root",
		"/usr/share/doc/vigil/README.md": "-rw-r--r-- root/root",
		"/usr/share/doc/vigil/copyright": "-rw-r--r-- root/root",
	}
	if fmt.Sprint(listed) != fmt.Sprint(want) {
		t.Errorf("dpkg-deb -c lists\n%v\nwant\n%v", listed, want)
	}
	if got := runOut(t, dpkgDeb, "-I", deb, "conffiles"); got != install.DefaultConfigPath+"\n" {
		t.Errorf("conffiles = %q, want only %s", got, install.DefaultConfigPath)
	}
	fields := runOut(t, dpkgDeb, "-f", deb, "Package", "Version", "Architecture", "Maintainer", "Homepage")
	for _, f := range []string{"Package: vigil", "Version: " + testVersion, "Architecture: amd64", "Maintainer: " + defaultMaintainer, "Homepage: " + homepage} {
		if !strings.Contains(fields, f+"\n") {
			t.Errorf("control lacks %q:\n%s", f, fields)
		}
	}
	for script, name := range map[string]string{"postinst": "postinstall", "prerm": "preremove", "postrm": "postremove"} {
		committed, err := os.ReadFile(filepath.Join("scripts", name))
		if err != nil {
			t.Fatal(err)
		}
		if got := runOut(t, dpkgDeb, "-I", deb, script); got != string(committed) {
			t.Errorf("the package's %s is not scripts/%s:\n%s", script, name, got)
		}
	}
}

// The .rpm holds the same files, the configuration as %config(noreplace), and the scripts.
func TestRPMContents(t *testing.T) {
	rpm := testenv.LookPath(t, "rpm")
	pkg, err := testBuilder(t).linuxPackage("rpm", "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if want := "vigil-" + testVersion + ".x86_64.rpm"; filepath.Base(pkg) != want {
		t.Errorf("package file %s, want %s", filepath.Base(pkg), want)
	}
	if got, want := runOut(t, rpm, "-qp", "--qf", "%{NAME} %{VERSION} %{ARCH} %{LICENSE} %{URL}", pkg), "vigil "+testVersion+" x86_64 MIT "+homepage; got != want {
		t.Errorf("rpm header: %q, want %q", got, want)
	}
	want := []string{ // rpm lists them sorted
		install.DefaultConfigPath,
		linuxBinary,
		install.SystemdUnitPath,
		"/usr/share/doc/vigil/README.md",
		"/usr/share/licenses/vigil/LICENSE",
	}
	if got := strings.Fields(runOut(t, rpm, "-qpl", pkg)); !slices.Equal(got, want) {
		t.Errorf("rpm -qpl: %v, want %v", got, want)
	}
	// One line per file: its flags (c config, n noreplace, d doc, l license) and mode.
	flags := map[string]string{}
	for line := range strings.Lines(runOut(t, rpm, "-qp", "--qf", `[%{FILENAMES} %{FILEFLAGS:fflags} %{FILEMODES:perms}\n]`, pkg)) {
		f := strings.Fields(line)
		if len(f) == 3 {
			flags[f[0]] = f[1] + " " + f[2]
		} else if len(f) == 2 { // no flags
			flags[f[0]] = f[1]
		}
	}
	for path, w := range map[string]string{
		install.DefaultConfigPath:           "cn -rw-r-----",
		linuxBinary:                         "-rwxr-xr-x",
		install.SystemdUnitPath:             "-rw-r--r--",
		"/usr/share/doc/vigil/README.md":    "d -rw-r--r--",
		"/usr/share/licenses/vigil/LICENSE": "l -rw-r--r--",
	} {
		if flags[path] != w {
			t.Errorf("%s: flags and mode %q, want %q", path, flags[path], w)
		}
	}
	scripts := runOut(t, rpm, "-qp", "--scripts", pkg)
	for section, name := range map[string]string{"postinstall": "postinstall", "preuninstall": "preremove", "postuninstall": "postremove"} {
		committed, err := os.ReadFile(filepath.Join("scripts", name))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(scripts, section+" scriptlet (using /bin/sh):\n"+string(committed)) {
			t.Errorf("rpm --scripts lacks the %s scriptlet from scripts/%s:\n%s", section, name, scripts)
		}
	}
}

// entry is what a snapshot records of one path: its type and mode, and a file's content hash
// or a link's target.
type entry struct {
	Mode    fs.FileMode
	Content string
}

// snapshot records every path under dir but dpkg's own (its database and log).
func snapshot(t *testing.T, dir string) map[string]entry {
	t.Helper()
	m := map[string]entry{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "var/lib/dpkg" {
			return fs.SkipDir
		}
		if rel == "var/log/dpkg.log" {
			return nil
		}
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		e := entry{Mode: st.Mode()}
		switch {
		case st.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e.Content = fmt.Sprintf("%x", sha256.Sum256(b))
		case st.Mode()&fs.ModeSymlink != 0:
			e.Content, err = os.Readlink(p)
			if err != nil {
				return err
			}
		}
		m["/"+filepath.ToSlash(rel)] = e
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", dir, err)
	}
	return m
}

// diff lists the paths whose entries differ between two snapshots.
func diff(before, after map[string]entry) []string {
	var d []string
	for p, e := range after {
		if b, ok := before[p]; !ok {
			d = append(d, "+"+p)
		} else if b != e {
			d = append(d, "~"+p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			d = append(d, "-"+p)
		}
	}
	slices.Sort(d)
	return d
}

// hostPaths are where the package would write on this machine were dpkg not kept in its
// scratch root, and dpkg's own log: none may change.
var hostPaths = []string{
	"/usr/bin/vigil", install.SystemdUnitPath, "/etc/vigil", install.StateDir,
	"/etc/codex", "/etc/claude-code", "/etc/gemini-cli", "/etc/cursor",
	"/etc/systemd/system/multi-user.target.wants/vigil.service", "/var/log/dpkg.log",
}

// hostState is each host path's snapshot, or "absent".
func hostState(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, p := range hostPaths {
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			m[p] = "absent"
			continue
		}
		m[p] = fmt.Sprint(snapshot(t, p))
	}
	return m
}

// Real dpkg installs the .deb into a scratch root holding an admin's agent configuration, runs
// the maintainer scripts (so `vigil install` and `vigil uninstall`), reinstalls it as an
// upgrade does, removes and purges it. The admin's files come back byte for byte and nothing
// of Vigil is left but what dpkg keeps of a removed package (its conffile) until the purge.
//
// The dpkg flags, found on Debian 12's dpkg 1.21.22:
//   - --root=DIR sets the install directory and the admin directory (DIR/var/lib/dpkg, whose
//     status, available, info/, updates/ and triggers/ must exist);
//   - --force-script-chrootless: without it dpkg chroots into DIR to run the maintainer
//     scripts, and fails there with ENOENT for want of a /bin/sh in DIR. With it the scripts
//     run on the host with DPKG_ROOT=DIR, which they honour (vigil install --root "$DPKG_ROOT",
//     systemctl --root), so the host's files are never touched;
//   - --log=DIR/var/log/dpkg.log: dpkg 1.21 otherwise appends to the host's /var/log/dpkg.log
//     whatever --root says.
//
// As root, --force-not-root is not needed: the test needs root for dpkg to chown the files.
func TestDebInstallRemoveInScratchRoot(t *testing.T) {
	testenv.RequireRoot(t, "installing a .deb with dpkg (it chowns the files to root)")
	dpkg := testenv.LookPath(t, "dpkg")
	deb, err := testBuilder(t).linuxPackage("deb", "amd64")
	if err != nil {
		t.Fatal(err)
	}
	host := hostState(t)
	dir := t.TempDir()
	// A root as dpkg and an admin leave it: dpkg's database, systemd's wants directory with
	// another service enabled, a Codex hooks file with the admin's own hook and Claude Code's
	// managed settings.
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "var/log", "etc/systemd/system/multi-user.target.wants"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/usr/lib/systemd/system/admin.service", filepath.Join(dir, "etc/systemd/system/multi-user.target.wants/admin.service")); err != nil {
		t.Fatal(err)
	}
	admin := map[string]string{
		"/var/lib/dpkg/status":                   "",
		"/var/lib/dpkg/available":                "",
		"/etc/codex/hooks.json":                  `{"hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "/opt/corp/codex-guard"}]}]}}` + "\n",
		"/etc/claude-code/managed-settings.json": `{"permissions": {"deny": ["Read(./.env)"]}, "hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "/opt/corp/audit-bash"}]}]}}` + "\n",
	}
	for p, content := range admin {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before := snapshot(t, dir)
	dpkgIn := func(args ...string) string {
		t.Helper()
		return runOut(t, dpkg, append([]string{"--root=" + dir, "--force-script-chrootless", "--log=" + filepath.Join(dir, "var/log/dpkg.log")}, args...)...)
	}
	read := func(p string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	dpkgIn("-i", deb)
	_, unit, err := install.ServiceFile("linux", linuxBinary)
	if err != nil {
		t.Fatal(err)
	}
	if read(install.SystemdUnitPath) != string(unit) {
		t.Error("the installed unit is not install.ServiceFile's")
	}
	if read(install.DefaultConfigPath) != string(sensor.DefaultYAML()) {
		t.Error("the installed vigil.yaml is not sensor.DefaultYAML()")
	}
	if st, err := os.Stat(filepath.Join(dir, linuxBinary)); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("%s: %v, %v", linuxBinary, st, err)
	}
	// The packaged binary is built with the Makefile's LDFLAGS: its version names the commit.
	if out := runOut(t, filepath.Join(dir, linuxBinary), "version"); !strings.Contains(out, "vigil "+testDescribe+" (commit abcdef0123456789abcdef0123456789abcdef01-dirty,") {
		t.Errorf("vigil version of the package: %q", out)
	}
	hook := linuxBinary + " hook --agent"
	if codex := read("/etc/codex/hooks.json"); !strings.Contains(codex, hook+" codex") || !strings.Contains(codex, "/opt/corp/codex-guard") {
		t.Errorf("Codex's hooks.json lacks Vigil's hook or the admin's:\n%s", codex)
	}
	if claude := read("/etc/claude-code/managed-settings.d/50-vigil.json"); !strings.Contains(claude, hook+" claude-code") {
		t.Errorf("Claude Code's drop-in lacks Vigil's hook:\n%s", claude)
	}
	if read("/etc/claude-code/managed-settings.json") != admin["/etc/claude-code/managed-settings.json"] {
		t.Error("Claude Code's managed-settings.json changed: Vigil writes its drop-in beside it")
	}
	// vigil install found the package's own files as it would write them and left them to
	// dpkg: its manifest (what vigil uninstall undoes) names none of them.
	var m struct{ Files []struct{ Path string } }
	if err := json.Unmarshal([]byte(read(install.StateDir+"/manifest.json")), &m); err != nil {
		t.Fatal(err)
	}
	for _, f := range m.Files {
		if slices.Contains([]string{linuxBinary, install.SystemdUnitPath, install.DefaultConfigPath}, f.Path) {
			t.Errorf("vigil install took over %s, which dpkg owns", f.Path)
		}
	}
	// The unit is enabled offline in the scratch root, never in the host's systemd.
	if _, err := exec.LookPath("systemctl"); err == nil {
		wants := filepath.Join(dir, "etc/systemd/system/multi-user.target.wants/vigil.service")
		if target, err := os.Readlink(wants); err != nil || target != install.SystemdUnitPath {
			t.Errorf("vigil.service is not enabled in the scratch root: %q, %v", target, err)
		}
	}

	// An upgrade (here to the same version: old prerm upgrade, unpack, new postinst
	// configure) changes nothing.
	installed := snapshot(t, dir)
	dpkgIn("-i", deb)
	if d := diff(installed, snapshot(t, dir)); len(d) > 0 {
		t.Errorf("reinstalling changed %v", d)
	}

	// What the running sensor writes: kept by a removal, deleted by a purge.
	for _, p := range []string{"/var/lib/vigil/vigil.db", "/var/log/vigil/events.jsonl"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte("data\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	dpkgIn("-r", "vigil")
	kept := []string{"+/etc/vigil", "+/etc/vigil/vigil.yaml", "+/var/lib/vigil", "+/var/lib/vigil/vigil.db", "+/var/log/vigil", "+/var/log/vigil/events.jsonl"}
	if d := diff(before, snapshot(t, dir)); !slices.Equal(d, kept) {
		t.Errorf("after dpkg -r the root differs from before the install by %v, want only %v", d, kept)
	}
	dpkgIn("--purge", "vigil")
	if d := diff(before, snapshot(t, dir)); len(d) > 0 {
		t.Errorf("after dpkg --purge the root differs from before the install by %v", d)
	}
	if status := read("/var/lib/dpkg/status"); strings.Contains(status, "Package: vigil") {
		t.Errorf("dpkg's status still has vigil after the purge:\n%s", status)
	}
	for p, was := range hostState(t) {
		if was != host[p] {
			t.Errorf("the host's %s changed", p)
		}
	}
}
