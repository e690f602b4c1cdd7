package darwin

import (
	"github.com/rs/zerolog"
	json "github.com/segmentio/encoding/json"
)

// What eslogger's envelope says about delivery. EndpointSecurity numbers the messages it
// delivers to a client, per event type (seq_num, message version 2+) and across all types
// (global_seq_num, 4+); a gap is the only evidence that ES dropped messages for the client
// (eslogger has no other way to say so). Numbering restarts with every client, that is with
// every eslogger process.

// Lost kinds this file reports (vigil.lost), besides the ES event names of per-type gaps.
const (
	// lostSeqGap counts drops global_seq_num shows and no seq_num gap attributed to a kind
	// (the last messages of a kind before the session ended, or of a kind Vigil does not map).
	lostSeqGap = "seq_gap"
	// lostRestart counts eslogger restarts: what ES delivered between two clients is unknown.
	lostRestart = "eslogger_restart"
	// lostSchemaChange counts changes of schema_version: not a loss, but from there on lines
	// may decode without fields the new schema moved.
	lostSchemaChange = "schema_change"
)

// knownSchema is the schema_version of every eslogger line seen so far (macOS 13 to 27 beta).
const knownSchema = 1

// session follows one ES client's sequence numbers.
type session struct {
	log  zerolog.Logger
	lost func(kind string, n uint64)
	// fresh: the session is known to start at the client's first message (a live eslogger
	// just started), so numbers above 0 on the first messages are drops.
	fresh bool

	started, fromZero bool
	hasGlobal         bool
	lastGlobal        uint64
	lastSeq           map[string]uint64 // by mapped event kind only: the input names the keys
	// globalMissing counts drops by global_seq_num, typedMissing those also found by seq_num,
	// undecodable the lines that could not be read (each took a number too).
	globalMissing, typedMissing, undecodable uint64
	warnedNoSeq                              bool
}

func newSession(log zerolog.Logger, fresh bool, lost func(string, uint64)) *session {
	return &session{log: log, lost: lost, fresh: fresh, lastSeq: map[string]uint64{}}
}

// observe accounts for one decoded message.
func (s *session) observe(m *message) {
	if m.GlobalSeqNum != nil {
		g := *m.GlobalSeqNum
		switch {
		case !s.started:
			s.fromZero = s.fresh || g == 0
			if s.fromZero {
				s.globalMissing += g
			}
		case !s.hasGlobal:
		case g <= s.lastGlobal:
			// Numbering went back: a capture holding a later eslogger run after an earlier one.
			s.log.Warn().Uint64("global_seq_num", g).Uint64("previous", s.lastGlobal).
				Msg("eslogger restarted within the input: what ES delivered between the two runs is unknown")
			s.restart()
			s.lost(lostRestart, 1)
			s.observe(m)
			return
		default:
			s.globalMissing += g - s.lastGlobal - 1
		}
		s.hasGlobal, s.lastGlobal = true, g
	}
	if !s.started && m.GlobalSeqNum == nil {
		s.fromZero = s.fresh
	}
	s.started = true
	s.observeType(m)
}

// observeType counts the gaps of m's own event type.
func (s *session) observeType(m *message) {
	if m.SeqNum == nil {
		if !s.warnedNoSeq {
			s.warnedNoSeq = true
			s.log.Warn().Int("version", m.Version).Msg("eslogger messages carry no seq_num: drops cannot be detected")
		}
		return
	}
	if _, mapped := eventTypes[m.kind]; !mapped {
		return
	}
	seq := *m.SeqNum
	last, seen := s.lastSeq[m.kind]
	var missing uint64
	switch {
	case !seen && s.fromZero:
		missing = seq
	case seen && seq > last:
		missing = seq - last - 1
	}
	s.lastSeq[m.kind] = seq
	if missing > 0 {
		s.typedMissing += missing
		s.lost(m.kind, missing)
	}
}

// unreadable accounts for a line that could not be decoded. Its sequence numbers are read if
// they can be (a field of another type elsewhere in the line); otherwise the line is assumed
// to have taken one number (a line cut or past the length bound), so the gap it leaves is not
// counted as a drop as well.
func (s *session) unreadable(line []byte) {
	var n struct {
		EventType    int                        `json:"event_type"`
		SeqNum       *uint64                    `json:"seq_num"`
		GlobalSeqNum *uint64                    `json:"global_seq_num"`
		Event        map[string]json.RawMessage `json:"event"`
	}
	if line == nil || json.Unmarshal(line, &n) != nil || n.GlobalSeqNum == nil {
		s.undecodable++
		return
	}
	m := &message{EventType: n.EventType, SeqNum: n.SeqNum, GlobalSeqNum: n.GlobalSeqNum}
	if len(n.Event) == 1 {
		for kind := range n.Event {
			if eventTypes[kind] == n.EventType {
				m.kind = kind
			}
		}
	}
	s.observe(m)
}

// end reports the drops global_seq_num showed that no kind's seq_num accounted for.
func (s *session) end() {
	accounted := s.typedMissing + s.undecodable
	if s.globalMissing > accounted {
		s.lost(lostSeqGap, s.globalMissing-accounted)
	}
}

// restart ends this session and starts the next one in its place.
func (s *session) restart() {
	s.end()
	*s = *newSession(s.log, false, s.lost)
}

// schemaWatch reports changes of the JSON schema and of ES's message version across every
// line of the source, eslogger restarts included.
type schemaWatch struct {
	log             zerolog.Logger
	seen            bool
	schema, version int
}

// observe returns whether m changed the schema version.
func (w *schemaWatch) observe(m *message) bool {
	if !w.seen {
		w.seen, w.schema, w.version = true, m.SchemaVersion, m.Version
		if m.SchemaVersion != knownSchema {
			w.log.Warn().Int("schema_version", m.SchemaVersion).Int("known", knownSchema).
				Msg("eslogger writes a schema Vigil was not built for: fields may be missing or misread")
		}
		w.log.Info().Int("schema_version", m.SchemaVersion).Int("version", m.Version).Msg("eslogger schema")
		return false
	}
	if m.Version != w.version {
		w.log.Warn().Int("version", m.Version).Int("previous", w.version).Msg("EndpointSecurity message version changed")
		w.version = m.Version
	}
	if m.SchemaVersion == w.schema {
		return false
	}
	w.log.Warn().Int("schema_version", m.SchemaVersion).Int("previous", w.schema).
		Msg("eslogger schema_version changed: fields may be missing or misread from here on")
	w.schema = m.SchemaVersion
	return true
}
