package ocsf

import (
	"path"
	"time"

	"github.com/vigil-sensor/vigil/proto"
)

// file is the OCSF file object.
type file struct {
	Name   string
	Path   string
	TypeID int
	Type   string
	Size   *int64
	Owner  *user
	Hashes []fingerprint
}

// fingerprint is a file hash.
type fingerprint struct {
	AlgorithmID int
	Algorithm   string
	Value       string
}

// File type ids. A path alone does not say what it names: Unknown unless the call does.
const (
	fileTypeUnknown    = 0
	fileTypeFolder     = 2
	fileTypeSymlink    = 7
	fileTypeExecutable = 8
)

var fileTypeNames = map[int]string{fileTypeUnknown: "Unknown", fileTypeFolder: "Folder", fileTypeSymlink: "Symbolic Link"}

// File System Activity (1001) activities.
const (
	activityCreate      = 1
	activityUpdate      = 3
	activityDelete      = 4
	activityRename      = 5
	activitySetSecurity = 7
	activityOpen        = 14
)

// fileActivities maps each file action to its activity. close (EndpointSecurity's close of a
// modified file) has none and is Other.
var fileActivities = map[string]struct {
	id   int
	name string
}{
	proto.ActionOpen:     {activityOpen, "Open"},
	proto.ActionCreate:   {activityCreate, "Create"},
	proto.ActionLink:     {activityCreate, "Create"},
	proto.ActionSymlink:  {activityCreate, "Create"},
	proto.ActionWrite:    {activityUpdate, "Update"},
	proto.ActionTruncate: {activityUpdate, "Update"},
	proto.ActionUnlink:   {activityDelete, "Delete"},
	proto.ActionRmdir:    {activityDelete, "Delete"},
	proto.ActionRename:   {activityRename, "Rename"},
	// Permission bits and ownership are what the schema calls security (Set Security:
	// "a change to the security of a file", beside Set Attributes for its other attributes).
	proto.ActionChmod: {activitySetSecurity, "Set Security"},
	proto.ActionChown: {activitySetSecurity, "Set Security"},
	proto.ActionClose: {activityOther, "Close"},
}

// isFile: a file line with its file.
func isFile(e *proto.Event) bool {
	_, ok := fileActivities[e.Event.Action]
	return ok && e.File != nil
}

var (
	filePathPath     = pathsOf("file.path")
	fileSizePath     = pathsOf("file.size")
	fileOwnerPath    = pathsOf("file.uid")
	renameSourcePath = pathsOf("vigil.rename.source")
	fileEventPaths   = pathsOf("event.category", "event.type")
)

// fileActivity maps open and the file mutations. The acting process is actor.process. A
// rename's file is the source and file_result the destination (the schema's "resulting file
// object"); a truncate's new length is file.size and a chown's new owner file.owner.uid.
func (m *mapping) fileActivity() {
	e, o := m.e, &m.out
	f := e.File
	act := fileActivities[e.Event.Action]
	typ := fileTypeUnknown
	switch e.Event.Action {
	case proto.ActionRmdir:
		typ = fileTypeFolder
	case proto.ActionSymlink:
		typ = fileTypeSymlink
	}
	target := &m.parts.target
	*target = file{Name: path.Base(f.Path), Path: f.Path, TypeID: typ, Type: fileTypeNames[typ]}
	m.use(filePathPath)
	if f.Size != nil && e.Event.Action == proto.ActionTruncate {
		target.Size = f.Size
		m.use(fileSizePath)
	}
	if f.UID != "" && e.Event.Action == proto.ActionChown {
		m.parts.owner = user{UID: f.UID}
		target.Owner = &m.parts.owner
		m.use(fileOwnerPath)
	}
	o.File = target
	if r := e.Vigil.Rename; r != nil && e.Event.Action == proto.ActionRename {
		m.parts.source = file{Name: path.Base(r.Source), Path: r.Source, TypeID: fileTypeUnknown, Type: "Unknown"}
		o.File = &m.parts.source
		o.FileResult = target
		m.use(renameSourcePath)
	}
	o.Actor = m.actorOf(m.processOf())
	m.use(fileEventPaths)
	m.merged()
	m.classify(classFileActivity, act.id, act.name)
}

var mergedPaths = pathsOf("vigil.merged.count")

// merged maps a merged open line's repeats to the base event's count, start_time and
// end_time ("the number of times that events in the same logical group occurred" between
// them). first and last stay in unmapped too, with their nanoseconds (OCSF's times are
// milliseconds), and so do the device and inode; a time that does not parse leaves the merge
// unmapped rather than half mapped.
func (m *mapping) merged() {
	mg := m.e.Vigil.Merged
	if mg == nil || mg.Count == 0 {
		return
	}
	first, err1 := time.Parse(proto.TimeLayout, mg.First)
	last, err2 := time.Parse(proto.TimeLayout, mg.Last)
	if err1 != nil || err2 != nil {
		return
	}
	m.out.Count, m.out.StartTime, m.out.EndTime = mg.Count, first.UnixMilli(), last.UnixMilli()
	m.use(mergedPaths)
}
