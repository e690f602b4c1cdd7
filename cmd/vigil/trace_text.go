package main

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-sensor/vigil/correlate/workflow"
	"github.com/vigil-sensor/vigil/proto"
)

// Limits of the text rendering (the JSON keeps everything).
const (
	textCommandRunes = 240
	textPromptRunes  = 400
)

// writeWorkflowText writes the workflow for a terminal, in plain ASCII apart from what the data holds:
// a header line, the alerts no tool call raised, then each prompt with its tool calls and,
// beneath each call, what the kernel saw bound to it and the alerts it raised; then what no
// tool call explains, the files changed and the untrusted telemetry. Each process's start-up
// reads (Activity.StartupReads) are one counted line, and so are a process's reads of many
// files of one shape (foldReads: /proc/*/stat, /etc/ssl/certs/); reads are flagged
// [secret-looking] when they are secret reads (File.Secret, as the alerts count them), and are
// never folded. Command lines and prompts are shortened in the text (marked ...), never in
// JSON. The layout is stable: tests compare it byte for byte.
func writeWorkflowText(out io.Writer, w workflow.Workflow, alerts workflowAlerts) error {
	b := bufio.NewWriter(out)
	b.WriteString(workflowHeader(w))
	b.WriteString("\n")
	if len(w.Lost) > 0 {
		keys := make([]string, 0, len(w.Lost))
		for k := range w.Lost {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %d", k, w.Lost[k]))
		}
		fmt.Fprintf(b, "WARNING: the sensor lost events during this workflow (%s): the record may be incomplete\n", strings.Join(parts, ", "))
	}
	if w.Kind != workflow.KindUntrusted {
		fmt.Fprintf(b, "Summary: %s\n", workflowSummary(w, alerts.count()))
		if len(alerts.other) > 0 {
			b.WriteString("Alerts not raised by a tool call:\n")
			for _, a := range alerts.other {
				writeAlert(b, "  ", a, true)
			}
		}
		for _, p := range w.Prompts {
			writePrompt(b, p, alerts.byCall)
		}
		b.WriteString("Not explained by any tool call:")
		if w.Unexplained.Empty() {
			b.WriteString(" nothing\n")
		} else {
			b.WriteString("\n")
			writeActivity(b, "     ", w.Unexplained, true)
		}
		b.WriteString("Files changed:")
		if len(w.FilesChanged) == 0 {
			b.WriteString(" none\n")
		} else {
			b.WriteString("\n")
			for _, f := range w.FilesChanged {
				fmt.Fprintf(b, "  %s\n", f)
			}
		}
	}
	if len(w.UntrustedTelemetry) > 0 {
		if w.Kind == workflow.KindUntrusted {
			b.WriteString("Lines from processes outside every agent tree (never bound):\n")
		} else {
			b.WriteString("Untrusted telemetry claiming this session (senders outside every agent tree, never bound):\n")
		}
		for _, u := range w.UntrustedTelemetry {
			writeUntrusted(b, u)
		}
	}
	return b.Flush()
}

func workflowHeader(w workflow.Workflow) string {
	var parts []string
	switch {
	case w.Agent != "" && w.Host != "":
		parts = append(parts, w.Agent+" on host "+w.Host)
	case w.Agent != "":
		parts = append(parts, w.Agent)
	case w.Host != "":
		parts = append(parts, "host "+w.Host)
	}
	switch {
	case w.Repository != "" && w.WorkingDirectory != "":
		parts = append(parts, fmt.Sprintf("repo %s (cwd %s)", w.Repository, w.WorkingDirectory))
	case w.WorkingDirectory != "":
		parts = append(parts, "cwd "+w.WorkingDirectory)
	}
	if w.Kind == workflow.KindSession && len(w.RootPids) > 0 {
		pids := make([]string, len(w.RootPids))
		for i, p := range w.RootPids {
			pids[i] = strconv.Itoa(p)
		}
		label := "root pid "
		if len(pids) > 1 {
			label = "root pids "
		}
		parts = append(parts, label+strings.Join(pids, ", "))
	}
	if !w.Start.IsZero() {
		parts = append(parts, timeSpan(w.Start, w.End))
	}
	if len(parts) == 0 {
		return w.Title
	}
	return w.Title + " - " + strings.Join(parts, ", ")
}

