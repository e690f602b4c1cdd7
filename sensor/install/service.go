package install

import (
	"bytes"
	"embed"
	"fmt"
	"os"
	"text/template"

	"github.com/vigil-sensor/vigil/sensor"
)

//go:embed files
var files embed.FS

// Where the service definitions go.
const (
	// SystemdUnitPath is the unit's path: the package manager's place for units, so that a
	// package shipping the same file and `vigil install` agree.
	SystemdUnitPath = "/usr/lib/systemd/system/vigil.service"
	// LaunchDaemonPath is the launchd daemon's path on macOS.
	LaunchDaemonPath = "/Library/LaunchDaemons/com.vigil-sensor.vigil.plist"
	// DefaultBinary is where a manual install copies the executable; packages use /usr/bin.
	DefaultBinary = "/usr/local/bin/vigil"
	// DefaultConfigPath is the configuration `vigil run` reads when it exists.
	DefaultConfigPath = "/etc/vigil/vigil.yaml"
)

// ServiceFile returns the service definition for goos (the systemd unit or the launchd
// plist) running binary, and the path it goes to.
func ServiceFile(goos, binary string) (path string, content []byte, err error) {
	name, path := "files/vigil.service", SystemdUnitPath
	if goos == "darwin" {
		name, path = "files/com.vigil-sensor.vigil.plist", LaunchDaemonPath
	}
	t, err := template.ParseFS(files, name)
	if err != nil {
		return "", nil, fmt.Errorf("parse %s: %w", name, err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, struct{ Binary string }{binary}); err != nil {
		return "", nil, fmt.Errorf("render %s: %w", name, err)
	}
	return path, buf.Bytes(), nil
}

func planService(o Options, r *Result) error {
	path, content, err := ServiceFile(o.GOOS, o.Binary)
	if err != nil {
		return err
	}
	before, mode, err := readExisting(o.Root, path)
	if err != nil {
		return err
	}
	if !changed(before, content) {
		return nil
	}
	if before == nil {
		mode = 0o644 // systemd and launchd want root's 0644
	}
	why := "the systemd service (systemctl enable --now vigil starts it)"
	if o.GOOS == "darwin" {
		why = "the launchd daemon (launchctl bootstrap system " + LaunchDaemonPath + " starts it)"
	}
	r.Changes = append(r.Changes, Change{Path: path, Mode: mode, Before: before, After: content, Why: why})
	return nil
}

// planConfig writes the documented defaults (sensor/default.yaml) when there is no
// configuration file; an existing one is the admin's and is left alone.
func planConfig(o Options, r *Result) error {
	before, _, err := readExisting(o.Root, o.ConfigPath)
	if err != nil {
		return err
	}
	if before != nil {
		return nil
	}
	r.Changes = append(r.Changes, Change{Path: o.ConfigPath, Mode: 0o640, After: sensor.DefaultYAML(),
		Why: "the sensor's configuration: the embedded defaults, commented"})
	return nil
}

// planBinary copies the running executable to o.Binary when that differs.
func planBinary(o Options, r *Result) error {
	if o.Executable == "" {
		return nil
	}
	exe, err := os.ReadFile(o.Executable)
	if err != nil {
		return fmt.Errorf("read the running executable: %w", err)
	}
	before, _, err := readExisting(o.Root, o.Binary)
	if err != nil {
		return err
	}
	if !changed(before, exe) {
		return nil
	}
	r.Changes = append(r.Changes, Change{Path: o.Binary, Mode: 0o755, Before: before, After: exe, Executable: true,
		Why: "the vigil executable the service and the agents' hooks run"})
	return nil
}
