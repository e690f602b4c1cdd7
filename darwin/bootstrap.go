package darwin

import (
	"cmp"
	"os"
	"slices"

	"github.com/vigil-sensor/vigil/sensor"
	"github.com/vigil-sensor/vigil/sensor/tree"
)

// procSnap is one process of the start-up snapshot (kern.proc.all and kern.procargs2).
type procSnap struct {
	Pid, PPid int
	// Start is the process's start in ns since the epoch (p_starttime, microseconds): the
	// same identity ES messages give (start_time).
	Start      uint64
	Name       string // p_comm
	Executable string // the exec path kern.procargs2 starts with; "" when unreadable
	Args       []string
	UID, GID   int
}

// seedTrees finds the agent trees already running in a snapshot by running it through the
// tracker as if each process's fork and exec had just been seen, parents before children (by
// start time): an agent's exec roots a tree, its descendants join it, and a nested agent stays
// in the outer tree, exactly as with live events. selfPid (the sensor) and its descendants
// are never followed. It returns the processes followed, for the process table.
//
// Orphans reparented to launchd leave their tree, as with /proc on Linux: the snapshot has
// only current parents.
func seedTrees(t *tree.Tracker, procs []procSnap, selfPid int) []sensor.ProcessInfo {
	procs = slices.Clone(procs)
	slices.SortFunc(procs, func(a, b procSnap) int {
		return cmp.Or(cmp.Compare(a.Start, b.Start), cmp.Compare(a.Pid, b.Pid))
	})
	starts := make(map[int]uint64, len(procs))
	for _, p := range procs {
		starts[p.Pid] = p.Start
	}
	excluded := map[int]bool{}
	var seeded []sensor.ProcessInfo
	for _, p := range procs {
		if p.Pid == selfPid || excluded[p.PPid] {
			excluded[p.Pid] = true
			continue
		}
		self := tree.Proc{Pid: p.Pid, Start: p.Start}
		t.Fork(tree.Proc{Pid: p.PPid, Start: starts[p.PPid]}, self)
		member, ok := t.Exec(self, imageAt(p.Executable), p.Args)
		if !ok {
			continue
		}
		seeded = append(seeded, sensor.ProcessInfo{
			Pid: p.Pid, PPid: p.PPid, StartBootNs: p.Start, Name: p.Name, Executable: p.Executable,
			Args: p.Args, UID: p.UID, GID: p.GID, RootPid: member.Root.Pid, Agent: member.Agent,
		})
	}
	return seeded
}

// imageAt is the tree filter's view of the file at path, stat'ed now: its identity matches an
// installed agent's even under another name.
func imageAt(path string) tree.Image {
	img := tree.Image{Filename: path, Path: path, Size: -1}
	if path == "" {
		return img
	}
	if fi, err := os.Stat(path); err == nil {
		if id, ok := sensor.FileIDOfInfo(fi); ok {
			img.Dev, img.Ino, img.Size = id.Dev, id.Ino, fi.Size()
		}
	}
	return img
}
