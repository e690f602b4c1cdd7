package rules

import (
	"path"

	"github.com/vigil-sensor/vigil/proto"
)

// SecretReads tells which lines are secret reads exactly as the detector's secrets_read
// aggregates count them, for readers of the JSONL (vigil trace) that must flag what the alerts
// flag and nothing else: a successful open that reads (reads) a secret-looking file
// (SecretLooking: public CA bundles are not) by a program that is not the secret's own client
// (OwnClient). The reading program is the script a process runs when a line with argv said so
// (Detector.reader): npm's open of ~/.npmrc is npm's, not node's. Not safe for concurrent use.
type SecretReads struct {
	scripts *lru[*scriptRef]
}

// NewSecretReads remembers the scripts of at most maxScripts processes (0 or less: 4096, the
// detector's default); a forgotten process's opens are its executable's.
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
	if p := e.Process; p != nil && p.EntityID != "" && len(p.Args) > 0 && e.Event.Outcome != proto.OutcomeFailure &&
		(e.Event.Action == proto.ActionExec || e.Event.Action == proto.ActionFork) {
		if prog := Program(p.Executable, p.Args); prog != path.Base(p.Executable) {
			*s.scripts.getOrAdd(p.EntityID, func() *scriptRef { return new(scriptRef) }) = scriptRef{executable: p.Executable, program: prog}
		} else {
			s.scripts.remove(p.EntityID)
		}
		return false
	}
	if e.Event.Outcome == proto.OutcomeFailure || !reads(e) || !SecretLooking(e.File.Path) {
		return false
	}
	p := procOf(e)
	reader := Program(p.Executable, p.Args)
	if len(p.Args) == 0 && p.EntityID != "" {
		if ref, ok := s.scripts.get(p.EntityID); ok && ref.executable == p.Executable {
			reader = ref.program
		}
	}
	return !OwnClient(e.File.Path, reader)
}
