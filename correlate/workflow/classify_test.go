package workflow

import (
	"slices"
	"testing"

	"github.com/vigil-sensor/vigil/correlate/startup"
	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor/agents"
)

var (
	clRoot = wfProc{pid: 10, ppid: 1, root: 10, agent: agents.ClaudeCode, name: "claude", exe: "/usr/bin/claude", cwd: "/w"}
	clSh   = wfProc{pid: 11, ppid: 10, root: 10, agent: agents.ClaudeCode, name: "bash", exe: "/usr/bin/bash",
		args: []string{"bash", "-c", "make"}, cwd: "/w"}
	clCat = wfProc{pid: 12, ppid: 10, root: 10, agent: agents.ClaudeCode, name: "cat", exe: "/usr/bin/cat",
		args: []string{"cat", "x"}, cwd: "/w"}
	clSSH = wfProc{pid: 13, ppid: 10, root: 10, agent: agents.ClaudeCode, name: "ssh", exe: "/usr/bin/ssh",
		args: []string{"ssh", "host"}, cwd: "/w"}
	clCurl = wfProc{pid: 14, ppid: 10, root: 10, agent: agents.ClaudeCode, name: "curl", exe: "/usr/bin/curl",
		args: []string{"curl", "https://example.com"}, cwd: "/w"}
	clSession = wfBinding{session: "S", how: proto.BindingNone}
	clCall    = wfBinding{session: "S", prompt: "p1", tool: "Bash", call: "c1", how: proto.BindingTraceParent, confidence: "high"}
)

// bind adds the binding record that binds the line e to call c1 late.
func (f *wfFixture) bind(ms int, e *proto.Event) {
	f.add(proto.BindingRecord{Time: wfAt(ms), Sequence: e.Event.Sequence, Pid: e.Process.Pid, Agent: agents.ClaudeCode,
		SessionID: "S", PromptID: "p1", ToolName: "Bash", CallID: "c1", Binding: proto.BindingCommand, Confidence: "medium",
		LateMs: 5000}.Event())
}

func findStartup(a Activity, pid int) *StartupReads {
	i := slices.IndexFunc(a.StartupReads, func(r StartupReads) bool { return r.Pid == pid })
	if i < 0 {
		return nil
	}
	return &a.StartupReads[i]
}

