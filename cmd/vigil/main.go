// Command vigil is the Vigil sensor: one binary that wires a platform source, the sensor
// core and the sinks together.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
)

// version and commit are set at build time with -ldflags "-X main.version=... -X
// main.commit=..." (the Makefile does); without them the commit comes from Go's VCS stamp.
var version, commit = "dev", ""

// versionCommand prints the version, the commit it was built from (-dirty: with uncommitted
// changes), the Go release and the platform: what an admin quotes in a bug report, and what
// tells two fleets' builds apart.
func versionCommand(args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: vigil version\n  Print the version, commit, Go release and platform.")
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("version: unexpected argument %q", fs.Arg(0))}
	}
	built := commit
	if info, ok := debug.ReadBuildInfo(); ok && built == "" {
		for _, s := range info.Settings {
			switch {
			case s.Key == "vcs.revision":
				built += s.Value
			case s.Key == "vcs.modified" && s.Value == "true":
				built += "-dirty"
			}
		}
	}
	if built == "" {
		built = "unknown"
	}
	fmt.Printf("vigil %s (commit %s, %s, %s/%s)\n", version, built, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

const usage = `vigil — endpoint sensor for AI coding agents

Usage:
  vigil run [--config FILE] [--jsonl PATH] [--log-level LEVEL]
      Start the sensor (as root). Without --config it uses /etc/vigil/vigil.yaml when that
      file exists, else the embedded default configuration.
  vigil hook [--agent NAME] [--socket PATH]
      Forward one agent hook call (its JSON on stdin) to the running sensor. Always exits 0
      and never writes to stdout, so it cannot block or steer the agent. NAME is a hook name
      of vigil agents (claude-code, codex, gemini-cli, cursor); without it the payload decides.
  vigil agents [--format text|json]
      List the agents Vigil knows: binaries, environment join keys and their roles, OTLP
      service and hook names, and what this host has (installed executables, managed config).
  vigil inventory [--root DIR] [--format table|json] [--config FILE]
      For every user: the agents installed and their versions, whether each agent's
      telemetry and hooks point at this sensor (managed, user, project), its MCP servers.
  vigil trace --jsonl PATH [--untrusted PATH] [--session ID] [--format text|json]
      Print the workflow record of each session in a JSONL file: the user's requests, each
      tool call with what the kernel saw it do, approvals, and what nothing explains.
  vigil rules list|lint|test …
      List, lint or try detection rules (vigil rules --help).
  vigil query [--db PATH | --jsonl FILE ...] [--format table|json|csv] SQL
      Run one read-only SQL statement on the store vigil run writes (output.store), or on
      JSONL files loaded into a store in memory (--jsonl, - for stdin).
  vigil install [--root DIR] [--dry-run] [--binary PATH]
      Install the sensor, its service and each agent's managed configuration pointed at it
      (merged, never overwriting an admin's settings; vigil install --help).
  vigil verify [--key FILE | --pubkey BASE64] FILE...
      Check signed JSONL files (output.sign), oldest first: exit 0 intact, 1 naming the first
      line edited, deleted, reordered or inserted, 3 intact but with lines no seal covers yet
      (vigil verify --help).
  vigil uninstall [--root DIR]
      Put back every file vigil install changed, byte for byte.
  vigil status [--metrics URL] [--config FILE] [--max-lost N] [--format text|json]
      Print the running sensor's health from its metrics endpoint (metrics.listen): source,
      uptime, self-check, loss, newest event per kind, telemetry per agent, silent agents.
      Exit 0 healthy; 1 unreachable, self-check failed, an agent silent, or (with
      --max-lost N) more than N events lost since start (vigil status --help).
  vigil version
`

// usageError is a mistake on the command line (exit status 2), as opposed to a failure while
// running the command (1).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// printedError is an error already printed, with the command's usage by the flag package or
// in the command's own report (vigil verify): main does not print it a second time.
type printedError struct{ error }

func (e printedError) Unwrap() error { return e.error }

// parseFlags parses a command's flags: --help is flag.ErrHelp (the usage printed, exit 0),
// and a mistake, which the flag package has printed with the usage, exits 2 without being
// printed again.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return usageError{printedError{err}}
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = runCommand(os.Args[2:])
	case "hook":
		err = hookCommand(os.Args[2:])
	case "trace":
		err = traceCommand(os.Args[2:])
	case "rules":
		err = rulesCommand(os.Args[2:])
	case "query":
		err = queryCommand(os.Args[2:])
	case "agents":
		err = agentsCommand(os.Args[2:])
	case "install":
		err = installCommand(os.Args[2:])
	case "uninstall":
		err = uninstallCommand(os.Args[2:])
	case "status":
		err = statusCommand(os.Args[2:])
	case "verify":
		err = verifyCommand(os.Args[2:])
	case "inventory":
		err = inventoryCommand(os.Args[2:])
	case selfCheckCommand:
		err = selfCheckCanaryCommand(os.Args[2:])
	case "version", "--version":
		err = versionCommand(os.Args[2:])
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "vigil: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) && !errors.As(err, new(printedError)) {
		fmt.Fprintln(os.Stderr, "vigil:", err)
	}
	os.Exit(exitStatus(err))
}

// exitStatus is a command's exit status: 0 when it succeeded or printed its usage as asked
// (--help), 2 for a mistake on the command line, 3 for files vigil verify found intact but
// not all sealed, 1 for any other failure.
func exitStatus(err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(usageError)):
		return 2
	case errors.As(err, new(errNotSealed)):
		return 3
	}
	return 1
}
