package main

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/internal/testenv"
	"github.com/vigil-sensor/vigil/sensor/install"
)

// unitCapabilities is the CapabilityBoundingSet of the systemd unit vigil install writes, as
// setpriv's list (bpf,perfmon,...).
func unitCapabilities(t *testing.T) string {
	t.Helper()
	_, unit, err := install.ServiceFile("linux", install.DefaultBinary)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(unit))
	for sc.Scan() {
		if caps, ok := strings.CutPrefix(sc.Text(), "CapabilityBoundingSet="); ok {
			var names []string
			for _, c := range strings.Fields(caps) {
				names = append(names, "+"+strings.ToLower(strings.TrimPrefix(c, "CAP_")))
			}
			return strings.Join(names, ",")
		}
	}
	t.Fatal("the unit sets no CapabilityBoundingSet")
	return ""
}

// The unit's capability set is enough: each Linux source, started with exactly those
// capabilities and no way to gain others (as systemd starts the service), passes the
// start-up self-check (an agent tree's exec, open and connect all came through).
func TestUnitCapabilitiesSuffice(t *testing.T) {
	auditControlClient(t)
	setpriv := testenv.LookPath(t, "setpriv")
	caps := unitCapabilities(t)
	for _, source := range []string{"ebpf", "audit"} {
		t.Run(source, func(t *testing.T) {
			config := writeVigilConfig(t, t.TempDir(), 1, "", "source: "+source+"\n")
			cmd := exec.Command(setpriv, "--inh-caps=-all", "--bounding-set=-all,"+caps, "--no-new-privs",
				vigilBin, "run", "--config", config.path)
			s := startCommand(t, cmd, config)
			deadline := time.Now().Add(selfCheckTimeout + 5*time.Second)
			for !strings.Contains(s.stderr.String(), "self-check healthy") {
				if strings.Contains(s.stderr.String(), "self-check failed") || time.Now().After(deadline) {
					t.Fatalf("with the unit's capabilities (%s) the %s source is not healthy:\n%s", caps, source, s.stderr)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if !strings.Contains(s.stderr.String(), "source="+source) {
				t.Fatalf("the sensor did not run the %s source:\n%s", source, s.stderr)
			}
			s.stop(t, syscall.SIGTERM)
		})
	}
}