// A start-up read is counted in the StartupReads of the activity its line lands in, binding
// records applied, under the process image that made it; the trackers follow write order, not
// time order.
func TestBuildCountsStartupReadsWhereTheirLineLands(t *testing.T) {
	var f wfFixture
	f.prompt(0, clRoot, "S", "p1", "build")
	// bash runs unbound; a binding record later binds its exec and its first library read to
	// c1, not its locale read.
	exec := f.exec(1000, clSh, clSession)
	lib := f.open(1001, clSh, "/usr/lib/x86_64-linux-gnu/libtinfo.so.6", "read", "O_RDONLY|O_CLOEXEC", clSession)
	f.open(1002, clSh, "/usr/lib/x86_64-linux-gnu/libc.so.6", "read", "O_RDONLY|O_CLOEXEC", clCall)
	f.open(1003, clSh, "/usr/lib/locale/locale-archive", "read", "O_RDONLY|O_CLOEXEC", clSession)
	f.open(1004, clSh, "/etc/bash.bashrc", "read", "O_RDONLY", clCall)
	// cat, bound from the start: its exec is written before its library read, whose clock
	// reads earlier (another CPU). In time order the read would come first and be the read of
	// a process whose exec was never seen.
	f.exec(2000, clCat, clCall)
	f.open(1999, clCat, "/usr/lib/x86_64-linux-gnu/libc.so.6", "read", "O_RDONLY|O_CLOEXEC", clCall)
	f.open(2001, clCat, "/w/x", "read", "O_RDONLY", clCall)
	f.exit(2002, clCat, 0, clCall)
	f.bind(3000, exec)
	f.bind(3001, lib)

	wfs, stats := BuildStats(f.events, Options{})
	if len(wfs) != 1 || len(wfs[0].Prompts) != 1 || len(wfs[0].Prompts[0].ToolCalls) != 1 {
		t.Fatalf("workflows %+v", wfs)
	}
	if stats.ProcessesForgotten != 0 {
		t.Errorf("stats %+v", stats)
	}
	call, un := wfs[0].Prompts[0].ToolCalls[0], wfs[0].Unexplained
	if got := wfProcSummary(call.Processes); !slices.Equal(got, []string{"11 /usr/bin/bash exit=none command", "12 /usr/bin/cat exit=0 traceparent"}) {
		t.Errorf("call processes %q", got)
	}
	sh := findStartup(call.Activity, 11)
	if sh == nil || sh.Total != 3 || sh.Kinds[startup.Loader] != 2 || sh.Kinds[startup.Shell] != 1 || sh.Kinds[startup.Locale] != 0 ||
		sh.EntityID != "ent11" || sh.Process != "bash" || !sh.ExecTime.Equal(wfAt(1000)) || !sh.Time.Equal(wfAt(1001)) {
		t.Errorf("bash's start-up reads in the call: %+v", sh)
	}
	cat := findStartup(call.Activity, 12)
	if cat == nil || cat.Total != 1 || cat.Kinds[startup.Loader] != 1 || !cat.ExecTime.Equal(wfAt(2000)) {
		t.Errorf("cat's start-up reads in the call: %+v", cat)
	}
	if got := wfFileSummary(call.FilesRead); !slices.Equal(got, []string{"/w/x x1"}) {
		t.Errorf("call reads %q: start-up reads listed", got)
	}
	// The locale read stayed unbound: counted apart, as the same image's, in the unexplained
	// activity, which lists no file.
	loc := findStartup(un, 11)
	if len(un.StartupReads) != 1 || loc == nil || loc.Total != 1 || loc.Kinds[startup.Locale] != 1 || !loc.ExecTime.Equal(wfAt(1000)) {
		t.Errorf("unexplained start-up reads %+v", un.StartupReads)
	}
	if len(un.FilesRead) != 0 || len(un.Processes) != 0 || un.Empty() {
		t.Errorf("unexplained %+v", un)
	}

	// Without the binding records, the two reads they bound are unexplained.
	var unbound []*proto.Event
	for _, e := range f.events {
		if _, ok := proto.BindingRecordOf(e); !ok {
			unbound = append(unbound, e)
		}
	}
	w := Build(unbound, Options{})[0]
	if r := findStartup(w.Unexplained, 11); r == nil || r.Total != 2 || r.Kinds[startup.Loader] != 1 || r.Kinds[startup.Locale] != 1 {
		t.Errorf("unbound: unexplained start-up reads %+v", w.Unexplained.StartupReads)
	}
}

// A secret read is never counted as a start-up read, whatever its kind: a shell sourcing .env
// before it forks, a secret under a directory named locale.
func TestBuildNeverFoldsSecretReads(t *testing.T) {
	var f wfFixture
	f.exec(1000, clSh, clCall)
	f.open(1001, clSh, "/usr/lib/x86_64-linux-gnu/libc.so.6", "read", "O_RDONLY|O_CLOEXEC", clCall)
	f.open(1002, clSh, "/w/.env", "read", "O_RDONLY", clCall)
	f.open(1003, clSh, "/w/locale/.env", "read", "O_RDONLY", clCall)
	f.open(1004, clSh, "/etc/bash.bashrc", "read", "O_RDONLY", clCall)
	w := Build(f.events, Options{})[0]
	call := w.Prompts[0].ToolCalls[0]
	if got := wfFileSummary(call.FilesRead); !slices.Equal(got, []string{"/w/.env x1 secret", "/w/locale/.env x1 secret"}) {
		t.Errorf("reads %q", got)
	}
	if r := findStartup(call.Activity, 11); len(call.StartupReads) != 1 || r == nil || r.Total != 2 ||
		r.Kinds[startup.Loader] != 1 || r.Kinds[startup.Shell] != 1 {
		t.Errorf("start-up reads %+v", call.StartupReads)
	}
}

