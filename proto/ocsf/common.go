package ocsf

import (
	"cmp"
	"strconv"
	"strings"
	"sync"

	"github.com/vigil-sensor/vigil/proto"
)

// Class uids (category uid × 1000 + class number) of the classes Vigil writes.
const (
	classBase             = 0
	classFileActivity     = 1001
	classProcessActivity  = 1007
	classDetectionFinding = 2004
	classNetworkActivity  = 4001
)

// classNames are each class's caption and its category's, as the schema has them.
var classNames = map[int][2]string{
	classBase:             {"Base Event", "Uncategorized"},
	classFileActivity:     {"File System Activity", "System Activity"},
	classProcessActivity:  {"Process Activity", "System Activity"},
	classDetectionFinding: {"Detection Finding", "Findings"},
	classNetworkActivity:  {"Network Activity", "Network Activity"},
}

// activityOther is the activity every class has for what its own list does not name; the
// record's action is then activity_name.
const activityOther = 99

// Profiles named in metadata.profiles: host for device and actor, ai_operation for
// message_context (1.8.0 has that profile on Process Activity only, among the classes here).
const (
	profileHost        = "host"
	profileAIOperation = "ai_operation"
)

// event is one OCSF event: the attributes of every class Vigil writes, each omitted when the
// record has no value for it.
type event struct {
	ActivityID   int
	ActivityName string
	CategoryUID  int
	CategoryName string
	ClassUID     int
	ClassName    string
	TypeUID      int64
	Time         int64
	SeverityID   int
	Severity     string
	StatusID     *int
	Status       string
	StatusCode   string
	Duration     *int64
	// Count, StartTime and EndTime are a merged open's repeats (vigil.merged): how many, and
	// the first and last (ms since the epoch); 0 when absent.
	Count          uint64
	StartTime      int64
	EndTime        int64
	Metadata       metadata
	Device         *device
	Actor          *actor
	Process        *process
	LaunchTypeID   *int
	ExitCode       *int
	File           *file
	FileResult     *file
	DstEndpoint    *endpoint
	ConnectionInfo *connectionInfo
	FindingInfo    *findingInfo
	MessageContext *messageContext
	// unmapped is written after these, by appendUnmapped.
}

// metadata is the OCSF metadata object.
type metadata struct {
	Version string
	Product product
	// Profiles are the profiles whose attributes the event carries.
	Profiles []string
	// EventCode is event.action, LogName event.dataset, LogVersion vigil.schema (the native
	// schema), Sequence event.sequence.
	EventCode  string
	LogName    string
	LogVersion string
	Sequence   uint64
	// OriginalTime is @timestamp as written natively, a JSON string with its quotes: time
	// has milliseconds, this the nanoseconds.
	OriginalTime []byte
	// CorrelationUID is the tool call id (gen_ai.tool.call.id): the key that joins a tool
	// call's kernel events, its agent record and its alerts.
	CorrelationUID string
	// IsTruncated: a field was cut to fit the line (unmapped.vigil.truncated names it).
	IsTruncated bool
}

// product names Vigil.
type product struct {
	Name       string
	VendorName string
	Version    string
}

// device is the host the sensor runs on. type_id is required and Vigil does not know the
// kind of machine: 0 (Unknown).
type device struct {
	Hostname string
	BootUID  string
	TypeID   int
	Type     string
}

// actor is who did it: the process and its user, and the agent as the client application
// that initiated the activity (the schema's app_name, "distinct from the process").
type actor struct {
	AppName string
	Process *process
	User    *user
}

// user is the OCSF user object; numeric ids are strings, as natively.
type user struct {
	UID    string
	Name   string
	Groups []group
}

type group struct {
	UID string
}

