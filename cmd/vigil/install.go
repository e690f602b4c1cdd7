package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vigil-sensor/vigil/sensor/install"
)

const installUsage = `Usage: vigil install [--root DIR] [--dry-run] [--binary PATH] [--config FILE] [--goos OS]
  Install the sensor and point every agent on this machine at it (as root):
    - the executable at --binary (a copy of this one when they differ);
    - ` + install.DefaultConfigPath + `, the documented defaults, when absent;
    - the service: on Linux ` + install.SystemdUnitPath + ` (hardened), on macOS
      ` + install.LaunchDaemonPath + `;
    - each agent's managed configuration, merged with what is there (an admin's values are
      kept and reported, never overwritten): Claude Code's managed-settings.d drop-in (OTLP
      and hooks), Codex's /etc/codex/config.toml [otel] and hooks.json, Gemini CLI's system
      settings (telemetry and hooks), Cursor's enterprise hooks.json.
  With output.sign on, each JSONL file's signing key is made under output.sign_key_dir when
  absent, and its pin printed: keep it off this machine to verify with (vigil verify --help).
  The originals are kept under ` + install.StateDir + `; vigil uninstall restores them. Installing
  twice changes nothing the second time. The service is not started: systemctl enable --now
  vigil (Linux), launchctl bootstrap system ` + install.LaunchDaemonPath + ` (macOS); packages do it.
`

const uninstallUsage = `Usage: vigil uninstall [--root DIR]
  Undo vigil install: every file it changed gets its original content back, byte for byte,
  and what it created is removed. A file changed since the install loses only Vigil's
  entries; Vigil's own files changed since (a customised vigil.yaml) are kept, and so are the
  signing keys (output.sign_key_dir): the logs they signed outlive the install, and a
  reinstall continues their chains. Running it with nothing installed does nothing. Stop
  the service first.
`

func installCommand(args []string) error {
	return runInstall(args, os.Stdout, os.Stderr)
}

func runInstall(args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("install", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.Usage = func() { fmt.Fprint(errOut, installUsage); fs.PrintDefaults() }
	root := fs.String("root", "/", "lay everything under this directory (image builds, tests)")
	dryRun := fs.Bool("dry-run", false, "print what would change, as diffs, and change nothing")
	binary := fs.String("binary", install.DefaultBinary, "where the vigil executable is installed (packages: /usr/bin/vigil)")
	configPath := fs.String("config", "", "the sensor configuration the agents are pointed at (default: "+install.DefaultConfigPath+" under --root when it exists, else the embedded defaults)")
	goos := fs.String("goos", runtime.GOOS, "whose layout to install: linux or darwin")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("install: unexpected argument %q", fs.Arg(0))}
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("install: find the running executable: %w", err)
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return fmt.Errorf("install: resolve the running executable: %w", err)
	}
	cfg, _, err := loadConfig(*configPath, *root)
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	o := install.Options{Root: *root, GOOS: *goos, Binary: *binary, Executable: exe, Config: cfg, ConfigPath: install.DefaultConfigPath}
	if *dryRun {
		r, err := install.Plan(o)
		if err != nil {
			return err
		}
		return r.Render(out)
	}
	r, err := install.Install(o)
	if err != nil {
		return err
	}
	for _, c := range r.Changes {
		verb := "modified"
		if c.Before == nil {
			verb = "created"
		}
		fmt.Fprintf(out, "%s %s: %s\n", verb, c.Path, c.Why)
	}
	if r.NothingChanged() {
		fmt.Fprintln(out, "nothing to change: Vigil is installed as configured")
	}
	for _, k := range r.Kept {
		fmt.Fprintln(out, "kept:", k)
	}
	for _, s := range r.Skipped {
		fmt.Fprintln(out, "skipped:", s)
	}
	for _, k := range r.SignKeys {
		fmt.Fprintln(out, k)
	}
	return nil
}

func uninstallCommand(args []string) error {
	return runUninstall(args, os.Stdout, os.Stderr)
}

func runUninstall(args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("uninstall", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.Usage = func() { fmt.Fprint(errOut, uninstallUsage); fs.PrintDefaults() }
	root := fs.String("root", "/", "the directory vigil install --root laid everything under")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("uninstall: unexpected argument %q", fs.Arg(0))}
	}
	r, err := install.Uninstall(*root)
	for _, p := range r.Restored {
		fmt.Fprintln(out, "restored", p)
	}
	for _, p := range r.Removed {
		fmt.Fprintln(out, "removed", p)
	}
	for _, p := range r.Edited {
		fmt.Fprintln(out, "took Vigil's entries out of", p)
	}
	for _, p := range r.Left {
		fmt.Fprintln(out, "left", p)
	}
	for _, d := range r.Dirs {
		fmt.Fprintln(out, "removed", d)
	}
	if err == nil && len(r.Restored)+len(r.Removed)+len(r.Edited)+len(r.Left) == 0 {
		fmt.Fprintln(out, "nothing to uninstall")
	}
	return err
}
