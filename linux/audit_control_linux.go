package linux

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	libaudit "github.com/elastic/go-libaudit/v2"
	"github.com/elastic/go-libaudit/v2/rule"
	"github.com/elastic/go-libaudit/v2/rule/flags"
	"golang.org/x/sys/unix"
)

// AuditKey tags every audit rule Vigil adds. A rule without it is never touched, so Vigil
// coexists with auditd's rule set; a rule with it left by a run that was killed is removed
// at the next start.
const AuditKey = "vigil"

// auditSettings are the kernel audit settings Vigil changes while it runs and restores.
type auditSettings struct {
	Enabled      uint32 `json:"enabled"`
	BacklogLimit uint32 `json:"backlog_limit"`
	// Pid is the sensor that saved them: a registered audit pid equal to it is this
	// sensor's own registration, left by a run that was killed, not another daemon's.
	Pid int `json:"pid"`
}

// auditBacklogLimit is the kernel queue Vigil asks for: records wait there while the reader
// catches up, and the kernel counts what does not fit as lost.
const auditBacklogLimit = 8192

// auditControl owns the kernel's audit configuration while the source runs: it saves the
// settings (in statePath too, so a run killed with SIGKILL is undone by the next start),
// adds Vigil's rules, and on Close deletes exactly those rules and restores the settings.
type auditControl struct {
	client    *libaudit.AuditClient
	statePath string
	saved     auditSettings
	// otherDaemon is the pid of another registered audit daemon (auditd), 0 if none.
	otherDaemon int
	// rules are Vigil's installed rules by their command line.
	rules map[string][]byte
}

// openAuditControl saves the current settings and removes rules a killed earlier run left.
func openAuditControl(statePath string) (*auditControl, error) {
	client, err := libaudit.NewAuditClient(nil)
	if err != nil {
		return nil, fmt.Errorf("open audit control socket: %w", err)
	}
	c := &auditControl{client: client, statePath: statePath, rules: map[string][]byte{}}
	status, err := client.GetStatus()
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("read audit status: %w", err)
	}
	if status.Enabled == 2 {
		client.Close()
		return nil, errors.New("the kernel's audit configuration is locked (enabled=2, auditctl -e 2): no rule can be added until reboot")
	}
	c.saved = auditSettings{Enabled: status.Enabled, BacklogLimit: status.BacklogLimit, Pid: os.Getpid()}
	if prev, err := readAuditState(statePath); err != nil {
		client.Close()
		return nil, err
	} else if prev != nil {
		// A run that was killed changed the settings: restore what it found, not what it set.
		if int(status.PID) == prev.Pid {
			status.PID = 0
		}
		c.saved.Enabled, c.saved.BacklogLimit = prev.Enabled, prev.BacklogLimit
	}
	if status.PID != 0 && int(status.PID) != os.Getpid() && processExists(int(status.PID)) {
		c.otherDaemon = int(status.PID)
	}
	if _, err := c.deleteOwnRules(); err != nil {
		client.Close()
		return nil, err
	}
	if err := writeAuditState(statePath, c.saved); err != nil {
		client.Close()
		return nil, err
	}
	return c, nil
}

// enable turns auditing on with a backlog large enough for bursts.
func (c *auditControl) enable() error {
	if c.saved.Enabled == 0 {
		if err := c.client.SetEnabled(true, libaudit.WaitForReply); err != nil {
			return fmt.Errorf("enable kernel auditing: %w", err)
		}
	}
	if c.saved.BacklogLimit < auditBacklogLimit {
		if err := c.client.SetBacklogLimit(auditBacklogLimit, libaudit.WaitForReply); err != nil {
			return fmt.Errorf("set audit backlog limit: %w", err)
		}
	}
	return nil
}

