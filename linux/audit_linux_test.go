package linux

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/internal/testenv"
	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
)

// The kernel has one audit configuration: a second audit source would delete the first's
// rules as a killed run's, so it is refused, and the first keeps running.
func TestSecondAuditSourceIsRefused(t *testing.T) {
	testenv.LockAudit(t)
	opts := AuditOptions{Catalog: sensor.DefaultCatalog(), StatePath: filepath.Join(t.TempDir(), "state.json"), Log: zerolog.Nop()}
	first, err := NewAudit(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	opts.StatePath = filepath.Join(t.TempDir(), "other.json")
	if second, err := NewAudit(opts); err == nil {
		second.Close()
		t.Fatal("a second audit source started beside the first")
	} else if !strings.Contains(err.Error(), "another Vigil audit source is running") {
		t.Fatalf("refused with %v", err)
	}
	if rules, err := first.ctl.client.GetRules(); err != nil || len(rules) == 0 {
		t.Fatalf("the first source's rules after the refusal: %d, %v", len(rules), err)
	}
}

// Under the user scope, once an agent of a user has run, a command its tool shell starts at
// once (a grandchild of the root, forked before any rule of its parent could exist) is
// audited from its first instant.
func TestAuditUserScopeSeesGrandchildrenAtOnce(t *testing.T) {
	c := startAudit(t, AuditOptions{Scope: AuditScopeUser})

	agent, dir := agentShell(t, "codex")
	first := exec.Command(agent, "-c", "sleep 0.3")
	if err := first.Run(); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, "the first agent's exit", 5*time.Second, func(e *proto.Event) bool {
		return e.Event.Action == proto.ActionExit && e.Process.Pid == first.Process.Pid
	})
	marker := writeFile(t, dir, "grandchild-reads-this")
	second := exec.Command(agent, "-c", "/bin/sh -c 'cat "+marker+"; true'")
	if out, err := second.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	c.waitFor(t, "the grandchild's open of the marker", 5*time.Second, func(e *proto.Event) bool {
		return isOpenOf(marker)(e) && e.Vigil.Root.Pid == second.Process.Pid && e.Process.Pid != second.Process.Pid
	})
}

// startAudit starts an audit source with opts (the default catalog unless given, a private
// state path, the test's log) and streams its events into a collector until the test ends.
func startAudit(t *testing.T, opts AuditOptions) *collector {
	t.Helper()
	testenv.LockAudit(t)
	if opts.Catalog == nil {
		opts.Catalog = sensor.DefaultCatalog()
	}
	opts.StatePath = filepath.Join(t.TempDir(), "audit-state.json")
	opts.Log = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	src, err := NewAudit(opts)
	if err != nil {
		t.Fatal(err)
	}
	return collect(t, src, nil)
}
