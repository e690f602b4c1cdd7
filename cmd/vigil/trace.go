package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/vigil-sensor/vigil/correlate/workflow"
	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/proto/compact"
	"github.com/vigil-sensor/vigil/proto/ocsf"
	"github.com/vigil-sensor/vigil/sensor"
)

// gitTimeout bounds one repository lookup.
const gitTimeout = 2 * time.Second

// traceCommand is `vigil trace`: the workflow records of the sessions in a JSONL file.
func traceCommand(args []string) error {
	return runTrace(args, os.Stdin, os.Stdout, os.Stderr, gitRemoteURL)
}

// runTrace reads the JSONL named by --jsonl (- for in), builds the workflows and writes them to
// out as text or indented JSON. Lines that do not decode are skipped, counted and reported on
// errOut at the end; they do not fail the command. repoOf looks the repository of a working
// directory up.
func runTrace(args []string, in io.Reader, out, errOut io.Writer, repoOf func(string) string) error {
	fs := flag.NewFlagSet("trace", flag.ContinueOnError)
	fs.SetOutput(errOut)
	jsonlPath := fs.String("jsonl", "", "JSONL file written by vigil run (- for stdin); rotated files (PATH.1, ...) are read only when named")
	untrustedPath := fs.String("untrusted", "", "also read this file of untrusted telemetry (output.untrusted_jsonl, where vigil run writes it apart)")
	floodsPath := fs.String("floods", "", "also read this file of flood lines (output.flood_jsonl: what agent trees wrote past output.tree_lines_per_minute)")
	session := fs.String("session", "", "only this session (gen_ai.conversation.id, or a unique prefix of it)")
	format := fs.String("format", "text", "output format: text or json")
	fs.Usage = func() {
		fmt.Fprintln(errOut, "Usage: vigil trace --jsonl PATH [--untrusted PATH] [--floods PATH] [--session ID] [--format text|json]")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("trace: unexpected argument %q", fs.Arg(0))}
	}
	if *jsonlPath == "" {
		return usageError{errors.New("trace: --jsonl PATH is required")}
	}
	if *format != "text" && *format != "json" {
		return fmt.Errorf("trace: --format %q: want text or json", *format)
	}

	r := in
	if *jsonlPath != "-" {
		f, err := os.Open(*jsonlPath)
		if err != nil {
			return fmt.Errorf("trace: %w", err)
		}
		defer f.Close()
		r = f
	}
	events, bad, err := readTraceEvents(r)
	if err != nil {
		return fmt.Errorf("trace: read %s: %w", *jsonlPath, err)
	}
	// The files vigil run writes apart from the events: each is read alone (a compact line's
	// context is in its own file).
	apart := []string{*untrustedPath, *floodsPath}
	apartBad := make([]traceBadLines, len(apart))
	for i, path := range apart {
		if path == "" {
			continue
		}
		more, b, err := readTraceFile(path)
		if err != nil {
			return err
		}
		events, apartBad[i] = append(events, more...), b
	}
	opts := workflow.Options{SessionID: *session, RepoOf: repoOf, MaxProcesses: traceMaxProcesses}
	wfs, stats := workflow.BuildStats(events, opts)

	var (
		alerts   []workflowAlerts
		unplaced int
	)
	bw := bufio.NewWriter(out)
	switch *format {
	case "json":
		enc := json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if wfs == nil {
			wfs = []workflow.Workflow{}
		}
		if err := enc.Encode(wfs); err != nil {
			return fmt.Errorf("trace: encode: %w", err)
		}
	default:
		alerts, unplaced = placeAlerts(wfs, alertsOf(events))
		for i, w := range wfs {
			if i > 0 {
				bw.WriteString("\n")
			}
			if err := writeWorkflowText(bw, w, alerts[i]); err != nil {
				return fmt.Errorf("trace: write: %w", err)
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("trace: write: %w", err)
	}
	bad.report(errOut, *jsonlPath)
	for i, path := range apart {
		apartBad[i].report(errOut, path)
	}
	if n := stats.ProcessesForgotten; n > 0 {
		fmt.Fprintf(errOut, "vigil trace: %d processes were forgotten to follow at most %d at once; the start-up reads they made after that are listed file by file\n",
			n, traceMaxProcesses)
	}
	if unplaced > 0 && *session == "" {
		verb := "names"
		if unplaced > 1 {
			verb = "name"
		}
		fmt.Fprintf(errOut, "vigil trace: %s %s no session, tool call or agent tree in %s; not shown\n", plural(unplaced, "alert"), verb, *jsonlPath)
	}
	if len(wfs) == 0 {
		if *session != "" {
			return fmt.Errorf("trace: no session matching %q in %s", *session, *jsonlPath)
		}
		if *format == "text" {
			fmt.Fprintf(errOut, "vigil trace: no agent activity in %s\n", *jsonlPath)
		}
	}
	return nil
}

// traceBadLines counts the lines that did not decode and remembers the first.
type traceBadLines struct {
	n         int
	firstLine int
	firstErr  error
}

func (b *traceBadLines) add(line int, err error) {
	if b.n == 0 {
		b.firstLine, b.firstErr = line, err
	}
	b.n++
}

func (b traceBadLines) report(w io.Writer, path string) {
	if b.n == 0 {
		return
	}
	noun := "lines"
	if b.n == 1 {
		noun = "line"
	}
	fmt.Fprintf(w, "vigil trace: skipped %d malformed %s in %s (first: line %d: %v)\n", b.n, noun, path, b.firstLine, b.firstErr)
}

// readTraceFile reads the events of the file at path.
func readTraceFile(path string) ([]*proto.Event, traceBadLines, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, traceBadLines{}, fmt.Errorf("trace: %w", err)
	}
	defer f.Close()
	events, bad, err := readTraceEvents(f)
	if err != nil {
		return nil, bad, fmt.Errorf("trace: read %s: %w", path, err)
	}
	return events, bad, nil
}

