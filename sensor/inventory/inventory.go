// Package inventory finds, for every user of a host, the AI coding agents installed (with
// their versions), whether each agent's telemetry and hooks point at Vigil at each level that
// exists (managed, user, project), and the MCP servers each agent is configured with; it
// remembers when each item was first seen. Every name and path of an agent comes from the
// registry (sensor/agents); this package knows only how each agent's files are shaped.
//
// It runs as root over files users control, so it only ever reads, and reads carefully: it
// never executes anything (versions come from files beside the executable), opens no device
// or FIFO (a user could plant one to hang the daemon), reads no file past maxFileBytes, reads
// a file in a home only when the home's user owns it, and never keeps the value of an MCP
// server's environment or headers. A file it cannot use is one error in the report; the rest
// of the scan stands.
package inventory

import (
	"cmp"
	"path/filepath"
	"slices"
	"time"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
)

// DefaultStatePath is where the first-seen times are kept, under Options.Root.
const DefaultStatePath = "/var/lib/vigil/inventory.json"

// Options say what to scan and against which sensor configuration.
type Options struct {
	// Root is the directory every host path is read under: "" or "/" for this host, a
	// fixture tree in tests. Paths in the report are host paths (without Root).
	Root string
	// Config is the sensor's configuration: its OTLP receivers are what "points at Vigil"
	// compares endpoints with.
	Config sensor.Config
	// StatePath is the first-seen state file (a host path, under Root); "" means
	// DefaultStatePath.
	StatePath string
	// Now is the scan's clock; nil means time.Now.
	Now func() time.Time
}

// Report is one scan: its JSON is `vigil inventory --format json` (docs/inventory.md).
type Report struct {
	Scanned    time.Time                  `json:"scanned"`
	Users      []User                     `json:"users"`
	Installs   []proto.InventoryInstall   `json:"installs"`
	Configs    []proto.InventoryConfig    `json:"configs"`
	MCPServers []proto.InventoryMCPServer `json:"mcp_servers"`
	Errors     []proto.InventoryError     `json:"errors"`
}

// User is an account whose home was scanned.
type User struct {
	Name string `json:"name"`
	UID  int    `json:"uid"`
	Home string `json:"home"`
}

// scanner is one scan in progress.
type scanner struct {
	root  string
	vigil endpoints
	r     *Report
	users []User
}

// Scan reads the host and returns its inventory. The report is complete whatever the error
// says: a non-nil error is about the first-seen state only (unreadable, corrupt, or not
// saved), for the caller to log.
func Scan(o Options) (*Report, error) {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	root := o.Root
	if root == "" {
		root = "/"
	}
	s := &scanner{
		root:  root,
		vigil: endpoints{http: o.Config.Correlate.OTLPHTTP, grpc: o.Config.Correlate.OTLPGRPC},
		r: &Report{Scanned: now().UTC().Truncate(time.Second), Users: []User{}, Installs: []proto.InventoryInstall{},
			Configs: []proto.InventoryConfig{}, MCPServers: []proto.InventoryMCPServer{}, Errors: []proto.InventoryError{}},
	}
	s.findUsers()
	s.findInstalls()
	s.findConfigs()
	s.sort()
	statePath := cmp.Or(o.StatePath, DefaultStatePath)
	return s.r, s.firstSeen(statePath)
}

// host returns the path of host path p under the scan's root.
func (s *scanner) host(p string) string { return filepath.Join(s.root, p) }

// fail records that the file at host path p could not be used.
func (s *scanner) fail(p string, err error) {
	s.r.Errors = append(s.r.Errors, proto.InventoryError{Path: p, Error: err.Error()})
}

// sort orders every list by its stable key, so two scans of the same host print the same.
func (s *scanner) sort() {
	slices.SortFunc(s.r.Installs, func(a, b proto.InventoryInstall) int { return cmp.Compare(installKey(a), installKey(b)) })
	slices.SortFunc(s.r.Configs, func(a, b proto.InventoryConfig) int { return cmp.Compare(configKey(a), configKey(b)) })
	slices.SortFunc(s.r.MCPServers, func(a, b proto.InventoryMCPServer) int { return cmp.Compare(mcpKey(a), mcpKey(b)) })
	slices.SortFunc(s.r.Errors, func(a, b proto.InventoryError) int {
		return cmp.Or(cmp.Compare(a.Path, b.Path), cmp.Compare(a.Error, b.Error))
	})
}
