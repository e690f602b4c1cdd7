package main

import (
	"path"
	"sort"
	"strconv"

	"github.com/vigil-sensor/vigil/proto"
)

// lineKey groups Vigil's lines by process and kind.
type lineKey struct {
	pid  int
	kind string
}

// pairEvents pairs each recorded event with the line Vigil wrote for it: same process, same
// kind, in order; an open also by its outcome and file name, a connect by its peer. pairs[i]
// is the line for truth[i] (nil: Vigil has none); extra are Vigil's lines for the recorded
// processes that no recorded event explains.
func pairEvents(truth []TruthEvent, kernel []*proto.Event) (pairs []*proto.Event, extra []*proto.Event) {
	kernel = expandMerged(kernel)
	lines := map[lineKey][]*proto.Event{}
	for _, e := range kernel {
		k := lineKey{e.Process.Pid, e.Event.Action}
		lines[k] = append(lines[k], e)
	}
	// In the order the events happened: a merged line is written when its run ends, after
	// lines of later events, but stands for opens from its first repeat on.
	for _, l := range lines {
		sort.SliceStable(l, func(i, j int) bool {
			if c := l[i].Timestamp.Compare(l[j].Timestamp); c != 0 {
				return c < 0
			}
			return l[i].Event.Sequence < l[j].Event.Sequence
		})
	}
	order := make([]int, len(truth))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return truth[order[a]].Time.Before(truth[order[b]].Time) })
	used := map[*proto.Event]bool{}
	cursor := map[lineKey]int{} // the first line of the key not used yet
	pairs = make([]*proto.Event, len(truth))
	for _, i := range order {
		te := truth[i]
		k := lineKey{te.Pid, te.Kind}
		l := lines[k]
		// Scan to the end: a line no recorded event explains stays behind the cursor, and a
		// bounded look-ahead from it would stop pairing everything after it.
		for j := cursor[k]; j < len(l); j++ {
			if used[l[j]] || !sameEvent(te, l[j]) {
				continue
			}
			used[l[j]] = true
			pairs[i] = l[j]
			break
		}
		for cursor[k] < len(l) && used[l[cursor[k]]] {
			cursor[k]++
		}
	}
	for _, e := range kernel {
		if !used[e] {
			extra = append(extra, e)
		}
	}
	return pairs, extra
}

// expandMerged stands a merged open line (vigil.merged) for its count of opens: it is
// replaced by that many copies, each paired with at most one recorded open like a line of
// its own.
func expandMerged(kernel []*proto.Event) []*proto.Event {
	expanded := kernel[:0:0]
	for _, e := range kernel {
		if e.Vigil.Merged == nil {
			expanded = append(expanded, e)
			continue
		}
		for range e.Vigil.Merged.Count {
			c := *e
			expanded = append(expanded, &c)
		}
	}
	return expanded
}

// sameEvent says whether Vigil's line can be the recorded event: process and kind already
// agree. An open must agree on failure and on the file's name (the name the caller gave, or
// the name of what the kernel opened: a symlink's target); a connect on the peer.
func sameEvent(te TruthEvent, e *proto.Event) bool {
	switch te.Kind {
	case sysOpen:
		if e.File == nil || (e.Event.Outcome == proto.OutcomeFailure) != te.Failed {
			return false
		}
		name := path.Base(e.File.Path)
		return name == path.Base(te.Path) || (te.FDPath != "" && name == path.Base(te.FDPath))
	case sysConnect, sysSend:
		return te.Peer == vigilPeer(e)
	case sysExec:
		return !te.Failed
	case sysFork, sysExit:
		return true
	}
	// A file mutation: the outcome, and the name of the file Vigil names as file.path (the
	// new name of a rename or link).
	if e.File == nil || (e.Event.Outcome == proto.OutcomeFailure) != te.Failed {
		return false
	}
	return path.Base(e.File.Path) == path.Base(te.Path)
}

// vigilPeer writes a connect line's destination the way strace writes a sockaddr.
func vigilPeer(e *proto.Event) string {
	d := e.Destination
	if d == nil {
		return ""
	}
	if d.Address != "" || (d.IP == "" && d.Port == 0) {
		return "unix:" + d.Address
	}
	if e.Network != nil && e.Network.Type == "ipv6" {
		return "[" + d.IP + "]:" + strconv.Itoa(d.Port)
	}
	return d.IP + ":" + strconv.Itoa(d.Port)
}