// The native fields the mappings of every class use (JSON paths, as on the native line).
var (
	metadataPaths = pathsOf("@timestamp", "event.action", "event.dataset", "vigil.schema", "event.sequence")
	toolCallPath  = pathsOf("gen_ai.tool.call.id")
	hostPaths     = pathsOf("host.name", "host.boot_id")
	severityPaths = pathsOf("vigil.alert.severity", "event.severity")
	outcomePath   = pathsOf("event.outcome")
	errnoPath     = pathsOf("vigil.errno")
	agentNamePath = pathsOf("gen_ai.agent.name")
	userPaths     = pathsOf("user.id", "user.name")
	groupPath     = pathsOf("user.group.id")
	categoryPath  = pathsOf("event.category")
)

// mapping builds one OCSF event from one native record and remembers which native fields it
// used (their JSON paths), so that every other field goes to unmapped.
type mapping struct {
	e    *proto.Event
	out  event
	used pathSet
	// parts hold the objects out points to.
	parts parts
	// ts holds OriginalTime's bytes.
	ts [len(proto.TimeLayout) + 2]byte
}

// parts are the objects of one event, each in the role it has, so that the pooled mapping
// holds them and mapping a record allocates nothing: ten small objects a line were a tenth of
// its time, with the garbage collection they cost. Each is filled at most once per event.
type parts struct {
	device                 device
	actor                  actor
	process, self, parent  process
	exe, target, source    file
	user, owner            user
	group                  [1]group
	hash                   [1]fingerprint
	context                messageContext
	dst                    endpoint
	conn                   connectionInfo
	finding                findingInfo
	analytic               analytic
	statusID, launchTypeID int
	duration, createdTime  int64
}

// mappings are reused, with their used sets and parts.
var mappings = sync.Pool{New: func() any { return new(mapping) }}

// newMapping starts the mapping of e. It refuses a record whose @timestamp or process.start
// has no RFC 3339 form, as proto.MarshalJSON does. The caller releases the mapping.
func newMapping(e *proto.Event, sensorVersion string) (*mapping, error) {
	m := mappings.Get().(*mapping)
	ts, err := proto.AppendTime(m.ts[:0], "@timestamp", e.Timestamp)
	if err == nil && e.Process != nil && e.Process.Start != nil {
		// Mapped as milliseconds (created_time), but checked as the native line would.
		var start [len(proto.TimeLayout) + 2]byte
		_, err = proto.AppendTime(start[:0], "process.start", *e.Process.Start)
	}
	if err != nil {
		mappings.Put(m)
		return nil, err
	}
	m.e = e
	m.out.Metadata = metadata{
		Version:      Version,
		Product:      product{Name: "Vigil", VendorName: "vigil-sensor", Version: sensorVersion},
		EventCode:    e.Event.Action,
		LogName:      e.Event.Dataset,
		LogVersion:   cmp.Or(e.Vigil.Schema, proto.SchemaVersion), // as the native line has it
		Sequence:     e.Event.Sequence,
		OriginalTime: ts,
		IsTruncated:  len(e.Vigil.Truncated) > 0,
	}
	m.use(metadataPaths)
	if _, _, _, call := proto.GenAINames(e.GenAI); call != "" {
		m.out.Metadata.CorrelationUID = call
		m.use(toolCallPath)
	}
	if h := e.Host; h != nil && (h.Name != "" || h.BootID != "") {
		m.parts.device = device{Hostname: h.Name, BootUID: h.BootID, Type: "Unknown"}
		m.out.Device = &m.parts.device
		m.use(hostPaths)
	}
	return m, nil
}

// release returns m to mappings, holding nothing of its record.
func (m *mapping) release() {
	m.e, m.out, m.parts = nil, event{}, parts{}
	clear(m.used)
	mappings.Put(m)
}

// use marks native fields as mapped.
func (m *mapping) use(fields pathSet) {
	m.used.union(fields)
}

