package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"

	"github.com/vigil-sensor/vigil/sensor"
	"github.com/vigil-sensor/vigil/sensor/agents"
)

// agentsCommand prints the agents registry and what this host has of each agent: its installed
// executables (the catalog's install paths that exist) and its managed configuration files
// (where a fleet sets the agent's telemetry and hooks). It reads, never writes.
func agentsCommand(args []string) error {
	return runAgents(args, os.Stdout, os.Stderr, os.Stat)
}

// agentInventory is one agent as `vigil agents` reports it.
type agentInventory struct {
	Name         string          `json:"name"`
	Binaries     []string        `json:"binaries,omitempty"`
	Scripts      []string        `json:"scripts,omitempty"`
	Env          []agentEnvKey   `json:"env,omitempty"`
	ServiceNames []string        `json:"service_names,omitempty"`
	HookNames    []string        `json:"hook_names,omitempty"`
	Installed    []string        `json:"installed,omitempty"`
	Managed      []managedConfig `json:"managed,omitempty"`
}

type agentEnvKey struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

type managedConfig struct {
	Path    string `json:"path"`
	What    string `json:"what"`
	Present bool   `json:"present"`
}

func runAgents(args []string, out, errOut io.Writer, stat func(string) (os.FileInfo, error)) error {
	fs := flag.NewFlagSet("agents", flag.ContinueOnError)
	fs.SetOutput(errOut)
	format := fs.String("format", "text", "output format: text or json")
	fs.Usage = func() {
		fmt.Fprint(errOut, `Usage: vigil agents [--format text|json]
  The agents Vigil knows (sensor/agents), with what this host has of each: installed
  executables and the managed configuration files for this OS (present or not).
`)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *format != "text" && *format != "json" {
		return usageError{fmt.Errorf("agents: want only --format text|json, got %q", strings.Join(args, " "))}
	}
	installed := map[string][]string{}
	for _, id := range sensor.DefaultCatalog().ResolvePaths() {
		installed[id.Agent] = append(installed[id.Agent], id.Path)
	}
	var inv []agentInventory
	for _, a := range agents.All() {
		row := agentInventory{Name: a.Name, Binaries: a.Binaries, Scripts: a.Scripts, ServiceNames: a.ServiceNames,
			HookNames: a.HookNames, Installed: installed[a.Name]}
		for _, k := range a.Env {
			row.Env = append(row.Env, agentEnvKey{Name: k.Name, Role: string(k.Role)})
		}
		for _, c := range a.Managed {
			if c.GOOS != runtime.GOOS {
				continue
			}
			_, err := stat(c.Path)
			row.Managed = append(row.Managed, managedConfig{Path: c.Path, What: c.What, Present: err == nil})
		}
		inv = append(inv, row)
	}
	if *format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(inv); err != nil {
			return fmt.Errorf("agents: write json: %w", err)
		}
		return nil
	}
	tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "AGENT\tENVIRONMENT KEYS\tOTLP SERVICE\tHOOK NAME\tINSTALLED\tMANAGED CONFIG")
	for _, r := range inv {
		var env, managed []string
		for _, k := range r.Env {
			env = append(env, k.Name+"("+k.Role+")")
		}
		for _, m := range r.Managed {
			state := "absent"
			if m.Present {
				state = "present"
			}
			managed = append(managed, m.Path+" ("+state+")")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, orDash(env), orDash(r.ServiceNames), orDash(r.HookNames[:min(1, len(r.HookNames))]),
			orDash(r.Installed), orDash(managed))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("agents: write: %w", err)
	}
	return nil
}

// orDash joins values with ", ", "-" for none.
func orDash(values []string) string {
	if len(values) == 0 {
		return "-"
	}
	return strings.Join(values, ", ")
}
