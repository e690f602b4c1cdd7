// Package compact is the compact kernel line: a process's context that does not change
// (its executable, argv, working directory, start, hash, parent, user name and group, boot,
// its tree root's entity id)
// is written on its first kernel line in a file, and its later kernel lines leave out what
// is unchanged and say so with vigil.compact. An open line of a flood then carries what
// differs from one open to the next (time, file, thread, binding) and the keys a SIEM rule
// needs on every line (docs/schema.md, "Compact lines"), not the same ~500 bytes of process
// context thousands of times.
//
// Writer decides, on the sensor's side, what each line leaves out; Restorer puts it back
// when a file is read (vigil trace, vigil query --jsonl), so that a restored line equals
// the event that was written. Every file is self-contained: the writer starts over at each
// rotation (and at each start of the sensor), so a process's context is stated again in
// every file its lines reach.
package compact

import (
	"slices"
	"time"

	"github.com/vigil-sensor/vigil/proto"
)

// context is what a compact line may leave out: the process's fields that stay the same
// from one of its lines to the next. Strings and slices share the event's memory, which is
// never written after the line is.
type context struct {
	executable string
	args       []string
	argsCount  int
	cwd        string
	start      *time.Time
	hash       *proto.Hash
	parent     *proto.ParentProcess
	userName   string
	group      *proto.Group
	bootID     string
	rootEntity string
}

// contextOf reads e's context. e has a Process.
func contextOf(e *proto.Event) context {
	p := e.Process
	c := context{executable: p.Executable, args: p.Args, argsCount: p.ArgsCount, cwd: p.WorkingDirectory,
		start: p.Start, hash: p.Hash, parent: p.Parent}
	if e.User != nil {
		c.userName, c.group = e.User.Name, e.User.Group
	}
	if e.Host != nil {
		c.bootID = e.Host.BootID
	}
	if e.Vigil.Root != nil {
		c.rootEntity = e.Vigil.Root.EntityID
	}
	return c
}

// equal reports whether two contexts would be written the same.
func (c *context) equal(o *context) bool {
	return c.executable == o.executable && slices.Equal(c.args, o.args) && c.argsCount == o.argsCount &&
		c.cwd == o.cwd && equalPtr(c.start, o.start, time.Time.Equal) &&
		equalPtr(c.hash, o.hash, func(a, b proto.Hash) bool { return a == b }) &&
		equalPtr(c.parent, o.parent, func(a, b proto.ParentProcess) bool { return a == b }) &&
		c.userName == o.userName && equalPtr(c.group, o.group, func(a, b proto.Group) bool { return a == b }) &&
		c.bootID == o.bootID && c.rootEntity == o.rootEntity
}

// equalPtr: both nil, or both set and eq.
func equalPtr[T any](a, b *T, eq func(T, T) bool) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a == b || eq(*a, *b)
}

// kernelProcessLine reports whether e is a line compaction applies to: a kernel line with a
// process identity. Agent, correlator and detection lines are always whole.
func kernelProcessLine(e *proto.Event) bool {
	return e.Event.Dataset == proto.DatasetKernel && e.Process != nil && e.Process.EntityID != ""
}
