package linux

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
)

// Copies of agent binaries. The kernel matches an agent by its executable's name and by
// the device and inode of its installed files; a copy (cp claude /tmp/x) has neither. It
// keeps the installed file's size, though, so the kernel holds an exec of a file of an
// installed agent's size as pending, and user space compares the file's SHA-256 with the
// installed agent's: equal, the tree is that agent's; different, it is dropped. A copy that
// was changed by even one byte is another program and is not an agent.

// maxHeldRecords bounds the records of one pending copy kept while its hash is computed;
// maxHeldTrees bounds the trees held at once. Records past either bound are counted
// (lost kind "copy_held") and the tree is judged without them.
const (
	maxHeldRecords = 4096
	maxHeldTrees   = 64
)

// installedExe is an installed agent executable a copy may be of.
type installedExe struct {
	agent string
	id    sensor.HashJob
	// sum hashes the installed file once, on first need: most machines never run a copy.
	sum func() (string, string)
}

// copyVerdict is the outcome of hashing a pending root's executable.
type copyVerdict struct {
	root  uint32
	start uint64
	agent string // "" when the file is no installed agent's copy
}

// heldTree is a pending copy's records, kept until its verdict.
type heldTree struct {
	start   uint64
	records []*proto.Event
}

// copies recognises copies of the installed agent executables.
type copies struct {
	procRoot string
	bySize   map[int64][]installedExe
	verdicts chan copyVerdict
	// one hash at a time: hashing reads the whole file (a Bun binary is ~200 MB).
	slot chan struct{}
	// confirmed and rejected count the verdicts applied.
	confirmed, rejected atomic.Uint64
}

func newCopies(procRoot string, installed []sensor.ExeIdentity) *copies {
	c := &copies{procRoot: procRoot, bySize: map[int64][]installedExe{}, verdicts: make(chan copyVerdict, maxHeldTrees), slot: make(chan struct{}, 1)}
	for _, x := range installed {
		fi, err := os.Stat(x.Path)
		if err != nil || fi.Size() != x.Size || x.Size <= 0 {
			continue
		}
		id, ok := sensor.FileIDOfInfo(fi)
		if !ok {
			continue
		}
		job := sensor.HashJob{ID: id, Path: x.Path}
		c.bySize[x.Size] = append(c.bySize[x.Size], installedExe{agent: x.Agent, id: job,
			sum: sync.OnceValues(func() (string, string) { return sensor.HashExecutable(procRoot, job, 0) })})
	}
	return c
}

// sizes are the sizes the kernel holds execs of.
func (c *copies) sizes() []int64 {
	out := make([]int64, 0, len(c.bySize))
	for size := range c.bySize {
		out = append(out, size)
	}
	return out
}

// verify hashes the executable a pending root ran (the file with the exec's identity,
// through the live process or its path) off the caller's goroutine and sends the verdict.
func (c *copies) verify(root uint32, start uint64, exe *proto.Exe, executable string) {
	go func() {
		c.slot <- struct{}{}
		defer func() { <-c.slot }()
		c.verdicts <- copyVerdict{root: root, start: start, agent: c.agentOf(int(root), exe, executable)}
	}()
}

// agentOf is the agent whose installed executable has the same size and SHA-256 as the file
// the exec ran, or "".
func (c *copies) agentOf(pid int, exe *proto.Exe, executable string) string {
	if exe == nil {
		return ""
	}
	// The size picks the candidates; the hash below reads only the file with the exec's
	// identity, whichever of the two names reached it.
	fi, err := os.Stat(filepath.Join(c.procRoot, strconv.Itoa(pid), "exe"))
	if err != nil {
		if fi, err = os.Stat(executable); err != nil {
			return ""
		}
	}
	candidates := c.bySize[fi.Size()]
	if len(candidates) == 0 {
		return ""
	}
	sum, _ := sensor.HashExecutable(c.procRoot, sensor.HashJob{ID: sensor.FileIDOf(exe), Pid: pid, Path: executable}, 0)
	if sum == "" {
		return ""
	}
	for _, x := range candidates {
		if ref, _ := x.sum(); ref == sum {
			return x.agent
		}
	}
	return ""
}

// holdCopy starts judging a pending root that is no interpreter: its records are kept until
// the hash of its executable says whose copy it is. Past maxHeldTrees it is dropped at once.
func (s *EBPF) holdCopy(root uint32, start uint64, exec *proto.Event) {
	if len(s.held) >= maxHeldTrees {
		s.heldDrops.Add(1)
		s.reject(root, start)
		return
	}
	s.held[root] = &heldTree{start: start, records: []*proto.Event{exec}}
	s.copies.verify(root, start, exec.Vigil.Exe, exec.Process.Executable)
}

// hold keeps a record of a tree whose verdict is being computed.
func (s *EBPF) hold(h *heldTree, e *proto.Event) {
	if len(h.records) >= maxHeldRecords {
		s.heldDrops.Add(1)
		return
	}
	h.records = append(h.records, e)
}

// applyCopyVerdicts applies the verdicts computed so far: a confirmed copy's tree becomes
// that agent's in the kernel and its held records are emitted; any other is dropped.
func (s *EBPF) applyCopyVerdicts(emit func(*proto.Event)) {
	for {
		select {
		case v := <-s.copies.verdicts:
			h := s.held[v.root]
			delete(s.held, v.root)
			if v.agent == "" {
				s.copies.rejected.Add(1)
				s.reject(v.root, v.start)
				continue
			}
			s.copies.confirmed.Add(1)
			id := s.opts.Catalog.ID(v.agent)
			s.confirmed[v.root] = verdict{agent: id, start: v.start}
			s.confirm(v.root, v.start, id)
			if h == nil {
				continue
			}
			for _, e := range h.records {
				setAgent(e, v.agent)
				s.deliver(e, emit)
			}
		default:
			return
		}
	}
}

// dropHeld counts the records still held when the source stops.
func (s *EBPF) dropHeld() {
	for root, h := range s.held {
		s.heldDrops.Add(uint64(len(h.records)))
		delete(s.held, root)
	}
}
