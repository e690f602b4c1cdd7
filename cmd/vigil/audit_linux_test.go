package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	libaudit "github.com/elastic/go-libaudit/v2"
	"github.com/elastic/go-libaudit/v2/rule"
	"github.com/elastic/go-libaudit/v2/rule/flags"

	"github.com/vigil-sensor/vigil/internal/testenv"
	"github.com/vigil-sensor/vigil/linux"
)

// auditState is what the audit source may change in the kernel and must give back.
type auditState struct {
	enabled, backlogLimit, pid uint32
	rules                      []string
}

func readAuditState(t *testing.T, c *libaudit.AuditClient) auditState {
	t.Helper()
	status, err := c.GetStatus()
	if err != nil {
		t.Fatal(err)
	}
	wires, err := c.GetRules()
	if err != nil {
		t.Fatal(err)
	}
	s := auditState{enabled: status.Enabled, backlogLimit: status.BacklogLimit, pid: status.PID}
	for _, w := range wires {
		text, err := rule.ToCommandLine(w, false)
		if err != nil {
			t.Fatal(err)
		}
		s.rules = append(s.rules, text)
	}
	return s
}

func (s auditState) vigilRules() int {
	n := 0
	for _, r := range s.rules {
		if slices.Contains(strings.Fields(r), "key="+linux.AuditKey) {
			n++
		}
	}
	return n
}

func (s auditState) same(o auditState) bool {
	return s.enabled == o.enabled && s.backlogLimit == o.backlogLimit && s.pid == o.pid && slices.Equal(s.rules, o.rules)
}

// auditControlClient opens a control connection and adds a rule of someone else's (as
// auditd's rule set would have), removed when the test ends.
func auditControlClient(t *testing.T) *libaudit.AuditClient {
	t.Helper()
	testenv.LockAudit(t)
	c, err := libaudit.NewAuditClient(nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := flags.Parse("-a always,exit -F arch=b64 -S chmod -F uid=54321 -k someone-elses")
	if err != nil {
		t.Fatal(err)
	}
	wire, err := rule.Build(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddRule(wire); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.DeleteRule(wire)
		c.Close()
	})
	return c
}

// The audit source gives the kernel back what it found, whether it is stopped with SIGTERM
// or killed with SIGKILL and started again: the rules it did not add untouched, its own
// gone, auditing and the backlog as they were.
func TestAuditStateRestoredAfterStopAndKill(t *testing.T) {
	c := auditControlClient(t)
	config := writeVigilConfig(t, t.TempDir(), 1, "", "source: audit\n")
	// A run an earlier test killed may have left its rules and state: a first start and
	// stop gives the kernel back what that run found, the baseline this test compares with.
	launchVigil(t, config).stop(t, syscall.SIGTERM)
	before := readAuditState(t, c)

	s := launchVigil(t, config)
	running := readAuditState(t, c)
	if running.vigilRules() == 0 || running.enabled != 1 || running.pid != uint32(s.cmd.Process.Pid) {
		t.Fatalf("while running: %+v", running)
	}
	s.stop(t, syscall.SIGTERM)
	if after := readAuditState(t, c); !after.same(before) {
		t.Fatalf("after SIGTERM:\n%+v\nwant\n%+v", after, before)
	}
	if _, err := os.Stat(linux.DefaultAuditStatePath); !os.IsNotExist(err) {
		t.Fatalf("audit state file after a clean stop: %v", err)
	}

	killed := launchVigil(t, config)
	killed.cmd.Process.Signal(syscall.SIGKILL)
	killed.cmd.Wait()
	left := readAuditState(t, c)
	if left.vigilRules() == 0 {
		t.Fatal("SIGKILL left no rule of Vigil's: nothing is tested")
	}
	if _, err := os.Stat(linux.DefaultAuditStatePath); err != nil {
		t.Fatalf("no audit state file after SIGKILL: %v", err)
	}
	next := launchVigil(t, config)
	// The killed run's exec rule excluded its own pid; the next start must have removed it.
	stale := fmt.Sprintf("pid!=%d", killed.cmd.Process.Pid)
	for _, r := range readAuditState(t, c).rules {
		if slices.Contains(strings.Fields(r), stale) {
			t.Errorf("the killed run's rule is still there after the next start: %s", r)
		}
	}
	next.stop(t, syscall.SIGTERM)
	if after := readAuditState(t, c); !after.same(before) {
		t.Fatalf("after SIGKILL and a restart:\n%+v\nwant\n%+v", after, before)
	}
}

