package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/correlate/workflow"
	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor/agents"
)

// The kernel lines of a Bash call of the bench/e2e scenario claude/filetools (correlate/startup's
// sample): each process's loader, locale and shell reads are one counted line beneath it,
// the forked subshell's (no exec of its own) one line naming it, and only what the command
// read is listed.
func TestTraceFoldsStartupReads(t *testing.T) {
	data, err := os.ReadFile("../../correlate/startup/testdata/claude-bash.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := runTrace([]string{"--jsonl", "-"}, bytes.NewReader(data), &out, &errOut, func(string) string { return "" }); err != nil {
		t.Fatalf("trace: %v (%s)", err, errOut.String())
	}
	want := `Summary: 1 prompt, 1 tool call (1 with no approval recorded), 5 processes, 5 files read, 29 start-up reads, 1 file changed
Prompt 1 at 01:33:51 (id 8d6d0058-4491-444f-8b7d-8de107875a4e): (prompt text not recorded)
  1. Bash  toolu_e2e_0_3  no approval recorded  (no agent.tool_call line: seen only in kernel events)
     ran   /usr/bin/bash -c env (pid 31121)
             start-up reads: 10 (loader 3, locale 5, shell 2)
           /usr/bin/env (pid 31121) -> exit 0
             start-up reads: 4 (loader 2, locale 2)
`
	want2 := `             start-up reads: 7 (loader 3, locale 1, shell 3)
           /usr/bin/dash ./.e2e/vmark_0_3_ (pid 31129) -> exit 0
             start-up reads: 2 (loader 2)
           /usr/bin/cat vmark_0_1_out.txt vmark_0_0_vmark_0_2_notes.txt (pid 31133) -> exit 0
             start-up reads: 5 (loader 2, locale 3)
     start-up reads of bash pid 31128: 1 (locale 1)
     read  /dev/null
           /var/tmp/vigil-e2e/claude-filetools/repo/.e2e/vmark_0_3_
           /var/tmp/vigil-e2e/claude-filetools/repo
           /var/tmp/vigil-e2e/claude-filetools/repo/vmark_0_1_out.txt
           /var/tmp/vigil-e2e/claude-filetools/repo/vmark_0_0_vmark_0_2_notes.txt
     wrote /dev/tty  FAILED errno 6
`
	for _, w := range []string{want, want2} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("trace lacks\n%s\n--- got\n%s", w, out.String())
		}
	}
	for _, folded := range []string{"libc.so.6", "ld.so.cache", "/usr/lib/locale/", "locale.alias", "gconv-modules", "bash.bashrc", "snapshot-bash-1796434431514-e313wq.sh\n"} {
		if strings.Contains(out.String(), folded) {
			t.Errorf("a start-up read of %s is listed:\n%s", folded, out.String())
		}
	}
}

// kline is a kernel line of session S under root 100, bound to call when it is not "".
func kline(seq uint64, action string, pid int, exe string, call string) *proto.Event {
	e := &proto.Event{
		Timestamp: time.Date(2026, 12, 5, 1, 33, 50, int(seq)*int(time.Millisecond), time.UTC),
		Event:     proto.EventMeta{Action: action, Kind: "event", Dataset: "vigil.kernel", Sequence: seq},
		Process:   &proto.Process{Pid: pid, EntityID: "ent-" + exe, Name: exe[strings.LastIndexByte(exe, '/')+1:], Executable: exe},
		GenAI:     &proto.GenAI{Agent: &proto.GenAIAgent{Name: agents.ClaudeCode}, Conversation: &proto.GenAIConversation{ID: "S"}},
		Vigil:     proto.Vigil{Root: &proto.Root{Pid: 100}, Correlation: proto.Correlation{Binding: proto.BindingNone}},
	}
	if call != "" {
		e.GenAI.Tool = &proto.GenAITool{Name: "Bash", Call: &proto.GenAIToolCall{ID: call}}
		e.Vigil.Correlation = proto.Correlation{Binding: proto.BindingTraceParent, Confidence: "high"}
	}
	return e
}

func kopen(seq uint64, pid int, exe, call, path, access string, failed bool) *proto.Event {
	e := kline(seq, proto.ActionOpen, pid, exe, call)
	e.File = &proto.File{Path: path, Access: access}
	if failed {
		e.Event.Outcome = proto.OutcomeFailure
		e.Vigil.Errno = 2
	}
	return e
}

