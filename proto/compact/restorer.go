package compact

import (
	"errors"
	"fmt"

	"github.com/vigil-sensor/vigil/proto"
)

// ErrUnstated is returned (wrapped) by Restore for a compact line whose process's context
// was never stated before it: a file cut at its start, or lines read out of order.
var ErrUnstated = errors.New("compact line of a process whose context was not stated before it")

// Restorer puts the context back into compact lines, reading a file's lines in order.
type Restorer struct {
	stated map[string]context
	max    int
}

// NewRestorer returns a Restorer that remembers at most max processes
// (DefaultMaxProcesses when max ≤ 0).
func NewRestorer(max int) *Restorer {
	if max <= 0 {
		max = DefaultMaxProcesses
	}
	return &Restorer{stated: map[string]context{}, max: max}
}

// Restore fills a compact line's context from its process's last stated one and clears
// vigil.compact, so e reads as the event the sensor wrote; a line stating a context is
// remembered. A compact line with no stated context before it is left as it is, with an
// error wrapping ErrUnstated: its other fields are still good.
func (r *Restorer) Restore(e *proto.Event) error {
	if !kernelProcessLine(e) {
		return nil
	}
	id := e.Process.EntityID
	if e.Event.Action == proto.ActionExit {
		defer delete(r.stated, id)
	}
	if !e.Vigil.Compact {
		if _, ok := r.stated[id]; !ok && len(r.stated) >= r.max {
			clear(r.stated)
		}
		r.stated[id] = contextOf(e)
		return nil
	}
	c, ok := r.stated[id]
	if !ok {
		return fmt.Errorf("restore line %d (process %s): %w", e.Event.Sequence, id, ErrUnstated)
	}
	p := e.Process
	p.Executable, p.Args, p.ArgsCount, p.WorkingDirectory = c.executable, c.args, c.argsCount, c.cwd
	p.Start, p.Hash, p.Parent = c.start, c.hash, c.parent
	if c.userName != "" || c.group != nil {
		if e.User == nil {
			e.User = &proto.User{}
		}
		e.User.Name, e.User.Group = c.userName, c.group
	}
	if c.bootID != "" {
		if e.Host == nil {
			e.Host = &proto.Host{}
		}
		e.Host.BootID = c.bootID
	}
	if c.rootEntity != "" && e.Vigil.Root != nil {
		e.Vigil.Root.EntityID = c.rootEntity
	}
	e.Vigil.Compact = false
	return nil
}
