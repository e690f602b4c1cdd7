package linux

import (
	"strconv"
	"testing"
	"time"

	"github.com/elastic/go-libaudit/v2/auparse"
)

func auditMsg(t *testing.T, typ auparse.AuditMessageType, seq int) *auparse.AuditMessage {
	t.Helper()
	m, err := auparse.Parse(typ, "audit(1796442674.479:"+strconv.Itoa(seq)+"): x=1")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestAuditGroupsHandOverAtEOEAndCountGaps(t *testing.T) {
	var got [][]*auparse.AuditMessage
	g := newAuditGroups(time.Second, func(m []*auparse.AuditMessage) { got = append(got, m) })
	now := time.Now()
	// A standalone record that never gets an EOE must not hold the next event.
	g.push(auditMsg(t, auparse.AUDIT_CONFIG_CHANGE, 10), now)
	g.push(auditMsg(t, auparse.AUDIT_SYSCALL, 11), now)
	g.push(auditMsg(t, auparse.AUDIT_PATH, 11), now)
	g.push(auditMsg(t, auparse.AUDIT_EOE, 11), now)
	if len(got) != 1 || len(got[0]) != 2 {
		t.Fatalf("after serial 11's EOE: %d groups handed over, want 1 of 2 records", len(got))
	}
	g.expire(now.Add(2 * time.Second))
	if len(got) != 2 || got[1][0].Sequence != 10 {
		t.Fatalf("expired standalone record not handed over: %d groups", len(got))
	}
	// Serials 12..13 arrive out of order, 14 never does.
	g.push(auditMsg(t, auparse.AUDIT_SYSCALL, 13), now)
	g.push(auditMsg(t, auparse.AUDIT_SYSCALL, 12), now)
	g.push(auditMsg(t, auparse.AUDIT_SYSCALL, 15), now)
	if g.lost != 0 {
		t.Fatalf("lost %d before the gap window passed", g.lost)
	}
	g.push(auditMsg(t, auparse.AUDIT_SYSCALL, 15+auditGapWindow+1), now)
	if g.lost != 1 {
		t.Fatalf("lost = %d, want 1 (serial 14)", g.lost)
	}
	if g.next != 16 {
		t.Fatalf("next = %d, want 16", g.next)
	}
}
