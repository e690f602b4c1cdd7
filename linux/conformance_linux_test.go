package linux

import (
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/internal/testenv"
	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
	"github.com/vigil-sensor/vigil/sensor/sourcetest"
)

// The conformance suite (sensor/sourcetest) against each Linux source, for real: the same
// canary agent tree, run while the source runs, must come out as the same events.

func TestEBPFSourceConformance(t *testing.T) {
	requireKernel(t)
	runConformance(t, "ebpf", func(cat *sensor.Catalog, log zerolog.Logger) (sensor.Source, error) {
		return NewEBPF(Options{Catalog: cat, Log: log})
	})
}

func TestAuditSourceConformance(t *testing.T) {
	testenv.LockAudit(t)
	runConformance(t, "audit", func(cat *sensor.Catalog, log zerolog.Logger) (sensor.Source, error) {
		return NewAudit(AuditOptions{Catalog: cat, StatePath: filepath.Join(t.TempDir(), "audit-state.json"), Log: log})
	})
}

// runConformance starts a source, runs the canary tree and a look-alike outside every tree,
// and checks what the source emitted.
func runConformance(t *testing.T, name string, start func(*sensor.Catalog, zerolog.Logger) (sensor.Source, error)) {
	src, err := start(sensor.DefaultCatalog(), zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatalf("start %s source: %v", name, err)
	}
	c := collect(t, src, nil)

	ln := listen(t, "tcp4", "127.0.0.1:0")
	addr := netip.MustParseAddrPort(ln.Addr().String())
	agent, dir := agentShell(t, "codex")
	outsider, _ := agentShell(t, "not-an-agent")
	marker := writeFile(t, dir, "marker.txt")
	// The pause first: the audit source scopes a root's own syscalls once it has read the
	// root's exec (docs/schema.md, "The audit source").
	script := fmt.Sprintf("sleep 0.5; exec 3<>/dev/tcp/%s/%d; exec 3>&-; cat %s >/dev/null", addr.Addr(), addr.Port(), marker)

	other := exec.Command(outsider, "-c", script)
	if err := other.Run(); err != nil {
		t.Fatalf("outsider: %v", err)
	}
	root := exec.Command(agent, "-c", script)
	if err := root.Run(); err != nil {
		t.Fatalf("canary: %v", err)
	}
	rootPid := root.Process.Pid
	c.waitFor(t, "the canary root's exit", 10*time.Second, func(e *proto.Event) bool {
		return e.Event.Action == proto.ActionExit && e.Process.Pid == rootPid
	})
	sourcetest.Check(t, name, c.snapshot(), sourcetest.Tree{
		Agent: "codex", RootPid: rootPid, RootExe: agent, ChildExe: "/usr/bin/cat", Marker: marker,
		Connect: addr, Outsider: other.Process.Pid,
	})
}

// An installed agent executable (the catalog names its path) is audited from its first
// instant: a connect right after its exec is recorded, with no pause for the source to read
// the exec and add the process's own rules.
func TestAuditFollowsInstalledAgentFromItsFirstInstant(t *testing.T) {
	agent, _ := agentShell(t, "installed-agent")
	cat := sensor.DefaultCatalog()
	cat.Merge([]sensor.Agent{{Name: "installed-agent", Paths: []string{agent}}}, nil)
	c := startAudit(t, AuditOptions{Catalog: cat})
	addr := netip.MustParseAddrPort(listen(t, "tcp4", "127.0.0.1:0").Addr().String())
	cmd := exec.Command(agent, "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/%d", addr.Addr(), addr.Port()))
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, "the installed agent's immediate connect", 5*time.Second, func(e *proto.Event) bool {
		return e.Event.Action == proto.ActionConnect && e.Process.Pid == cmd.Process.Pid && e.Destination != nil &&
			e.Destination.Port == int(addr.Port())
	})
}
