package main

import (
	"bytes"
	"embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // the packagers register themselves; only these two
	"github.com/goreleaser/nfpm/v2/files"
	_ "github.com/goreleaser/nfpm/v2/rpm"

	"github.com/vigil-sensor/vigil/sensor"
	"github.com/vigil-sensor/vigil/sensor/install"
)

// Where the Linux packages put things: /usr/bin, not install.DefaultBinary (/usr/local is the
// admin's, not a package manager's).
const (
	linuxBinary = "/usr/bin/vigil"
	homepage    = "https://github.com/vigil-sensor/vigil"
	// defaultMaintainer is a placeholder address: the project publishes none yet.
	defaultMaintainer = "The Vigil authors <vigil@vigil-sensor.invalid>"
	description       = "Endpoint sensor for AI coding agents\n" +
		"Vigil records the processes, file changes and connections of AI coding agents\n" +
		"(Claude Code, Codex, Cursor, Gemini CLI, ...) with eBPF and binds each to the\n" +
		"session, prompt and tool call that caused it. The package installs the sensor's\n" +
		"systemd service and points every agent's managed configuration at it."
)

// scripts are the maintainer scripts, shared by the .deb and the .rpm (each tells the two
// apart by its arguments).
//
//go:embed scripts
var scripts embed.FS

// builder builds every package of one version; its scratch directory holds the compiled
// binaries and the rendered files nfpm reads.
type builder struct {
	repo       string // the module's root directory
	version    string // the packages' version (packageVersion)
	ldflags    string // the Makefile's LDFLAGS: version and commit for `vigil version`
	out        string
	maintainer string
	scratch    string
}

func newBuilder(describe, ldflags, out, maintainer string) (*builder, error) {
	version, err := packageVersion(describe)
	if err != nil {
		return nil, err
	}
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return nil, fmt.Errorf("find the module root (go env GOMOD): %w", err)
	}
	repo := filepath.Dir(strings.TrimSpace(string(gomod)))
	if _, err := os.Stat(filepath.Join(repo, "cmd", "vigil")); err != nil {
		return nil, fmt.Errorf("find the repository: run inside it: %w", err)
	}
	if out, err = filepath.Abs(out); err != nil {
		return nil, fmt.Errorf("resolve -out: %w", err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("create the output directory: %w", err)
	}
	scratch, err := os.MkdirTemp("", "vigil-package-")
	if err != nil {
		return nil, fmt.Errorf("create a scratch directory: %w", err)
	}
	return &builder{repo: repo, version: version, ldflags: ldflags, out: out, maintainer: maintainer, scratch: scratch}, nil
}

func (b *builder) close() { os.RemoveAll(b.scratch) }

// compile cross-compiles cmd/vigil as the Makefile's build does (CGO_ENABLED=0, -trimpath,
// LDFLAGS) and returns the executable's path; each platform is compiled once.
func (b *builder) compile(goos, goarch string) (string, error) {
	exe := filepath.Join(b.scratch, goos+"_"+goarch, "vigil")
	if _, err := os.Stat(exe); err == nil {
		return exe, nil
	}
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", b.ldflags, "-o", exe, "./cmd/vigil")
	cmd.Dir = b.repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("compile vigil for %s/%s: %w\n%s", goos, goarch, err, stderr.Bytes())
	}
	return exe, nil
}

// stage writes content to the scratch directory for nfpm, which packs files from disk.
func (b *builder) stage(name string, content []byte) (string, error) {
	p := filepath.Join(b.scratch, "staged", name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", fmt.Errorf("stage %s: %w", name, err)
	}
	if err := os.WriteFile(p, content, 0o644); err != nil {
		return "", fmt.Errorf("stage %s: %w", name, err)
	}
	return p, nil
}

