package main

import (
	"bufio"
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigil-sensor/vigil/correlate/workflow"
	"github.com/vigil-sensor/vigil/proto"
)

// traceAlert is an alert line (action alert) as the text shows it.
type traceAlert struct {
	time                       time.Time
	severity, ruleID, ruleName string
	evidence                   []string
	// Where it was raised: the tool call, the session, the agent tree.
	callID, sessionID string
	rootPid           int
	// The process of an event-scoped alert.
	process string
	pid     int
}

// alertsOf returns the alert lines among events, in their order.
func alertsOf(events []*proto.Event) []traceAlert {
	var out []traceAlert
	for _, e := range events {
		if e.Event.Action == proto.ActionAlert {
			out = append(out, alertOf(e))
		}
	}
	return out
}

func alertOf(e *proto.Event) traceAlert {
	a := traceAlert{time: e.Timestamp}
	if r := e.Rule; r != nil {
		a.ruleID, a.ruleName = r.ID, r.Name
	}
	if al := e.Vigil.Alert; al != nil {
		a.severity, a.evidence = al.Severity, al.Evidence
	}
	if g := e.GenAI; g != nil {
		if g.Tool != nil && g.Tool.Call != nil {
			a.callID = g.Tool.Call.ID
		}
		if g.Conversation != nil {
			a.sessionID = g.Conversation.ID
		}
	}
	if r := e.Vigil.Root; r != nil {
		a.rootPid = r.Pid
	}
	if p := e.Process; p != nil {
		a.process, a.pid = p.Name, p.Pid
	}
	return a
}

// workflowAlerts are the alerts of one workflow: by the tool call that raised them, and the
// others (raised by the session or tree, by a line no tool call explains, or by a call the
// record does not hold).
type workflowAlerts struct {
	byCall map[string][]traceAlert
	other  []traceAlert
}

func (wa workflowAlerts) count() int {
	n := len(wa.other)
	for _, l := range wa.byCall {
		n += len(l)
	}
	return n
}

// placeAlerts puts each alert beside what raised it: the workflow holding its tool call, else
// its session's, else the first whose agent tree it names. It returns the alerts of each
// workflow and how many alerts fit none (a session filtered out, or not in the input).
func placeAlerts(wfs []workflow.Workflow, alerts []traceAlert) ([]workflowAlerts, int) {
	out := make([]workflowAlerts, len(wfs))
	calls := map[string]int{}
	for i, w := range wfs {
		for _, p := range w.Prompts {
			for _, c := range p.ToolCalls {
				calls[c.CallID] = i
			}
		}
	}
	unplaced := 0
	for _, a := range alerts {
		if i, ok := calls[a.callID]; ok && a.callID != "" {
			if out[i].byCall == nil {
				out[i].byCall = map[string][]traceAlert{}
			}
			out[i].byCall[a.callID] = append(out[i].byCall[a.callID], a)
			continue
		}
		i := slices.IndexFunc(wfs, func(w workflow.Workflow) bool {
			return w.Kind == workflow.KindSession && a.sessionID != "" && w.SessionID == a.sessionID
		})
		if i < 0 && a.sessionID == "" && a.rootPid > 0 {
			i = slices.IndexFunc(wfs, func(w workflow.Workflow) bool { return slices.Contains(w.RootPids, a.rootPid) })
		}
		if i < 0 {
			unplaced++
			continue
		}
		out[i].other = append(out[i].other, a)
	}
	return out, unplaced
}

// writeAlert writes one alert: a line with its severity, rule and, for an alert one process
// raised, the process; then one line per item of evidence.
func writeAlert(b *bufio.Writer, indent string, a traceAlert, withTime bool) {
	b.WriteString(indent)
	if withTime {
		b.WriteString(a.time.UTC().Format("15:04:05") + " ")
	}
	fmt.Fprintf(b, "ALERT %s  %s", cmp.Or(a.severity, "?"), cmp.Or(a.ruleID, "(no rule id)"))
	if a.ruleName != "" {
		b.WriteString("  " + oneLine(a.ruleName, textCommandRunes))
	}
	if a.pid != 0 {
		fmt.Fprintf(b, "  by %s pid %d", cmp.Or(a.process, "?"), a.pid)
	}
	b.WriteString("\n")
	pad := indent + strings.Repeat(" ", len("ALERT "))
	if withTime {
		pad += strings.Repeat(" ", len("15:04:05 "))
	}
	for _, ev := range a.evidence {
		b.WriteString(pad + oneLine(ev, textCommandRunes) + "\n")
	}
}
