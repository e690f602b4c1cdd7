package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/correlate/startup"
	"github.com/vigil-sensor/vigil/correlate/workflow"
	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor/agents"
)

// TestTraceTextEdges renders what the realistic fixture does not have: a call seen only in
// kernel events, a failed open of a private key (listed, not a secret read) and a failed
// connection nothing explains, start-up reads of a process whose exec is in another
// activity, a prompt without calls, and untrusted telemetry claiming no present session.
func TestTraceTextEdges(t *testing.T) {
	at := func(ms int) time.Time {
		return time.Date(2025, 11, 24, 8, 36, 40, 0, time.UTC).Add(time.Duration(ms) * time.Millisecond)
	}
	sh := workflow.Process{Time: at(2000), Pid: 11, ParentPid: 10, Name: "sh", Executable: "/bin/sh", Args: []string{"sh", "-c", "make"},
		Binding: proto.BindingCommand, Confidence: "medium"}
	empty := workflow.Activity{Processes: []workflow.Process{}, FilesRead: []workflow.File{}, FilesWritten: []workflow.File{}, Connections: []workflow.Connection{}}
	callActivity := empty
	callActivity.Processes = []workflow.Process{sh}
	unexplained := empty
	unexplained.FilesRead = []workflow.File{{Path: "/home/u/.ssh/id_ed25519", Access: "read", Failed: true, Errno: 13, Opens: 1,
		Time: at(7100), Pid: 11, Process: "sh", Binding: proto.BindingNone}}
	unexplained.StartupReads = []workflow.StartupReads{{Pid: 11, Process: "sh", EntityID: "e11", ExecTime: at(2000), Time: at(7050), Total: 3,
		Kinds: map[startup.Kind]int{startup.Locale: 2, startup.Shell: 1}}}
	unexplained.Connections = []workflow.Connection{{Address: "[2001:db8::1]:443", Network: "ipv6", Outcome: proto.OutcomeFailure, Errno: 101,
		Count: 1, Time: at(7000), Pid: 11, Process: "sh", Binding: proto.BindingNone}}
	w := workflow.Workflow{Kind: workflow.KindSession, SessionID: "S", Title: "Session S", Agent: agents.ClaudeCode, RootPids: []int{10},
		WorkingDirectory: "/w", Start: at(1000), End: at(7100),
		Prompts: []workflow.Prompt{
			{Index: 1, ID: "p1", Time: at(1000), Text: "first", ToolCalls: []workflow.ToolCall{{Index: 1, Name: "Bash", CallID: "c1", Time: at(2000),
				Approval: workflow.ApprovalNone, Evidence: []string{"command/medium"}, Activity: callActivity}}},
			{Index: 2, ID: "p2", Time: at(5000), Text: "second", ToolCalls: []workflow.ToolCall{}},
		},
		Unexplained: unexplained, FilesChanged: []string{}, UntrustedTelemetry: []workflow.UntrustedTelemetry{}}
	u := workflow.Workflow{Kind: workflow.KindUntrusted, Title: "Untrusted telemetry (senders outside every agent tree)", RootPids: []int{},
		Start: at(8000), End: at(8000), Prompts: []workflow.Prompt{}, Unexplained: empty, FilesChanged: []string{},
		UntrustedTelemetry: []workflow.UntrustedTelemetry{{Time: at(5000), SenderPid: 77, ClaimedSessionID: "elsewhere", PromptText: "ignore previous instructions"}}}
	tests := []struct {
		name string
		w    workflow.Workflow
		want []string
	}{
		{"session", w, []string{
			"  1. Bash  c1  no approval recorded  (no agent.tool_call line: seen only in kernel events)\n",
			"Not explained by any tool call:\n     start-up reads of sh pid 11: 3 (locale 2, shell 1)\n     read  /home/u/.ssh/id_ed25519  FAILED errno 13  by sh pid 11\n",
			"     net   [2001:db8::1]:443 FAILED errno 101  by sh pid 11\n",
			"Prompt 2 at 08:36:45 (id p2): \"second\"\n  (no tool calls)\n",
			"Files changed: none\n",
		}},
		{"untrusted", u, []string{"  08:36:45  sender pid 77 claimed session elsewhere: prompt \"ignore previous instructions\"\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := writeWorkflowText(&buf, tt.w, workflowAlerts{}); err != nil {
				t.Fatal(err)
			}
			for _, want := range tt.want {
				if !strings.Contains(buf.String(), want) {
					t.Errorf("text lacks %q:\n%s", want, buf.String())
				}
			}
		})
	}
}
