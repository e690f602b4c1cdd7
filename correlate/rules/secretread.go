package rules

import (
	"path"

	"github.com/vigil-sensor/vigil/proto"
)

// SecretReads tells which lines are secret reads, as the detector's secrets_read aggregates
// count them and as readers of the JSONL (vigil trace) must flag them: a successful open that
// reads (reads) a secret-looking file (SecretLooking: public CA bundles are not) by a program
// that is not the secret's own client (OwnClient, AgentOwnRead). The reading program is the
// script a process runs when a line with argv said so: the open lines of `node /usr/bin/npm
// publish` carry no argv and by their executable alone are node's, so SecretReads remembers,
// from each exec or fork line, the script its process runs (npm's open of ~/.npmrc is npm's,
// not node's). Not safe for concurrent use.
type SecretReads struct {
	scripts *lru[*scriptRef]
}

// scriptRef is what a process runs when it runs a script: its interpreter and the script's
// program name (Program).
type scriptRef struct{ executable, program string }

// NewSecretReads remembers the scripts of at most maxScripts processes (0 or less: 4096); a
// forgotten process's opens are its executable's.
func NewSecretReads(maxScripts int) *SecretReads {
	if maxScripts <= 0 {
		maxScripts = 4096
	}
	return &SecretReads{scripts: newLRU[*scriptRef](maxScripts)}
}

// Observe takes the next line in write order and reports whether it is a secret read.
func (s *SecretReads) Observe(e *proto.Event) bool {
	if e == nil {
		return false
	}
	s.rememberScript(e)
	return e.Event.Outcome != proto.OutcomeFailure && reads(e) && SecretLooking(e.File.Path) &&
		!OwnClient(e.File.Path, s.Reader(e)) && !AgentOwnRead(e)
}

// rememberScript remembers, from a line with argv (an exec, a fork), the program of a process
// that runs a script, and forgets a process that runs none (an exec replaced the script).
func (s *SecretReads) rememberScript(e *proto.Event) {
	p := e.Process
	if p == nil || p.EntityID == "" || len(p.Args) == 0 || e.Event.Outcome == proto.OutcomeFailure ||
		(e.Event.Action != proto.ActionExec && e.Event.Action != proto.ActionFork) {
		return
	}
	prog := Program(p.Executable, p.Args)
	if prog == path.Base(p.Executable) {
		s.scripts.remove(p.EntityID)
		return
	}
	*s.scripts.getOrAdd(p.EntityID, func() *scriptRef { return new(scriptRef) }) = scriptRef{executable: p.Executable, program: prog}
}

// Reader is the program of a line's process: event.process.program, or, for a process seen
// running a script with the same interpreter, the script's (npm, not node).
func (s *SecretReads) Reader(e *proto.Event) string {
	p := procOf(e)
	if len(p.Args) == 0 && p.EntityID != "" {
		if ref, ok := s.scripts.get(p.EntityID); ok && ref.executable == p.Executable {
			return ref.program
		}
	}
	return Program(p.Executable, p.Args)
}