// add installs a rule written as auditctl would (-a always,exit ... ), tagged with AuditKey.
func (c *auditControl) add(text string) error {
	text += " -k " + AuditKey
	if _, ok := c.rules[text]; ok {
		return nil
	}
	r, err := flags.Parse(text)
	if err != nil {
		return fmt.Errorf("parse audit rule %q: %w", text, err)
	}
	wire, err := rule.Build(r)
	if err != nil {
		return fmt.Errorf("build audit rule %q: %w", text, err)
	}
	if err := c.client.AddRule(wire); err != nil {
		return fmt.Errorf("add audit rule %q: %w", text, err)
	}
	c.rules[text] = wire
	return nil
}

// remove deletes a rule add installed.
func (c *auditControl) remove(text string) error {
	text += " -k " + AuditKey
	wire, ok := c.rules[text]
	if !ok {
		return nil
	}
	delete(c.rules, text)
	if err := c.client.DeleteRule(wire); err != nil {
		return fmt.Errorf("delete audit rule %q: %w", text, err)
	}
	return nil
}

// deleteOwnRules deletes every rule in the kernel tagged with AuditKey and no other.
func (c *auditControl) deleteOwnRules() (int, error) {
	rules, err := c.client.GetRules()
	if err != nil {
		return 0, fmt.Errorf("list audit rules: %w", err)
	}
	n := 0
	for _, wire := range rules {
		text, err := rule.ToCommandLine(wire, false)
		if err != nil || !hasAuditKey(text) {
			continue // a rule go-libaudit cannot read is not one Vigil wrote
		}
		if err := c.client.DeleteRule(wire); err != nil {
			return n, fmt.Errorf("delete audit rule %q: %w", text, err)
		}
		n++
	}
	clear(c.rules)
	return n, nil
}

// hasAuditKey reports whether a rule, as rule.ToCommandLine writes it, carries Vigil's key.
func hasAuditKey(text string) bool {
	return slices.Contains(strings.Fields(text), "key="+AuditKey)
}

// status reads the kernel's lost counter and backlog.
func (c *auditControl) status() (*libaudit.AuditStatus, error) {
	s, err := c.client.GetStatus()
	if err != nil {
		return nil, fmt.Errorf("read audit status: %w", err)
	}
	return s, nil
}

// Close deletes Vigil's rules, restores the saved settings and forgets the state file.
func (c *auditControl) Close() error {
	_, err := c.deleteOwnRules()
	errs := []error{err}
	if c.saved.BacklogLimit < auditBacklogLimit {
		errs = append(errs, c.client.SetBacklogLimit(c.saved.BacklogLimit, libaudit.WaitForReply))
	}
	if c.saved.Enabled == 0 {
		errs = append(errs, c.client.SetEnabled(false, libaudit.WaitForReply))
	}
	if err := errors.Join(errs...); err != nil {
		c.client.Close()
		return fmt.Errorf("restore audit settings (state kept in %s for the next start): %w", c.statePath, err)
	}
	errs = append(errs, c.client.Close())
	if err := os.Remove(c.statePath); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("remove audit state %s: %w", c.statePath, err))
	}
	return errors.Join(errs...)
}

// auditArch is the -F arch value of the machine's own syscall table.
func auditArch() string {
	if runtime.GOARCH == "arm64" || runtime.GOARCH == "amd64" {
		return "b64"
	}
	return "b32"
}

func processExists(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// readAuditState reads the settings a run that did not stop cleanly saved, or nil.
func readAuditState(path string) (*auditSettings, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read audit state %s: %w", path, err)
	}
	var s auditSettings
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("read audit state %s: %w", path, err)
	}
	return &s, nil
}

// writeAuditState saves the settings to restore, 0600 in a 0700 directory.
func writeAuditState(path string, s auditSettings) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create audit state directory: %w", err)
	}
	data, _ := json.Marshal(s)
	tmp := path + ".tmp." + strconv.Itoa(os.Getpid())
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("write audit state: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write audit state %s: %w", path, err)
	}
	return nil
}
