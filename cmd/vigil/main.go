// Command vigil is the Vigil sensor: one binary that wires a platform source, the sensor
// core and the sinks together.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

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
  vigil version
`

// usageError is a mistake on the command line (exit status 2), as opposed to a failure while
// running the command (1).
type usageError struct{ error }

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
	case "inventory":
		err = inventoryCommand(os.Args[2:])
	case selfCheckCommand:
		err = selfCheckCanaryCommand(os.Args[2:])
	case "version", "--version":
		fmt.Println("vigil", version)
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "vigil: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if errors.Is(err, flag.ErrHelp) {
		return // the command printed its usage, as asked
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vigil:", err)
		if errors.As(err, new(usageError)) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