func alertLine(seq uint64, rule, session, call string, root int) *proto.Event {
	e := &proto.Event{
		Timestamp: time.Date(2026, 12, 5, 1, 33, 51, int(seq)*int(time.Millisecond), time.UTC),
		Event:     proto.EventMeta{Action: proto.ActionAlert, Kind: proto.KindAlert, Dataset: proto.DatasetDetection, Sequence: seq, Severity: 73},
		Rule:      &proto.Rule{ID: rule, Name: "name of " + rule, Ruleset: "pack"},
		GenAI:     &proto.GenAI{Agent: &proto.GenAIAgent{Name: agents.ClaudeCode}},
		Vigil: proto.Vigil{Alert: &proto.Alert{Severity: "high", Scope: "tool_call", Sequences: []uint64{seq - 1},
			Evidence: []string{"evidence of " + rule}}},
	}
	if session != "" {
		e.GenAI.Conversation = &proto.GenAIConversation{ID: session}
	}
	if call != "" {
		e.GenAI.Tool = &proto.GenAITool{Name: "Bash", Call: &proto.GenAIToolCall{ID: call}}
	}
	if root != 0 {
		e.Vigil.Root = &proto.Root{Pid: root}
	}
	return e
}

func traceText(t *testing.T, args []string, events ...*proto.Event) (string, string) {
	t.Helper()
	var in bytes.Buffer
	for _, e := range events {
		b, err := proto.MarshalJSON(e)
		if err != nil {
			t.Fatal(err)
		}
		in.Write(append(b, '\n'))
	}
	var out, errOut bytes.Buffer
	if err := runTrace(append([]string{"--jsonl", "-"}, args...), &in, &out, &errOut, func(string) string { return "" }); err != nil {
		t.Fatalf("trace: %v (%s)", err, errOut.String())
	}
	return out.String(), errOut.String()
}

// Reads are flagged as the alerts count secret reads: the public CA certificates Claude Code
// reads at every start (a trace once flagged 150 of them) are not, nor are failed opens, O_PATH
// opens and a secret's own client; a private key read by cat is.
func TestTraceFlagsSecretReadsAsAlertsDo(t *testing.T) {
	const claude = "/usr/local/bin/claude"
	var events []*proto.Event
	events = append(events, kline(1, proto.ActionExec, 100, claude, ""))
	seq := uint64(2)
	for _, p := range []string{
		"/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/certs/ssl-cert-snakeoil.pem", "/etc/ssl/certs/ISRG_Root_X1.pem",
		"/etc/ssl/certs/4042bcee.0", "/usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt", "/etc/ssl/cert.pem",
		"/etc/pki/tls/certs/ca-bundle.crt", "/usr/lib/node_modules/npm/node_modules/certifi/cacert.pem",
	} {
		events = append(events, kopen(seq, 100, claude, "", p, "read", false))
		seq++
	}
	casOnly, _ := traceText(t, nil, events...)
	if strings.Contains(casOnly, "secret") || !strings.Contains(casOnly, "/etc/ssl/certs/ssl-cert-snakeoil.pem  by claude pid 100\n") {
		t.Errorf("CA certificates flagged or not listed:\n%s", casOnly)
	}

	events = append(events,
		kopen(20, 100, claude, "", "/home/dev/.ssh/id_ed25519", "read", true), // failed
		kopen(21, 100, claude, "", "/home/dev/app/.env", "path", false),       // O_PATH
		kline(22, proto.ActionExec, 300, "/usr/bin/ssh", "c1"),                // its own client
		kopen(23, 300, "/usr/bin/ssh", "c1", "/home/dev/.ssh/id_rsa", "read", false),
		kline(24, proto.ActionExec, 301, "/usr/bin/cat", "c1"), // not
		kopen(25, 301, "/usr/bin/cat", "c1", "/home/dev/.ssh/id_rsa", "read", false),
	)
	out, _ := traceText(t, nil, events...)
	for _, want := range []string{
		"2 processes, 1 file read (1 secret-looking), 0 files changed; not explained: 10 files read\n",
		"     read  /home/dev/.ssh/id_rsa\n           /home/dev/.ssh/id_rsa  [secret-looking]\n",
		"           /home/dev/.ssh/id_ed25519  FAILED errno 2  by claude pid 100\n",
		"           /home/dev/app/.env  by claude pid 100\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("trace lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "[secret-looking]"); n != 1 {
		t.Errorf("%d reads flagged, want 1 (cat's id_rsa):\n%s", n, out)
	}
}

