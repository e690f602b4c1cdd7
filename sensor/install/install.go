// Package install lays Vigil onto a host and takes it off again: the sensor's configuration
// file, its service (a systemd unit on Linux, a launchd daemon on macOS), the executable, and
// each agent's managed configuration pointed at the sensor. A fleet pushes one package and
// every agent on the machine sends its telemetry and hook calls to Vigil without any user
// exporting a variable.
//
// Agents' files are merged, never overwritten: Vigil adds only keys an admin has not set
// (a different value already there is kept and reported) and its own hook entries beside
// the admin's. Before it changes a file it keeps the original, so Uninstall puts every file
// back byte for byte; a file changed again since the install loses only what Vigil added.
package install

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/vigil-sensor/vigil/sensor"
)

// Options say where and what to install.
type Options struct {
	// Root is the directory every path is laid under: "" or "/" is the host; tests and image
	// builds give a scratch directory.
	Root string
	// GOOS picks the paths and the service: "linux" or "darwin".
	GOOS string
	// Binary is where the vigil executable lives once installed: the service and the agents'
	// hooks run it.
	Binary string
	// Executable is the running vigil, copied to Binary when their contents differ; "" copies
	// nothing (a package has already put the executable at Binary).
	Executable string
	// Config is the sensor configuration the agents are pointed at (its OTLP receiver and
	// hook socket).
	Config sensor.Config
	// ConfigPath is where the sensor's configuration file goes, written from the embedded
	// defaults only when absent.
	ConfigPath string
}

// Result is what Install did or, for a dry run, would do.
type Result struct {
	Changes []Change
	// Kept are an admin's settings Vigil left as they were although they differ from what it
	// would set (another OTLP endpoint, say): the agent may then not report to Vigil, which
	// `vigil inventory` shows.
	Kept []string
	// Skipped are files Vigil could not merge (not valid JSON or TOML); they are untouched.
	Skipped []string
	// SignKeys are the JSONL outputs' signing keys when output.sign is on.
	SignKeys []SignKey
}

// Plan computes the changes Install would make, reading the files under o.Root but writing
// nothing.
func Plan(o Options) (Result, error) {
	if o.GOOS != "linux" && o.GOOS != "darwin" {
		return Result{}, fmt.Errorf("install: no service layout for %q (linux and darwin have one)", o.GOOS)
	}
	if o.Root != "" {
		if st, err := os.Stat(o.Root); err != nil || !st.IsDir() {
			return Result{}, fmt.Errorf("install: the root %q is not a directory (%v)", o.Root, err)
		}
	}
	if !filepath.IsAbs(o.Binary) {
		return Result{}, fmt.Errorf("install: the binary path %q is not absolute", o.Binary)
	}
	var r Result
	steps := []func(Options, *Result) error{planBinary, planConfig, planService, planAgents, planSignKeys}
	for _, step := range steps {
		if err := step(o, &r); err != nil {
			return Result{}, err
		}
	}
	return r, nil
}

// Install applies Plan: each file's original is kept in the install state (under
// StateDir) before the file is written, so Uninstall can restore it.
func Install(o Options) (Result, error) {
	r, err := Plan(o)
	if err != nil {
		return Result{}, err
	}
	if len(r.Changes) > 0 {
		m, err := loadManifest(o.Root)
		if err != nil {
			return Result{}, err
		}
		for _, c := range r.Changes {
			if err := m.apply(o.Root, c); err != nil {
				return Result{}, fmt.Errorf("install %s: %w", c.Path, err)
			}
		}
	}
	// After the files: their parents (/var/lib/vigil) are then made, and recorded, by the
	// manifest.
	if err := makeSignKeys(o, &r); err != nil {
		return Result{}, err
	}
	return r, nil
}

// hostPath is path under root.
func hostPath(root, path string) string {
	if root == "" {
		return path
	}
	return filepath.Join(root, path)
}

// readExisting returns the file's bytes and mode, or nil and 0 when it does not exist.
func readExisting(root, path string) ([]byte, fs.FileMode, error) {
	p := hostPath(root, path)
	st, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("stat %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("%s is not a regular file (%s)", path, st.Mode().Type())
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", path, err)
	}
	if b == nil {
		b = []byte{} // present and empty, unlike absent
	}
	return b, st.Mode().Perm(), nil
}
