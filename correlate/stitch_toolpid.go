package correlate

import "github.com/vigil-sensor/vigil/proto"

// Tool pids. An agent that puts no key in its shells' environment may still name the process
// it started for a call: Gemini CLI appends "Process Group PGID: <pid>" to a shell call's
// output (the shell calls setsid, so its pid is its group's), and a background call's
// tool_call log has metadata.pid. The pid alone could be reused, so it binds only the start
// (fork or exec) of a direct child of the session's own agent process, inside the call's
// window; the shell's descendants inherit the binding.

// notePID remembers the process c's agent named for it.
func (s *Stitcher) notePID(c *toolCall, pid int) {
	if pid <= 0 || c.pid == pid {
		return
	}
	c.pid = pid
	s.toolPids.put(pid, c)
}

// pidBinding binds a process the agent named for a running call.
func (s *Stitcher) pidBinding(e *proto.Event) *binding {
	if e.Event.Action != proto.ActionFork && e.Event.Action != proto.ActionExec || e.Process.Parent == nil {
		return nil
	}
	c, ok := s.toolPids.get(e.Process.Pid)
	if !ok || c.pid != e.Process.Pid {
		return nil
	}
	ss, ok := s.sessions.get(c.session)
	if !ok || !ss.agentPids[e.Process.Parent.Pid] {
		return nil
	}
	from, to, ok := c.window()
	if !ok || e.Timestamp.Before(from) || e.Timestamp.After(to) {
		return nil
	}
	return &binding{call: c, how: proto.BindingToolPID, confidence: "high"}
}
