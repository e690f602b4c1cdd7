package ocsf

import "strconv"

// findingInfo is the OCSF finding_info object of a detection alert.
type findingInfo struct {
	UID      string
	Title    string
	Desc     string
	Analytic *analytic
}

// analytic is the detection rule.
type analytic struct {
	UID    string
	Name   string
	TypeID int
	Type   string
}

const activityFindingCreate = 1

var (
	rulePaths = pathsOf("rule.id", "rule.name", "rule.description")
	kindPath  = pathsOf("event.kind")
)

// detectionFinding maps a detection rule's alert to Detection Finding (2004), activity
// Create: a new finding. finding_info.uid is required and an alert has no id of its own; it
// is the alert line's @timestamp and event.sequence ("2025-11-24T08:31:07.215400000Z/1121"),
// which no other line of the host has: a run numbers each line once, and a restarted run
// writes at other instants. The rule is the analytic (type Rule); the lines that matched
// (vigil.alert.sequences), the evidence and the ATT&CK ids stay in unmapped under their
// native names. status_id means the finding's state in this class, which Vigil does not
// track: it is not set.
func (m *mapping) detectionFinding() {
	e, o := m.e, &m.out
	ts := o.Metadata.OriginalTime
	fi := &m.parts.finding
	*fi = findingInfo{UID: string(ts[1:len(ts)-1]) + "/" + strconv.FormatUint(e.Event.Sequence, 10)}
	if r := e.Rule; r != nil {
		fi.Title, fi.Desc = r.Name, r.Description
		m.parts.analytic = analytic{UID: r.ID, Name: r.Name, TypeID: 1, Type: "Rule"}
		fi.Analytic = &m.parts.analytic
		m.use(rulePaths)
	}
	o.FindingInfo = fi
	o.Actor = m.actorOf(nil)
	m.use(kindPath)
	m.classify(classDetectionFinding, activityFindingCreate, "Create")
}