// File.Secret is a secret read as the alerts count them, not a secret-looking path: a public
// CA bundle, a failed open and a secret's own client are not; cat reading a private key is, and
// is listed apart from ssh's read of it.
func TestBuildSecretMeansSecretRead(t *testing.T) {
	var f wfFixture
	for _, p := range []wfProc{clCurl, clSSH, clCat} {
		f.exec(1000+p.pid, p, clCall)
		f.connect(1020+p.pid, p, "93.184.216.34", 443, clCall) // no longer loading: nothing below is start-up
	}
	f.open(2000, clCurl, "/etc/ssl/certs/ca-certificates.crt", "read", "O_RDONLY", clCall)
	f.open(2001, clCurl, "/etc/ssl/certs/ssl-cert-snakeoil.pem", "read", "O_RDONLY", clCall)
	o := f.open(2002, clCat, "/home/dev/.aws/credentials", "read", "O_RDONLY", clCall)
	o.Event.Outcome, o.Vigil.Errno = proto.OutcomeFailure, 2
	f.open(2003, clSSH, "/home/dev/.ssh/id_rsa", "read", "O_RDONLY", clCall)
	f.open(2004, clCat, "/home/dev/.ssh/id_rsa", "read", "O_RDONLY", clCall)
	f.open(2005, clSSH, "/home/dev/.ssh/id_rsa", "read", "O_RDONLY", clCall)
	call := Build(f.events, Options{})[0].Prompts[0].ToolCalls[0]
	if got := wfFileSummary(call.FilesRead); !slices.Equal(got, []string{
		"/etc/ssl/certs/ca-certificates.crt x1", "/etc/ssl/certs/ssl-cert-snakeoil.pem x1", "/home/dev/.aws/credentials x1",
		"/home/dev/.ssh/id_rsa x2", "/home/dev/.ssh/id_rsa x1 secret",
	}) {
		t.Errorf("reads %q", got)
	}
	if i := slices.IndexFunc(call.FilesRead, func(f File) bool { return f.Failed }); i < 0 || call.FilesRead[i].Path != "/home/dev/.aws/credentials" {
		t.Errorf("failed open not listed as such: %+v", call.FilesRead)
	}
	if i := slices.IndexFunc(call.FilesRead, func(f File) bool { return f.Secret }); i < 0 || call.FilesRead[i].Pid != 12 {
		t.Errorf("the secret read names %+v, want cat", call.FilesRead)
	}
	if len(call.StartupReads) != 0 {
		t.Errorf("start-up reads %+v", call.StartupReads)
	}
}

// The trackers follow a bounded number of processes; BuildStats counts those forgotten, whose
// later start-up reads are listed.
func TestBuildStatsForgottenProcesses(t *testing.T) {
	var f wfFixture
	a := clCat
	b := clCurl
	f.exec(1000, a, clCall)
	f.exec(1001, b, clCall)
	f.open(1002, a, "/usr/lib/liba.so.1", "read", "O_RDONLY", clCall)
	f.open(1003, b, "/usr/lib/libb.so.1", "read", "O_RDONLY", clCall)
	wfs, stats := BuildStats(f.events, Options{MaxProcesses: 1})
	if stats.ProcessesForgotten != 1 {
		t.Errorf("forgot %d processes, want 1", stats.ProcessesForgotten)
	}
	call := wfs[0].Prompts[0].ToolCalls[0]
	if got := wfFileSummary(call.FilesRead); !slices.Equal(got, []string{"/usr/lib/liba.so.1 x1"}) {
		t.Errorf("reads %q", got)
	}
	if r := findStartup(call.Activity, b.pid); len(call.StartupReads) != 1 || r == nil || r.Kinds[startup.Loader] != 1 {
		t.Errorf("start-up reads %+v", call.StartupReads)
	}
	if _, stats := BuildStats(f.events, Options{}); stats.ProcessesForgotten != 0 {
		t.Errorf("default bound: forgot %d", stats.ProcessesForgotten)
	}
}