// linuxPackage builds the .deb or .rpm for arch and returns its path.
func (b *builder) linuxPackage(format, arch string) (string, error) {
	exe, err := b.compile("linux", arch)
	if err != nil {
		return "", err
	}
	info, err := b.linuxInfo(arch, exe)
	if err != nil {
		return "", err
	}
	pkg, err := nfpm.Get(format)
	if err != nil {
		return "", fmt.Errorf("nfpm %s packager: %w", format, err)
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.PrepareForPackager(info, format); err != nil {
		return "", fmt.Errorf("prepare the %s %s contents: %w", format, arch, err)
	}
	name := fmt.Sprintf("vigil_%s_%s.deb", b.version, arch)
	if format == "rpm" {
		name = fmt.Sprintf("vigil-%s.%s.rpm", b.version, rpmArch(arch))
	}
	path := filepath.Join(b.out, name)
	f, err := os.Create(path)
	if err != nil {
		return "", fmt.Errorf("create %s: %w", name, err)
	}
	if err := pkg.Package(info, f); err != nil {
		f.Close()
		os.Remove(path)
		return "", fmt.Errorf("build %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write %s: %w", name, err)
	}
	return path, nil
}

// rpmArch is arch as rpm names it (nfpm maps it the same way inside the package).
func rpmArch(arch string) string {
	switch arch {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	}
	return arch
}

// linuxInfo describes the package: what it holds and the scripts that run `vigil install`.
func (b *builder) linuxInfo(arch, exe string) (*nfpm.Info, error) {
	unitPath, unit, err := install.ServiceFile("linux", linuxBinary)
	if err != nil {
		return nil, err
	}
	unitSrc, err := b.stage("vigil.service", unit)
	if err != nil {
		return nil, err
	}
	configSrc, err := b.stage("vigil.yaml", sensor.DefaultYAML())
	if err != nil {
		return nil, err
	}
	root := func(mode os.FileMode) *files.ContentFileInfo {
		return &files.ContentFileInfo{Owner: "root", Group: "root", Mode: mode}
	}
	contents := files.Contents{
		{Source: exe, Destination: linuxBinary, FileInfo: root(0o755)},
		{Source: unitSrc, Destination: unitPath, FileInfo: root(0o644)},
		// The admin's configuration from the first install on: dpkg keeps a changed conffile
		// (asking, or per --force-conf*), rpm's %config(noreplace) writes the new one beside
		// it as .rpmnew. 0640: it may name output paths and credentials of sinks.
		{Source: configSrc, Destination: install.DefaultConfigPath, Type: files.TypeConfigNoReplace, FileInfo: root(0o640)},
		// The documentation where each format looks for it: rpm marks %doc and %license
		// (nfpm leaves a doc-typed file out of a .deb), Debian wants the licence as copyright.
		{Source: filepath.Join(b.repo, "README.md"), Destination: "/usr/share/doc/vigil/README.md", Packager: "deb", FileInfo: root(0o644)},
		{Source: filepath.Join(b.repo, "README.md"), Destination: "/usr/share/doc/vigil/README.md", Packager: "rpm", Type: files.TypeRPMDoc, FileInfo: root(0o644)},
		{Source: filepath.Join(b.repo, "LICENSE"), Destination: "/usr/share/doc/vigil/copyright", Packager: "deb", FileInfo: root(0o644)},
		{Source: filepath.Join(b.repo, "LICENSE"), Destination: "/usr/share/licenses/vigil/LICENSE", Packager: "rpm", Type: files.TypeRPMLicense, FileInfo: root(0o644)},
	}
	var s nfpm.Scripts
	for _, sc := range []struct {
		name string
		dst  *string
	}{{"postinstall", &s.PostInstall}, {"preremove", &s.PreRemove}, {"postremove", &s.PostRemove}} {
		body, err := scripts.ReadFile("scripts/" + sc.name)
		if err != nil {
			return nil, fmt.Errorf("read the %s script: %w", sc.name, err)
		}
		if *sc.dst, err = b.stage(filepath.Join("scripts", sc.name), body); err != nil {
			return nil, err
		}
	}
	return &nfpm.Info{
		Name:          "vigil",
		Arch:          arch,
		Platform:      "linux",
		Version:       b.version,
		VersionSchema: "none", // packageVersion already made it what both formats accept
		Section:       "admin",
		Maintainer:    b.maintainer,
		Description:   description,
		Vendor:        "Vigil",
		Homepage:      homepage,
		License:       "MIT",
		Overridables: nfpm.Overridables{
			Contents: contents,
			Scripts:  s,
			// xz: the binary is most of the package and shrinks to about a quarter; every
			// dpkg and rpm in support reads it.
			Deb: nfpm.Deb{Compression: "xz"},
			RPM: nfpm.RPM{Compression: "xz", Summary: strings.SplitN(description, "\n", 2)[0], Packager: b.maintainer},
		},
	}, nil
}