// readTraceEvents decodes one proto.Event per line; blank lines and the seal lines of a signed
// file (dataset vigil.integrity) are ignored, lines that do not decode are counted. Lines of
// any length are read (vigil run writes them under 60 KiB). An OCSF line (output.format ocsf)
// is an error: a file of them would read as no activity at all.
func readTraceEvents(r io.Reader) ([]*proto.Event, traceBadLines, error) {
	var (
		events []*proto.Event
		bad    traceBadLines
	)
	restorer := compact.NewRestorer(0)
	br := bufio.NewReaderSize(r, 64<<10)
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(b)) > 0 {
			if err := ocsf.CheckNative(b); err != nil {
				return events, bad, fmt.Errorf("line %d: %w", line, err)
			}
			var e proto.Event
			if uerr := proto.UnmarshalJSON(b, &e); uerr != nil {
				bad.add(line, uerr)
			} else if rerr := restorer.Restore(&e); rerr != nil {
				bad.add(line, rerr) // a compact line cut from its context: not guessed
			} else if e.Event.Dataset != proto.DatasetIntegrity {
				events = append(events, &e)
			}
		}
		if errors.Is(err, io.EOF) {
			return events, bad, nil
		}
		if err != nil {
			return events, bad, err
		}
	}
}

// gitRemoteURL is the remote.origin.url of the repository holding dir, with any credentials in
// the URL redacted; "" when dir is not in a repository, has no origin, or git is missing or
// slower than gitTimeout. It reads the repository on this machine at that path, which is the
// agent's when vigil trace runs where the sensor ran.
//
// safe.directory=* lets root (who runs the sensor, and often trace) read a repository the
// developer owns: without it git refuses any repository of another owner. Only `config
// --get` runs, which reads config files and executes nothing from the repository.
func gitRemoteURL(dir string) string {
	ctx, cancel := context.WithTimeout(context.Background(), gitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", "-c", "safe.directory=*", "-C", dir, "config", "--get", "remote.origin.url")
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	b, err := cmd.Output()
	if err != nil {
		return ""
	}
	return sensor.RedactString(strings.TrimSpace(string(b)))
}
