package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The auditd configuration: the audit daemon with rules equivalent to Vigil's hooks, for every
// process (audit cannot follow a process tree), as the research measured it
// (ebpf-feasibility.md §7 (d), with open, creat and openat2 added for Vigil's full open set).
// The kernel's audit state is read before, and restored after on every exit path (the driver's
// cleanups run on return and on SIGINT/SIGTERM).

// auditRuleKey tags the bench's rule, so that only it is deleted.
const auditRuleKey = "vigil-bench"

// auditRule is the rule, as auditctl arguments.
var auditRule = []string{"-a", "always,exit", "-F", "arch=b64", "-S", "openat,open,creat,openat2,execve,connect,sendto", "-k", auditRuleKey}

// auditBacklog is the research's backlog setting (a full backlog makes the kernel wait up to
// backlog_wait_time instead of losing records).
var auditBacklog = []string{"-b", "8192", "--backlog_wait_time", "60000"}

// auditState is the part of `auditctl -s` and `auditctl -l` the bench changes.
type auditState struct {
	Enabled         int      `json:"enabled"`
	Pid             int      `json:"pid"`
	BacklogLimit    int      `json:"backlog_limit"`
	BacklogWaitTime int      `json:"backlog_wait_time"`
	Lost            int      `json:"lost"`
	Rules           []string `json:"rules"`
}

func (s auditState) String() string {
	return fmt.Sprintf("enabled %d, pid %d, backlog_limit %d, backlog_wait_time %d, %d rules",
		s.Enabled, s.Pid, s.BacklogLimit, s.BacklogWaitTime, len(s.Rules))
}

// ensureAuditd installs the auditd package when auditd or auditctl is missing.
func ensureAuditd() error {
	_, e1 := exec.LookPath("auditd")
	_, e2 := exec.LookPath("auditctl")
	if e1 == nil && e2 == nil {
		return nil
	}
	fmt.Println("bench: auditd is not installed; apt-get install auditd")
	install := func() error {
		cmd := exec.Command("apt-get", "install", "-y", "--no-install-recommends", "auditd")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get install auditd: %w: %s", err, tail(out))
		}
		return nil
	}
	if err := install(); err != nil {
		if out, uerr := exec.Command("apt-get", "update").CombinedOutput(); uerr != nil {
			return fmt.Errorf("%w; apt-get update: %v: %s", err, uerr, tail(out))
		}
		if err := install(); err != nil {
			return err
		}
	}
	// The package may have started the daemon (on a machine with an init that runs it): the
	// bench starts its own, so a running one is an error in startAuditd, not stopped here.
	return nil
}

func tail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 600 {
		s = "…" + s[len(s)-600:]
	}
	return s
}