// summary counts what the workflow holds, in one line.
func workflowSummary(w workflow.Workflow, alerts int) string {
	var calls, unapproved, failed int
	var bound workflow.Activity
	for _, p := range w.Prompts {
		for _, c := range p.ToolCalls {
			calls++
			if c.Approval == workflow.ApprovalNone {
				unapproved++
			}
			if c.Success != nil && !*c.Success {
				failed++
			}
			bound.Processes = append(bound.Processes, c.Processes...)
			// A process's start-up reads are its own, whichever calls they are in.
			bound.StartupReads = append(bound.StartupReads, c.StartupReads...)
			for _, f := range c.FilesRead {
				if !slices.ContainsFunc(bound.FilesRead, func(g workflow.File) bool { return g.Path == f.Path && g.Secret == f.Secret }) {
					bound.FilesRead = append(bound.FilesRead, f)
				}
			}
			bound.Connections = append(bound.Connections, c.Connections...)
		}
	}
	parts := []string{plural(len(w.Prompts), "prompt")}
	s := plural(calls, "tool call")
	var notes []string
	if unapproved > 0 {
		notes = append(notes, fmt.Sprintf("%d with no approval recorded", unapproved))
	}
	if failed > 0 {
		notes = append(notes, fmt.Sprintf("%d failed", failed))
	}
	if len(notes) > 0 {
		s += " (" + strings.Join(notes, ", ") + ")"
	}
	parts = append(parts, s)
	parts = append(parts, activityCounts(bound)...)
	parts = append(parts, plural(len(w.FilesChanged), "file")+" changed")
	s = strings.Join(parts, ", ")
	if !w.Unexplained.Empty() {
		s += "; not explained: " + strings.Join(activityCounts(w.Unexplained), ", ")
	}
	if n := len(w.UntrustedTelemetry); n > 0 {
		s += "; " + plural(n, "untrusted telemetry line")
	}
	if alerts > 0 {
		s += "; " + plural(alerts, "alert")
	}
	return s
}

