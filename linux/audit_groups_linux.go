package linux

import (
	"time"

	"github.com/elastic/go-libaudit/v2/auparse"
)

// auditGroups joins the records of one audit event (one serial) and counts the serials that
// never arrived. go-libaudit's Reassembler hands events over in serial order only, so a
// record that ends no event (a CONFIG_CHANGE written when Vigil edits its own rules, an AVC)
// held every later event until its 2 s timeout; here an event is handed over as soon as
// its EOE arrives, and a group without one when it expires.
//
// Every syscall event ends with an EOE record (audit_log_exit). Serials are assigned only to
// records the kernel logs, in increasing order, so a serial that has not arrived once
// auditGapWindow later ones have is counted as lost.
type auditGroups struct {
	open     map[uint32]*auditGroup
	complete func(msgs []*auparse.AuditMessage)
	timeout  time.Duration

	// next is the lowest serial not yet seen; ahead holds serials seen above it.
	next  uint32
	ahead map[uint32]bool
	lost  uint64
}

type auditGroup struct {
	msgs    []*auparse.AuditMessage
	expires time.Time
}

// auditGapWindow is how far serials may arrive out of order (records of events logged on
// different CPUs interleave in the kernel's queue) before a missing one is counted lost.
const auditGapWindow = 1024

func newAuditGroups(timeout time.Duration, complete func([]*auparse.AuditMessage)) *auditGroups {
	return &auditGroups{open: map[uint32]*auditGroup{}, complete: complete, timeout: timeout, ahead: map[uint32]bool{}}
}

// push adds a record; an EOE hands its group over.
func (g *auditGroups) push(m *auparse.AuditMessage, now time.Time) {
	g.observe(m.Sequence)
	grp := g.open[m.Sequence]
	if m.RecordType == auparse.AUDIT_EOE {
		if grp != nil {
			delete(g.open, m.Sequence)
			g.complete(grp.msgs)
		}
		return
	}
	if grp == nil {
		grp = &auditGroup{expires: now.Add(g.timeout)}
		g.open[m.Sequence] = grp
	}
	grp.msgs = append(grp.msgs, m)
}

// expire hands over the groups whose EOE did not come in time (all of them when now is
// the zero time: the source is stopping).
func (g *auditGroups) expire(now time.Time) {
	for seq, grp := range g.open {
		if now.IsZero() || now.After(grp.expires) {
			delete(g.open, seq)
			g.complete(grp.msgs)
		}
	}
}

// observe tracks which serials arrived and counts those skipped.
func (g *auditGroups) observe(seq uint32) {
	if g.next == 0 {
		g.next = seq
	}
	if seq < g.next || g.ahead[seq] {
		return // a further record of a serial already seen
	}
	g.ahead[seq] = true
	for g.ahead[g.next] {
		delete(g.ahead, g.next)
		g.next++
	}
	for seq > g.next+auditGapWindow {
		g.lost++ // g.next never came
		g.next++
		for g.ahead[g.next] {
			delete(g.ahead, g.next)
			g.next++
		}
	}
}