func auditctl(args ...string) (string, error) {
	out, err := exec.Command("auditctl", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("auditctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// readAuditState runs auditctl -s and -l.
func readAuditState() (auditState, error) {
	var s auditState
	out, err := auditctl("-s")
	if err != nil {
		return s, err
	}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		switch f[0] {
		case "enabled":
			s.Enabled = n
		case "pid":
			s.Pid = n
		case "backlog_limit":
			s.BacklogLimit = n
		case "backlog_wait_time":
			s.BacklogWaitTime = n
		case "lost":
			s.Lost = n
		}
	}
	out, err = auditctl("-l")
	if err != nil {
		return s, err
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l = strings.TrimSpace(l); l != "" && l != "No rules" {
			s.Rules = append(s.Rules, l)
		}
	}
	return s, nil
}

// auditdConf keeps the daemon's log in the bench's work directory, rotated so that a run
// with 200k audited opens per loadgen run cannot fill the disk; the rest are Debian's defaults.
const auditdConf = `local_events = yes
write_logs = yes
log_file = %s
log_group = root
log_format = ENRICHED
flush = INCREMENTAL_ASYNC
freq = 50
max_log_file = 256
num_logs = 2
priority_boost = 4
name_format = NONE
max_log_file_action = ROTATE
space_left = 75
space_left_action = IGNORE
admin_space_left = 50
admin_space_left_action = IGNORE
disk_full_action = IGNORE
disk_error_action = IGNORE
use_libwrap = no
tcp_listen_queue = 5
tcp_max_per_addr = 1
tcp_client_max_idle = 0
transport = TCP
distribute_network = no
q_depth = 2000
overflow_action = SYSLOG
max_restarts = 10
plugin_dir = %s
end_of_event_timeout = 2
`

// auditdRun is the running daemon with its rule; stop restores the saved state.
type auditdRun struct {
	cmd    *exec.Cmd
	dir    string
	saved  auditState
	exited chan error
	done   bool
	// Restored is the state after stop, for the report.
	Restored auditState
}

// startAuditd records the audit state, starts auditd (its own configuration, logs under dir)
// and adds the rule. The caller must call stop on every path; a failure here restores itself.
func startAuditd(dir string) (*auditdRun, error) {
	saved, err := readAuditState()
	if err != nil {
		return nil, fmt.Errorf("read audit state: %w", err)
	}
	if saved.Pid != 0 {
		return nil, fmt.Errorf("an audit daemon is already registered (pid %d): the bench does not replace it", saved.Pid)
	}
	conf := filepath.Join(dir, "auditd")
	plugins := filepath.Join(conf, "plugins.d")
	if err := os.MkdirAll(plugins, 0o750); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(conf, "auditd.conf"), fmt.Appendf(nil, auditdConf, filepath.Join(conf, "audit.log"), plugins), 0o640); err != nil {
		return nil, err
	}
	a := &auditdRun{dir: conf, saved: saved, exited: make(chan error, 1)}
	a.cmd = exec.Command("auditd", "-n", "-c", conf)
	var stderr bytes.Buffer
	a.cmd.Stdout, a.cmd.Stderr = &stderr, &stderr
	if err := a.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start auditd: %w", err)
	}
	go func() { a.exited <- a.cmd.Wait() }()
	fail := func(err error) (*auditdRun, error) {
		_, serr := a.stop()
		return nil, errors.Join(err, serr)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := readAuditState()
		if err == nil && st.Pid == a.cmd.Process.Pid {
			break
		}
		select {
		case err := <-a.exited:
			a.exited <- err
			return fail(fmt.Errorf("auditd exited at start (%v): %s", err, strings.TrimSpace(stderr.String())))
		default:
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("auditd (pid %d) not registered with the kernel after 15s: %s", a.cmd.Process.Pid, strings.TrimSpace(stderr.String())))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := auditctl(auditBacklog...); err != nil {
		return fail(err)
	}
	if _, err := auditctl(auditRule...); err != nil {
		return fail(err)
	}
	if _, err := auditctl("-e", "1"); err != nil {
		return fail(err)
	}
	return a, nil
}

func (a *auditdRun) pid() int { return 0 } // its CPU is not charged per run (it is not idle-waited either)

func (a *auditdRun) stop() (*recording, error) {
	if a.done {
		return nil, nil
	}
	a.done = true
	var errs []error
	// The rule first, so nothing more is queued for a daemon that is going away.
	if _, err := auditctl("-D", "-k", auditRuleKey); err != nil {
		errs = append(errs, err)
	}
	if a.cmd.Process != nil {
		a.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-a.exited:
		case <-time.After(10 * time.Second):
			a.cmd.Process.Kill()
			<-a.exited
		}
	}
	if _, err := auditctl("-e", strconv.Itoa(a.saved.Enabled)); err != nil {
		errs = append(errs, err)
	}
	if _, err := auditctl("-b", strconv.Itoa(a.saved.BacklogLimit), "--backlog_wait_time", strconv.Itoa(a.saved.BacklogWaitTime)); err != nil {
		errs = append(errs, err)
	}
	st, err := readAuditState()
	if err != nil {
		errs = append(errs, err)
	} else {
		a.Restored = st
		if st.Enabled != a.saved.Enabled || st.Pid != a.saved.Pid || len(st.Rules) != len(a.saved.Rules) {
			errs = append(errs, fmt.Errorf("audit state not restored: now %s, was %s", st, a.saved))
		}
	}
	os.RemoveAll(a.dir) // the daemon's logs: hundreds of MB per round
	return nil, errors.Join(errs...)
}
