package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
	"github.com/vigil-sensor/vigil/sensor/inventory"
)

// inventoryCommand prints the host's inventory: agents installed, whether their telemetry
// and hooks point at this sensor, and their MCP servers (sensor/inventory). It reads agents'
// files only, and updates the first-seen state when it may.
func inventoryCommand(args []string) error {
	return runInventory(args, os.Stdout, os.Stderr)
}

func runInventory(args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("inventory", flag.ContinueOnError)
	fs.SetOutput(errOut)
	root := fs.String("root", "/", "read the host under this directory (a mounted image, a test fixture)")
	format := fs.String("format", "table", "output format: table or json")
	configPath := fs.String("config", "", "sensor configuration whose OTLP receivers count as Vigil (default: "+defaultConfigPath+" when it exists)")
	fs.Usage = func() {
		fmt.Fprint(errOut, `Usage: vigil inventory [--root DIR] [--format table|json] [--config FILE]
  For every user: the agents installed (versions read from files, nothing is run), whether
  each agent's telemetry and hooks point at this sensor at each level (managed, user,
  project), and the MCP servers each is configured with (environment and header values are
  never shown). Files it cannot use are listed as errors. docs/inventory.md has the JSON.
`)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *format != "table" && *format != "json" {
		return usageError{fmt.Errorf("inventory: want only --root DIR, --format table|json and --config FILE, got %q", strings.Join(args, " "))}
	}
	cfg, _, err := loadConfig(*configPath, *root)
	if err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	report, stateErr := inventory.Scan(inventory.Options{Root: *root, Config: cfg})
	if stateErr != nil {
		// The report is whole; only the first-seen times may be off (e.g. not root).
		fmt.Fprintln(errOut, "vigil: inventory: warning:", stateErr)
	}
	if *format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(report); err != nil {
			return fmt.Errorf("inventory: write json: %w", err)
		}
		return nil
	}
	if err := writeInventoryTable(out, report); err != nil {
		return fmt.Errorf("inventory: write: %w", err)
	}
	return nil
}

// writeInventoryTable prints the report as four tables an admin reads top to bottom.
func writeInventoryTable(out io.Writer, r *inventory.Report) error {
	tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
	var users []string
	for _, u := range r.Users {
		users = append(users, fmt.Sprintf("%s (%d, %s)", u.Name, u.UID, u.Home))
	}
	fmt.Fprintf(tw, "Scanned %s; users: %s\n\n", r.Scanned.Format(time.RFC3339), orDash(users))

	fmt.Fprintln(tw, "AGENT\tUSER\tVERSION\tPATH\tINSTALLED AT\tFIRST SEEN")
	for _, i := range r.Installs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", i.Agent, dash(i.User), dash(i.Version), i.Path, dash(i.InstallPath), i.FirstSeen)
	}
	fmt.Fprintln(tw, "\nAGENT\tLEVEL\tUSER\tCONFIG\tTELEMETRY\tHOOKS (VIGIL'S)")
	for _, c := range r.Configs {
		level := c.Level
		if c.Project != "" {
			level += " " + c.Project
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Agent, level, dash(c.User), c.Path, telemetryCell(c.Telemetry), hooksCell(c))
	}
	fmt.Fprintln(tw, "\nAGENT\tLEVEL\tUSER\tMCP SERVER\tTRANSPORT\tCOMMAND OR URL\tENV AND HEADER NAMES\tFIRST SEEN")
	for _, m := range r.MCPServers {
		target := m.URL
		if m.Transport == "stdio" || m.Command != "" {
			target = strings.Join(append([]string{m.Command}, m.Args...), " ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Agent, m.Level, dash(m.User), m.Name, m.Transport, dash(target),
			orDash(slices.Concat(m.EnvKeys, m.HeaderKeys)), m.FirstSeen)
	}
	if len(r.Errors) > 0 {
		fmt.Fprintln(tw, "\nUNREAD FILE\tWHY")
		for _, e := range r.Errors {
			fmt.Fprintf(tw, "%s\t%s\n", e.Path, e.Error)
		}
	}
	return tw.Flush()
}

// telemetryCell says where a file sends the agent's telemetry, in a few words.
func telemetryCell(t *proto.InventoryTelemetry) string {
	switch {
	case t == nil:
		return "-"
	case t.PointsAtVigil:
		return "→ Vigil (" + t.Endpoint + ")"
	case t.Configured:
		return "on, elsewhere: " + dash(t.Endpoint) + " (" + t.Note + ")"
	case t.Note != "":
		return "off (" + t.Note + ")"
	}
	return "off"
}

// hooksCell says how many of a file's hook events run Vigil's hook and names the others, or
// Vigil's plugin.
func hooksCell(c proto.InventoryConfig) string {
	switch {
	case c.Plugin != nil && c.Plugin.Current:
		return "Vigil's plugin: " + c.Plugin.Path
	case c.Plugin != nil:
		return "Vigil's plugin, not this version's: " + c.Plugin.Path
	case c.Hooks == nil:
		return "-"
	case len(c.Hooks.Events) == 0:
		return "none"
	}
	cell := fmt.Sprintf("Vigil's on %d of %d events", len(c.Hooks.VigilEvents), len(c.Hooks.Events))
	var others []string
	for _, ev := range c.Hooks.Events {
		if !slices.Contains(c.Hooks.VigilEvents, ev) {
			others = append(others, ev)
		}
	}
	if len(others) > 0 {
		cell += " (not " + strings.Join(others, ", ") + ")"
	}
	return cell
}

// dash returns s, or "-" for an empty value.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// inventoryScans runs the inventory at once and then every interval until ctx ends, on its
// own goroutine (a scan reads many files), handing each scan's lines to the pipeline.
func inventoryScans(ctx context.Context, cfg sensor.Config, interval time.Duration, records chan<- []*proto.Event, log zerolog.Logger) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		report, err := inventory.Scan(inventory.Options{Config: cfg})
		if err != nil {
			log.Error().Err(err).Msg("inventory first-seen state")
		}
		log.Info().Int("installs", len(report.Installs)).Int("configs", len(report.Configs)).Int("mcp_servers", len(report.MCPServers)).
			Int("unread", len(report.Errors)).Msg("inventory scanned")
		select {
		case records <- inventory.Records(report):
		case <-ctx.Done():
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}
