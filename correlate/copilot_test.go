package correlate

import (
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
	"github.com/vigil-sensor/vigil/sensor/agents"
)

// TestStitchCopilotParallel binds the two shells of a parallel batch of the Copilot sample run
// (docs/agents/samples/copilot/parallel-capture, content capture on): their windows overlap,
// so each is bound by its argv holding its call's command, and the session comes from the
// shell's COPILOT_AGENT_SESSION_ID.
func TestStitchCopilotParallel(t *testing.T) {
	const (
		copilot = 17688 // the native copilot process: OTLP sender, parent of the shells
		session = "70fc51c7-10a5-474b-bce6-ca618bf36b11"
	)
	procs := map[int]sensor.ProcessInfo{copilot: {Pid: copilot, Name: "MainThread", RootPid: copilot, Agent: agents.CopilotCLI}}
	s := NewStitcher(StitcherOptions{Lookup: func(pid int) (sensor.ProcessInfo, bool) { p, ok := procs[pid]; return p, ok }})
	spans, _ := adaptFile(t, "0001_capture_traces.json", ContentTypeJSON, readSample(t, "copilot/0001_capture_traces.json"))
	s.AddTelemetry(TelemetryBatch{Events: spans, Transport: TransportOTLPHTTP, SenderPid: copilot})
	shell := func(pid int, clock, cmd string) *proto.Event {
		e := kev{action: proto.ActionExec, pid: pid, ppid: copilot, root: copilot, args: []string{"/bin/bash", "--norc", "--noprofile", "-c", cmd},
			join: agents.JoinKeysOf("COPILOT_AGENT_SESSION_ID=" + session)}.event()
		e.Timestamp = ts("2026-12-05T06:28:" + clock + "Z")
		return e
	}
	a := shell(18357, "06.798625", "echo PAR_A pid=$$; sleep 1; echo A done")
	b := shell(18363, "06.957817", "echo PAR_B pid=$$; sleep 1; echo B done")
	s.Push(a)
	s.Push(b)
	stRelease(s, time.Now(), true)
	for _, c := range []struct {
		e    *proto.Event
		call string
	}{{a, "call_mock_0_0"}, {b, "call_mock_0_1"}} {
		got := boundOf(c.e)
		if got.binding != proto.BindingCommand || got.call != c.call || got.tool != "bash" || got.conversation != session ||
			got.prompt != "a678c1ebf8174e2e04e94219e6db13b1" {
			t.Errorf("%s: %+v", c.call, got)
		}
	}
}