// classify sets the class, activity and the attributes every class shares: time, severity,
// status (unless the class gives status its own meaning) and the profiles in use.
func (m *mapping) classify(class, activity int, activityName string) {
	o := &m.out
	o.ClassUID, o.ActivityID, o.ActivityName = class, activity, activityName
	o.ClassName, o.CategoryName = classNames[class][0], classNames[class][1]
	o.CategoryUID = class / 1000
	o.TypeUID = int64(class)*100 + int64(activity)
	o.Time = m.e.Timestamp.UnixMilli()
	m.severity()
	if class != classDetectionFinding {
		m.status()
	}
	host, ai := o.Device != nil || o.Actor != nil, o.MessageContext != nil
	switch {
	case host && ai:
		o.Metadata.Profiles = profilesHostAI
	case host:
		o.Metadata.Profiles = profilesHost
	case ai:
		o.Metadata.Profiles = profilesAI
	}
}

// The lists of profiles an event can have, shared by all events (never modified).
var (
	profilesHost   = []string{profileHost}
	profilesAI     = []string{profileAIOperation}
	profilesHostAI = []string{profileHost, profileAIOperation}
)

// severityIDs are OCSF severity_id by the words of vigil.alert.severity.
var severityIDs = map[string]int{"low": 2, "medium": 3, "high": 4, "critical": 5}

// severity is the alert's own for a detection alert; Unknown (0) for the other lines that
// call for a look (untrusted telemetry: Vigil grades them with no severity); Informational
// (1) for everything else, which reports what happened without judging it.
func (m *mapping) severity() {
	o, e := &m.out, m.e
	switch {
	case e.Vigil.Alert != nil:
		word := e.Vigil.Alert.Severity
		if id, ok := severityIDs[word]; ok {
			o.SeverityID, o.Severity = id, strings.ToUpper(word[:1])+word[1:]
		} else {
			o.SeverityID, o.Severity = 99, word
		}
		// event.severity is the same grade as a number (ECS's risk scores).
		m.use(severityPaths)
	case e.Event.Kind == proto.KindAlert:
		o.SeverityID, o.Severity = 0, "Unknown"
	default:
		o.SeverityID, o.Severity = 1, "Informational"
	}
}

// statuses are OCSF status_id and its caption by event.outcome.
var statuses = map[string]struct {
	id      int
	caption string
}{
	proto.OutcomeUnknown: {0, "Unknown"},
	proto.OutcomeSuccess: {1, "Success"},
	proto.OutcomeFailure: {2, "Failure"},
}

// status is event.outcome, with vigil.errno (a failed call's errno) as status_code. An
// outcome the schema has no id for is Other (99), named in status as the schema asks.
func (m *mapping) status() {
	o, e := &m.out, m.e
	if e.Event.Outcome != "" {
		s, ok := statuses[e.Event.Outcome]
		if !ok {
			s.id, s.caption = 99, e.Event.Outcome
		}
		m.parts.statusID = s.id
		o.StatusID, o.Status = &m.parts.statusID, s.caption
		m.use(outcomePath)
	}
	if e.Vigil.Errno != 0 {
		o.StatusCode = strconv.Itoa(e.Vigil.Errno)
		m.use(errnoPath)
	}
}

// actorOf is the actor with process p (nil for none): the record's user and agent
// (gen_ai.agent.name); nil when it has none of the three.
func (m *mapping) actorOf(p *process) *actor {
	a := &m.parts.actor
	*a = actor{Process: p, User: m.userOf()}
	if g := m.e.GenAI; g != nil && g.Agent != nil && g.Agent.Name != "" {
		a.AppName = g.Agent.Name
		m.use(agentNamePath)
	}
	if a.Process == nil && a.User == nil && a.AppName == "" {
		return nil
	}
	return a
}

// userOf is user.*; nil without one.
func (m *mapping) userOf() *user {
	u := m.e.User
	if u == nil || (u.ID == "" && u.Name == "") {
		return nil
	}
	out := &m.parts.user
	*out = user{UID: u.ID, Name: u.Name}
	m.use(userPaths)
	if u.Group != nil && u.Group.ID != "" {
		m.parts.group[0] = group{UID: u.Group.ID}
		out.Groups = m.parts.group[:]
		m.use(groupPath)
	}
	return out
}