// counts names the processes, files read (and how many of them are secret reads), start-up
// reads and destinations of a; the files written are in the workflow's files changed.
func activityCounts(a workflow.Activity) []string {
	var out []string
	if n := len(a.Processes); n > 0 {
		out = append(out, plural(n, "process"))
	}
	files, secrets := map[string]bool{}, map[string]bool{}
	for _, f := range a.FilesRead {
		files[f.Path] = true
		if f.Secret {
			secrets[f.Path] = true
		}
	}
	startupReads := 0
	for _, r := range a.StartupReads {
		startupReads += r.Total
	}
	if len(files) > 0 {
		s := plural(len(files), "file") + " read"
		if len(secrets) > 0 {
			s += fmt.Sprintf(" (%d secret-looking)", len(secrets))
		}
		out = append(out, s)
	}
	if startupReads > 0 {
		out = append(out, plural(startupReads, "start-up read"))
	}
	if n := len(a.FilesWritten); n > 0 && len(out) == 0 {
		out = append(out, plural(n, "file")+" written")
	}
	if n := len(a.Connections); n > 0 {
		out = append(out, plural(n, "destination"))
	}
	return out
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	if strings.HasSuffix(what, "s") {
		return fmt.Sprintf("%d %ses", n, what)
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func timeSpan(start, end time.Time) string {
	start, end = start.UTC(), end.UTC()
	s := start.Format("2006-01-02 15:04:05")
	switch {
	case end.Format("15:04:05") == start.Format("15:04:05") && end.Sub(start) < time.Second:
	case end.Format("2006-01-02") == start.Format("2006-01-02"):
		s += "-" + end.Format("15:04:05")
	default:
		s += " - " + end.Format("2006-01-02 15:04:05")
	}
	return s + " UTC"
}

func writePrompt(b *bufio.Writer, p workflow.Prompt, alerts map[string][]traceAlert) {
	fmt.Fprintf(b, "Prompt %d at %s", p.Index, p.Time.UTC().Format("15:04:05"))
	if p.ID != "" {
		fmt.Fprintf(b, " (id %s)", p.ID)
	} else {
		b.WriteString(" (no prompt id)")
	}
	if p.Text != "" {
		fmt.Fprintf(b, ": %s\n", quoteText(clip(p.Text, textPromptRunes)))
	} else {
		b.WriteString(": (prompt text not recorded)\n")
	}
	if len(p.ToolCalls) == 0 {
		b.WriteString("  (no tool calls)\n")
	}
	for _, c := range p.ToolCalls {
		fmt.Fprintf(b, "  %d. %s  %s  %s", c.Index, cmp.Or(c.Name, "(unknown tool)"), c.CallID, c.Approval)
		if c.Success != nil {
			if *c.Success {
				b.WriteString("  ok")
			} else {
				b.WriteString("  FAILED")
			}
		}
		if c.DurationMs > 0 {
			b.WriteString("  " + duration(c.DurationMs))
		}
		if !c.Reported {
			b.WriteString("  (no agent.tool_call line: seen only in kernel events)")
		}
		b.WriteString("\n")
		if c.Command != "" {
			fmt.Fprintf(b, "     $ %s\n", oneLine(c.Command, textCommandRunes))
		}
		for _, f := range c.FilePaths {
			fmt.Fprintf(b, "     file  %s\n", f)
		}
		if c.Activity.Empty() {
			b.WriteString("     (no kernel activity bound to this call)\n")
		} else {
			writeActivity(b, "     ", c.Activity, false)
		}
		if len(c.Evidence) > 0 {
			fmt.Fprintf(b, "     bound by %s\n", strings.Join(c.Evidence, ", "))
		}
		for _, a := range alerts[c.CallID] {
			writeAlert(b, "     ", a, false)
		}
	}
}

// writeActivity writes one line per item under a 6-column label (ran, read, wrote, net);
// byWho adds the process (and parent) to each line, for activity outside any tool call. A
// process's start-up reads are one counted line: beneath the process when it ran here, else
// before the files read, naming it. A process's reads of many files of one shape are one
// counted line where the first of them was read (foldReads); writes are listed one by one.
func writeActivity(b *bufio.Writer, indent string, a workflow.Activity, byWho bool) {
	label := func(i int, l string) string {
		if i > 0 {
			l = ""
		}
		return fmt.Sprintf("%s%-6s", indent, l)
	}
	folds := foldStartup(a.StartupReads)
	for i, p := range a.Processes {
		b.WriteString(label(i, "ran"))
		b.WriteString(oneLine(commandLine(p), textCommandRunes))
		fmt.Fprintf(b, " (pid %d", p.Pid)
		if byWho && p.ParentPid != 0 {
			fmt.Fprintf(b, ", parent %d", p.ParentPid)
		}
		b.WriteString(")")
		if p.ExitCode != nil {
			fmt.Fprintf(b, " -> exit %d", *p.ExitCode)
		}
		b.WriteString("\n")
		if r, ok := folds.take(p); ok {
			fmt.Fprintf(b, "%s        start-up reads: %s\n", indent, startupCounts(r))
		}
	}
	for _, r := range folds.rest() {
		fmt.Fprintf(b, "%sstart-up reads of %s pid %d: %s\n", indent, cmp.Or(r.Process, "?"), r.Pid, startupCounts(r))
	}
	files := func(l string, list []readLine) {
		for i, f := range list {
			b.WriteString(label(i, l))
			if f.Folded > 0 {
				fmt.Fprintf(b, "%s  (%s", f.Shape, plural(f.Folded, "file"))
				if f.FoldedFailed > 0 {
					fmt.Fprintf(b, ", %d failed", f.FoldedFailed)
				}
				b.WriteString(")")
				if byWho {
					fmt.Fprintf(b, "  by %s pid %d", cmp.Or(f.Process, "?"), f.Pid)
				}
				b.WriteString("\n")
				continue
			}
			b.WriteString(f.Path)
			if f.Secret {
				b.WriteString("  [secret-looking]")
			}
			var flags []string
			if f.Create {
				flags = append(flags, "O_CREAT")
			}
			if f.Truncate {
				flags = append(flags, "O_TRUNC")
			}
			if len(flags) > 0 {
				fmt.Fprintf(b, "  (%s)", strings.Join(flags, "|"))
			}
			if f.TempPath != "" {
				fmt.Fprintf(b, "  (atomic write via %s)", path.Base(f.TempPath))
			}
			if f.Failed {
				fmt.Fprintf(b, "  FAILED errno %d", f.Errno)
			}
			if byWho {
				fmt.Fprintf(b, "  by %s pid %d", cmp.Or(f.Process, "?"), f.Pid)
			}
			b.WriteString("\n")
		}
	}
	files("read", foldReads(a.FilesRead))
	written := make([]readLine, len(a.FilesWritten))
	for i, f := range a.FilesWritten {
		written[i] = readLine{File: f}
	}
	files("wrote", written)
	for i, c := range a.Connections {
		b.WriteString(label(i, "net"))
		b.WriteString(c.Address)
		switch c.Outcome {
		case proto.OutcomeSuccess:
			b.WriteString(" ok")
		case proto.OutcomeFailure:
			fmt.Fprintf(b, " FAILED errno %d", c.Errno)
		}
		if c.Count > 1 {
			fmt.Fprintf(b, " (x%d)", c.Count)
		}
		if byWho {
			fmt.Fprintf(b, "  by %s pid %d", cmp.Or(c.Process, "?"), c.Pid)
		}
		b.WriteString("\n")
	}
}

func writeUntrusted(b *bufio.Writer, u workflow.UntrustedTelemetry) {
	fmt.Fprintf(b, "  %s  sender pid %d", u.Time.UTC().Format("15:04:05"), u.SenderPid)
	if u.Transport != "" {
		fmt.Fprintf(b, " via %s", u.Transport)
	}
	if u.ClaimedSessionID != "" {
		fmt.Fprintf(b, " claimed session %s", u.ClaimedSessionID)
	} else {
		b.WriteString(" claimed no session")
	}
	var claim []string
	if u.Agent != "" {
		claim = append(claim, u.Agent)
	}
	if u.ToolName != "" {
		claim = append(claim, u.ToolName)
	}
	if u.Command != "" {
		claim = append(claim, "$ "+oneLine(u.Command, textCommandRunes))
	}
	claim = append(claim, u.FilePaths...)
	if u.PromptText != "" {
		claim = append(claim, "prompt "+quoteText(clip(u.PromptText, textPromptRunes)))
	}
	if len(claim) > 0 {
		b.WriteString(": " + strings.Join(claim, " "))
	}
	b.WriteString("\n")
}

// commandLine is the executable followed by argv[1:], shell-quoted where needed.
func commandLine(p workflow.Process) string {
	words := make([]string, 0, len(p.Args)+1)
	exe := p.Executable
	if exe == "" && len(p.Args) > 0 {
		exe = p.Args[0]
	}
	words = append(words, shellQuote(cmp.Or(exe, p.Name, "?")))
	if len(p.Args) > 1 {
		for _, a := range p.Args[1:] {
			words = append(words, shellQuote(a))
		}
	}
	return strings.Join(words, " ")
}

func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:,=+@%^", r) || r > 0x7f) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// oneLine shows newlines and tabs escaped and shortens to n runes.
func oneLine(s string, n int) string {
	s = strings.NewReplacer("\n", `\n`, "\r", `\r`, "\t", `\t`).Replace(s)
	return clip(s, n)
}

func clip(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "..."
}

// quoteText double-quotes s for one line: backslash, quote and control characters escaped,
// other characters (non-ASCII included) kept.
func quoteText(s string) string {
	var sb strings.Builder
	sb.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			sb.WriteByte('\\')
			sb.WriteRune(r)
		case r == '\n':
			sb.WriteString(`\n`)
		case r == '\t':
			sb.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&sb, `\x%02x`, r)
		default:
			sb.WriteRune(r)
		}
	}
	sb.WriteByte('"')
	return sb.String()
}

func duration(ms int64) string {
	switch {
	case ms < 1000:
		return fmt.Sprintf("%dms", ms)
	case ms < 60_000:
		return strconv.FormatFloat(float64(ms)/1000, 'f', 1, 64) + "s"
	}
	d := time.Duration(ms) * time.Millisecond
	return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
}