// Alerts are shown beside what raised them: a tool call's beneath the call, a session's after
// the summary, an unattributed tree's in its workflow, one of a session the input has no other
// line of in that session's; an alert naming no session, call or tree is counted.
func TestTracePlacesAlerts(t *testing.T) {
	call := proto.ToolCallRecord{Time: time.Date(2026, 12, 5, 1, 33, 52, 0, time.UTC), Agent: agents.ClaudeCode, SessionID: "S",
		PromptID: "p1", CallID: "c1", ToolName: "Bash", Command: "cat ~/.ssh/id_rsa", Decision: "accept", DecisionSource: "config"}.Event()
	call.Event.Sequence = 9
	orphan := kline(10, proto.ActionExec, 701, "/usr/bin/git", "")
	orphan.GenAI.Conversation = nil
	orphan.Vigil.Root = &proto.Root{Pid: 700}
	events := []*proto.Event{
		kline(1, proto.ActionExec, 301, "/usr/bin/cat", "c1"),
		kopen(2, 301, "/usr/bin/cat", "c1", "/home/dev/.ssh/id_rsa", "read", false),
		alertLine(3, "cred.ssh_private_key_read", "S", "c1", 100),
		kopen(4, 100, "/usr/local/bin/claude", "", "/home/dev/app/.env", "read", false),
		alertLine(5, "cred.dotenv_read", "S", "", 100),
		call, orphan,
		alertLine(11, "tree.rule", "", "", 700),
		alertLine(12, "session.rule", "T", "", 0),
		alertLine(13, "nowhere.rule", "", "", 0),
	}
	out, errOut := traceText(t, nil, events...)
	for _, want := range []string{
		"; 2 alerts\nAlerts not raised by a tool call:\n  01:33:51 ALERT high  cred.dotenv_read  name of cred.dotenv_read\n                 evidence of cred.dotenv_read\nPrompt 1",
		"     bound by traceparent/high\n     ALERT high  cred.ssh_private_key_read  name of cred.ssh_private_key_read\n           evidence of cred.ssh_private_key_read\nNot explained",
		"Unattributed claude-code tree (root pid 700)",
		"; 1 alert\nAlerts not raised by a tool call:\n  01:33:51 ALERT high  tree.rule  name of tree.rule\n",
		"Session T - claude-code, 2026-12-05 01:33:51 UTC\nSummary: 0 prompts, 0 tool calls, 0 files changed; 1 alert\nAlerts not raised by a tool call:\n  01:33:51 ALERT high  session.rule",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("trace lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "nowhere.rule") || errOut != "vigil trace: 1 alert names no session, tool call or agent tree in -; not shown\n" {
		t.Errorf("the alert of nothing: out\n%s\nerr %q", out, errOut)
	}
	// Filtered to session S, the other alerts are not missing: they are filtered.
	out, errOut = traceText(t, []string{"--session", "S"}, events...)
	if strings.Contains(out, "tree.rule") || strings.Contains(out, "session.rule") || errOut != "" {
		t.Errorf("--session S: out\n%s\nerr %q", out, errOut)
	}
}

// The start-up fold follows a bounded number of processes and says when it forgot some.
func TestTraceReportsStartupEvictions(t *testing.T) {
	defer func(n int) { traceMaxProcesses = n }(traceMaxProcesses)
	traceMaxProcesses = 1
	var events []*proto.Event
	for i, exe := range []string{"/usr/bin/a", "/usr/bin/b"} {
		events = append(events, kline(uint64(2*i+1), proto.ActionExec, 300+i, exe, ""))
	}
	// a is forgotten when b execs: its library is listed, b's is counted.
	events = append(events, kopen(5, 300, "/usr/bin/a", "", "/usr/lib/liba.so.1", "read", false),
		kopen(6, 301, "/usr/bin/b", "", "/usr/lib/libb.so.1", "read", false))
	out, errOut := traceText(t, nil, events...)
	for _, want := range []string{
		"           /usr/bin/b (pid 301)\n             start-up reads: 1 (loader 1)\n",
		"     read  /usr/lib/liba.so.1  by a pid 300\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("trace lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "libb") {
		t.Errorf("b's start-up read is listed:\n%s", out)
	}
	if want := "vigil trace: 1 processes were forgotten to follow at most 1 at once; the start-up reads they made after that are listed file by file\n"; errOut != want {
		t.Errorf("stderr %q, want %q", errOut, want)
	}
}

// reads are n opens by one process of the paths format(i), i from 1 (of format when it has no
// verb); the opens of the indexes in failed fail.
func reads(seq *uint64, pid int, exe, call string, n int, format string, failed ...int) []*proto.Event {
	var out []*proto.Event
	for i := 1; i <= n; i++ {
		*seq++
		p := format
		if strings.Contains(format, "%") {
			p = fmt.Sprintf(format, i)
		}
		out = append(out, kopen(*seq, pid, exe, call, p, "read", slices.Contains(failed, i)))
	}
	return out
}

// A process's reads of many files of one shape (one directory, or one path but for its
// numeric components) are one counted line in the text: more than readListMax of them, never a
// secret read, a read of a secret-looking path or a file with write flags, whose lines stay.
// The summary counts every file, and the JSON lists every file.
func TestTraceFoldsBulkReads(t *testing.T) {
	const (
		claude = "/usr/local/bin/claude"
		ps     = "/usr/bin/ps"
		cat    = "/usr/bin/cat"
	)
	type tcase struct {
		name   string
		events func(seq *uint64) []*proto.Event
		want   []string // in the text, each
		not    []string // in the text, none
		files  int      // files read in the summary
	}
	cases := []tcase{{
		name: "by directory",
		events: func(seq *uint64) []*proto.Event {
			return reads(seq, 100, claude, "", 12, "/usr/share/ca-certificates/mozilla/CA_%02d.crt")
		},
		want:  []string{"     read  /usr/share/ca-certificates/mozilla/  (12 files)  by claude pid 100\n     wrote"},
		not:   []string{"CA_01.crt", "CA_12.crt"},
		files: 12,
	}, {
		name: "by numeric shape, failed counted",
		events: func(seq *uint64) []*proto.Event {
			var out []*proto.Event
			for i := 1; i <= 12; i++ {
				*seq += 2
				out = append(out, kopen(*seq-1, 300, ps, "c1", fmt.Sprintf("/proc/%d/stat", 1000+i), "read", false),
					kopen(*seq, 300, ps, "c1", fmt.Sprintf("/proc/%d/environ", 1000+i), "read", i%4 == 0))
			}
			return out
		},
		// Each /proc/<pid>/ directory holds 2 files: the numeric shape folds them.
		want:  []string{"     read  /proc/*/stat  (12 files)\n           /proc/*/environ  (12 files, 3 failed)\n     wrote"},
		not:   []string{"/proc/1001/", "/proc/*/  ("},
		files: 24,
	}, {
		name: "below the threshold, listed",
		events: func(seq *uint64) []*proto.Event {
			return reads(seq, 301, cat, "c1", readListMax, "/home/dev/app/f%d.txt")
		},
		want:  []string{"     read  /home/dev/app/f1.txt\n", "           /home/dev/app/f8.txt\n"},
		not:   []string{" files)"},
		files: readListMax,
	}, {
		name: "one over the threshold, folded",
		events: func(seq *uint64) []*proto.Event {
			return reads(seq, 301, cat, "c1", readListMax+1, "/home/dev/app/f%d.txt", 1, 2, 3, 4, 5, 6, 7, 8, 9)
		},
		want:  []string{"     read  /home/dev/app/  (9 files, 9 failed)\n     wrote"},
		not:   []string{"f1.txt", "f9.txt"},
		files: readListMax + 1,
	}, {
		name: "per process: two below the threshold each, listed",
		events: func(seq *uint64) []*proto.Event {
			return append(reads(seq, 301, cat, "c1", 6, "/home/dev/app/a%d.txt"), reads(seq, 302, "/usr/bin/head", "c1", 6, "/home/dev/app/b%d.txt")...)
		},
		want:  []string{"/home/dev/app/a6.txt\n           /home/dev/app/b1.txt\n"},
		not:   []string{" files)"},
		files: 12,
	}, {
		name: "a secret read and a failed read of a secret-looking path in a folded directory stay listed, in order",
		events: func(seq *uint64) []*proto.Event {
			out := reads(seq, 301, cat, "c1", 1, "/home/dev/README")
			out = append(out, reads(seq, 301, cat, "c1", 5, "/home/dev/app/src%d.go")...)
			out = append(out, reads(seq, 301, cat, "c1", 1, "/home/dev/app/.env")...)
			out = append(out, reads(seq, 301, cat, "c1", 1, "/home/dev/app/.env.production", 1)...)
			return append(out, reads(seq, 301, cat, "c1", 5, "/home/dev/app/test%d.go")...)
		},
		want: []string{"     read  /home/dev/README\n           /home/dev/app/  (10 files)\n" +
			"           /home/dev/app/.env  [secret-looking]\n           /home/dev/app/.env.production  FAILED errno 2\n     wrote"},
		not:   []string{"src1.go", "test5.go", "(12 files"},
		files: 13,
	}, {
		name: "writes never folded, nor a read with write flags",
		events: func(seq *uint64) []*proto.Event {
			var out []*proto.Event
			for i := 1; i <= 12; i++ {
				*seq++
				w := kopen(*seq, 303, "/usr/bin/tee", "c1", fmt.Sprintf("/home/dev/out/w%02d", i), "write", false)
				w.File.Flags = "O_WRONLY|O_CREAT"
				out = append(out, w)
			}
			out = append(out, reads(seq, 303, "/usr/bin/tee", "c1", 9, "/home/dev/out/r%d")...)
			*seq++
			r := kopen(*seq, 303, "/usr/bin/tee", "c1", "/home/dev/out/r10", "read", false)
			r.File.Flags = "O_RDONLY|O_CREAT"
			return append(out, r)
		},
		want: []string{"     read  /home/dev/out/  (9 files)\n           /home/dev/out/r10  (O_CREAT)\n     wrote /home/dev/out/w01  (O_CREAT)\n",
			"           /home/dev/out/w12  (O_CREAT)\n"},
		not:   []string{"(12 files", "(10 files"},
		files: 10,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			seq := uint64(100)
			events := []*proto.Event{kline(1, proto.ActionExec, 100, claude, "")}
			for _, e := range tc.events(&seq) {
				if e.Process.Pid != 100 && !slices.ContainsFunc(events, func(x *proto.Event) bool {
					return x.Event.Action == proto.ActionExec && x.Process.Pid == e.Process.Pid
				}) {
					events = append(events, kline(2, proto.ActionExec, e.Process.Pid, e.Process.Executable, e.GenAI.Tool.Call.ID))
				}
				events = append(events, e)
			}
			// Something written after the reads marks where their lines end.
			seq++
			end := kopen(seq, 100, claude, "", "/home/dev/.claude.json", "write", false)
			end2 := kopen(seq+1, 399, "/usr/bin/touch", "c1", "/home/dev/stamp", "write", false)
			events = append(events, end, kline(seq+1, proto.ActionExec, 399, "/usr/bin/touch", "c1"), end2)

			out, _ := traceText(t, nil, events...)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("trace lacks\n%s--- got\n%s", w, out)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(out, n) {
					t.Errorf("trace holds %q:\n%s", n, out)
				}
			}
			if want := plural(tc.files, "file") + " read"; !strings.Contains(out, want) {
				t.Errorf("summary does not count %q:\n%s", want, out)
			}

			js, _ := traceText(t, []string{"--format", "json"}, events...)
			var wfs []workflow.Workflow
			if err := json.Unmarshal([]byte(js), &wfs); err != nil {
				t.Fatalf("json: %v\n%s", err, js)
			}
			listed := 0
			for _, w := range wfs {
				listed += len(w.Unexplained.FilesRead)
				for _, p := range w.Prompts {
					for _, c := range p.ToolCalls {
						listed += len(c.FilesRead)
					}
				}
			}
			if listed != tc.files {
				t.Errorf("the JSON lists %d files read, want every one of %d", listed, tc.files)
			}
		})
	}
}