// Beside another audit daemon (here the test, registered as auditd would be), the source
// listens on the multicast group, records the agent tree, and leaves the registration alone.
func TestAuditSourceBesideAnotherDaemon(t *testing.T) {
	c := auditControlClient(t)
	daemon, err := libaudit.NewAuditClient(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := daemon.SetPID(libaudit.WaitForReply); err != nil {
		t.Fatal(err)
	}
	defer daemon.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() { // a daemon reads its records
		for {
			select {
			case <-stop:
				return
			default:
				if _, err := daemon.Receive(true); err != nil {
					time.Sleep(5 * time.Millisecond)
				}
			}
		}
	}()
	before := readAuditState(t, c)

	s := launchVigil(t, writeVigilConfig(t, t.TempDir(), 1, "", "source: audit\n"))
	if !strings.Contains(s.stderr.String(), "another audit daemon is registered") {
		t.Errorf("no warning about the other daemon:\n%s", s.stderr)
	}
	if pid := readAuditState(t, c).pid; pid != before.pid {
		t.Fatalf("the audit pid changed to %d while Vigil ran beside pid %d", pid, before.pid)
	}
	work := t.TempDir()
	agent := bashAs(t, work, "codex")
	cmd := exec.Command(agent, "-c", "sleep 0.3; cat /etc/hostname >/dev/null")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("agent: %v: %s", err, out)
	}
	time.Sleep(500 * time.Millisecond)
	s.stop(t, syscall.SIGTERM)
	var sawOpen bool
	for _, l := range s.lines(t) {
		if str(l, "vigil.source") == "audit" && str(l, "event.action") == "open" && str(l, "file.path") == "/etc/hostname" &&
			num(l, "vigil.root.pid") == cmd.Process.Pid {
			sawOpen = true
		}
	}
	if !sawOpen {
		t.Errorf("no open of /etc/hostname by the agent tree (pid %d) read from the multicast group", cmd.Process.Pid)
	}
	if after := readAuditState(t, c); !after.same(before) {
		t.Fatalf("after stopping beside another daemon:\n%+v\nwant\n%+v", after, before)
	}
}

// With eBPF refused (the capabilities it needs dropped), auto falls back to the audit
// source and says why in one line.
func TestAutoFallsBackToAudit(t *testing.T) {
	auditControlClient(t)
	setpriv := testenv.LookPath(t, "setpriv")
	config := writeVigilConfig(t, t.TempDir(), 1, "", "")
	const drop = "-bpf,-perfmon,-sys_admin"
	cmd := exec.Command(setpriv, "--inh-caps="+drop, "--bounding-set="+drop, vigilBin, "run", "--config", config.path)
	s := startCommand(t, cmd, config)
	if !strings.Contains(s.stderr.String(), "falling back to the audit subsystem") || !strings.Contains(s.stderr.String(), "source=audit") {
		t.Fatalf("no fallback to audit:\n%s", s.stderr)
	}
	s.stop(t, syscall.SIGTERM)
	if _, err := os.Stat(filepath.Dir(config.jsonl)); err != nil {
		t.Fatal(err)
	}
}

// Each Linux source passes the start-up self-check for real, and the canary's events are
// the check's, not written.
func TestSelfCheckHealthyOnEachSource(t *testing.T) {
	auditControlClient(t)
	for _, source := range []string{"ebpf", "audit"} {
		t.Run(source, func(t *testing.T) {
			s := launchVigil(t, writeVigilConfig(t, t.TempDir(), 1, "", "source: "+source+"\n"))
			deadline := time.Now().Add(selfCheckTimeout + 5*time.Second)
			for !strings.Contains(s.stderr.String(), "self-check healthy") {
				if strings.Contains(s.stderr.String(), "self-check failed") || time.Now().After(deadline) {
					t.Fatalf("no healthy self-check:\n%s", s.stderr)
				}
				time.Sleep(50 * time.Millisecond)
			}
			s.stop(t, syscall.SIGTERM)
			for _, l := range s.lines(t) {
				if str(l, "gen_ai.agent.name") == selfCheckAgent {
					t.Fatalf("a canary event was written: %v", l)
				}
			}
		})
	}
}
