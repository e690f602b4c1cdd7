package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/correlate/rules"
	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
)

const rulesUsage = `Usage:
  vigil rules list [--rules-dir DIR] [--reference]
      The rules a sensor would run: the embedded starter pack laid under the files of DIR
      (default: detections.rules_dir of the default configuration). --reference also prints
      the variables, fields and functions a condition can use.
  vigil rules lint FILE...
      Parse and compile rule files strictly; prints FILE:LINE: rule ID: problem for each
      problem and exits 1 if there is any.
  vigil rules test [FILE...] --jsonl EVENTS.jsonl [--rules-dir DIR]
      Run rules over the lines of a JSONL file written by vigil run, in file order, and print
      the alerts they raise as JSONL (event.sequence 0: no sensor numbered them). With FILEs,
      only their rules; without, what list shows.
`

// rulesCommand is `vigil rules`.
func rulesCommand(args []string) error {
	return runRules(args, os.Stdout, os.Stderr)
}

func runRules(args []string, out, errOut io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(errOut, rulesUsage)
		return usageError{errors.New("rules: want list, lint or test")}
	}
	switch args[0] {
	case "list":
		return rulesList(args[1:], out, errOut)
	case "lint":
		return rulesLint(args[1:], out, errOut)
	case "test":
		return rulesTest(args[1:], out, errOut)
	case "help", "-h", "--help":
		fmt.Fprint(out, rulesUsage)
		return nil
	}
	fmt.Fprint(errOut, rulesUsage)
	return usageError{fmt.Errorf("rules: unknown subcommand %q", args[0])}
}

// parseInterspersed parses flags given anywhere among the arguments (vigil rules test FILE
// --jsonl X) and returns the others. --help is not an error: it printed the usage.
func parseInterspersed(fs *flag.FlagSet, args []string) (positional []string, help bool, err error) {
	for {
		if err := parseFlags(fs, args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, true, nil
			}
			return nil, false, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, false, nil
		}
		positional, args = append(positional, args[0]), args[1:]
	}
}

func newRulesFlags(name string, errOut io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("rules "+name, flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.Usage = func() { fmt.Fprint(errOut, rulesUsage) }
	return fs
}

// defaultRulesDir is detections.rules_dir of the embedded configuration.
func defaultRulesDir() string { return sensor.DefaultConfig().Detections.RulesDir }

func rulesList(args []string, out, errOut io.Writer) error {
	fs := newRulesFlags("list", errOut)
	dir := fs.String("rules-dir", defaultRulesDir(), "directory of rule files laid over the starter pack (\"\": the pack alone)")
	reference := fs.Bool("reference", false, "also print the variables, fields and functions of conditions")
	rest, help, err := parseInterspersed(fs, args)
	if help || err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError{fmt.Errorf("rules list: unexpected argument %q", rest[0])}
	}
	set, err := rules.Load(*dir)
	if err != nil {
		return fmt.Errorf("rules list: %w", err)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSEVERITY\tSCOPE\tTAGS\tSOURCE")
	for _, r := range set.Rules() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s:%d\n", r.ID, r.Severity, r.Scope, strings.Join(r.Tags, ","), r.Source, r.Line)
	}
	s := rules.SilentRule
	fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s (detections.silent_agent_after_seconds)\n", s.ID, s.Severity, s.Scope, strings.Join(s.Tags, ","), s.Source)
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("rules list: write: %w", err)
	}
	if *reference {
		fmt.Fprintln(out)
		if _, err := io.WriteString(out, rules.Reference()); err != nil {
			return fmt.Errorf("rules list: write: %w", err)
		}
	}
	return nil
}

func rulesLint(args []string, out, errOut io.Writer) error {
	fs := newRulesFlags("lint", errOut)
	files, help, err := parseInterspersed(fs, args)
	if help || err != nil {
		return err
	}
	if len(files) == 0 {
		return usageError{errors.New("rules lint: name at least one rule file")}
	}
	failed := 0
	for _, f := range files {
		// Parse problems and compile problems of the rules that parsed, all at once.
		rs, perr := rules.LoadFile(f)
		_, cerr := rules.Compile(rs)
		if err := errors.Join(perr, cerr); err != nil {
			failed++
			fmt.Fprintln(out, err)
			continue
		}
		fmt.Fprintf(out, "%s: %d rules ok\n", f, len(rs))
	}
	if failed > 0 {
		return fmt.Errorf("rules lint: %d of %d files have problems", failed, len(files))
	}
	return nil
}

func rulesTest(args []string, out, errOut io.Writer) error {
	fs := newRulesFlags("test", errOut)
	jsonl := fs.String("jsonl", "", "JSONL file written by vigil run (- for stdin)")
	dir := fs.String("rules-dir", defaultRulesDir(), "without FILEs: directory of rule files laid over the starter pack")
	silent := fs.Duration("silent-after", 120*time.Second, "the built-in agent.silent detection's threshold, as detections.silent_agent_after_seconds (0: off)")
	files, help, err := parseInterspersed(fs, args)
	if help || err != nil {
		return err
	}
	if *jsonl == "" {
		return usageError{errors.New("rules test: --jsonl EVENTS.jsonl is required")}
	}
	var set *rules.Set
	if len(files) == 0 {
		set, err = rules.Load(*dir)
	} else {
		var all []rules.Rule
		for _, f := range files {
			rs, lerr := rules.LoadFile(f)
			if lerr != nil {
				return fmt.Errorf("rules test: %w", lerr)
			}
			all = append(all, rs...)
		}
		set, err = rules.Compile(all)
	}
	if err != nil {
		return fmt.Errorf("rules test: %w", err)
	}
	in := os.Stdin
	if *jsonl != "-" {
		f, err := os.Open(*jsonl)
		if err != nil {
			return fmt.Errorf("rules test: %w", err)
		}
		defer f.Close()
		in = f
	}
	events, bad, err := readTraceEvents(in)
	if err != nil {
		return fmt.Errorf("rules test: read %s: %w", *jsonl, err)
	}
	det := rules.NewDetector(set, rules.Options{Log: zerolog.New(errOut), SilentAfter: *silent, AgentPrograms: agentPrograms(sensor.DefaultCatalog())})
	bw := bufio.NewWriter(out)
	for _, e := range events {
		for _, a := range det.Observe(e) {
			line, err := proto.AppendLine(nil, a)
			if err != nil {
				return fmt.Errorf("rules test: encode alert: %w", err)
			}
			bw.Write(line)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("rules test: write: %w", err)
	}
	bad.report(errOut, *jsonl)
	st := det.Stats()
	ids := make([]string, 0, len(st.AlertsByRule))
	for id := range st.AlertsByRule {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var parts []string
	for _, id := range ids {
		parts = append(parts, fmt.Sprintf("%s %d", id, st.AlertsByRule[id]))
	}
	fmt.Fprintf(errOut, "vigil rules test: %d rules, %d lines, %d alerts", st.Rules, len(events), st.Alerts)
	if len(parts) > 0 {
		fmt.Fprintf(errOut, " (%s)", strings.Join(parts, ", "))
	}
	if st.Errors > 0 {
		fmt.Fprintf(errOut, ", %d rule errors", st.Errors)
	}
	fmt.Fprintln(errOut)
	return nil
}
