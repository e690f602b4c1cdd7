package inventory

import (
	"github.com/vigil-sensor/vigil/proto"
)

// ECS categories of the lines: an install is a package; configuration files and MCP servers
// are configuration; a file the scan could not use is about configuration too (with outcome
// failure). Each line's event.type is info: a state, not a change.
const (
	categoryPackage       = "package"
	categoryConfiguration = "configuration"
	typeInfo              = "info"
)

// Records returns the scan as lines to write (action inventory, one per item; see
// proto.ActionInventory), all stamped with the scan's time.
func Records(r *Report) []*proto.Event {
	scan := r.Scanned.UTC().Format(proto.TimeLayout)
	var out []*proto.Event
	add := func(category, outcome string, inv proto.Inventory) {
		inv.Scan = scan
		out = append(out, &proto.Event{
			Timestamp: r.Scanned,
			Event: proto.EventMeta{Action: proto.ActionInventory, Kind: proto.KindState, Category: category,
				Type: []string{typeInfo}, Outcome: outcome, Dataset: proto.DatasetInventory},
			Vigil: proto.Vigil{Inventory: &inv},
		})
	}
	for i := range r.Installs {
		add(categoryPackage, "", proto.Inventory{Install: &r.Installs[i]})
	}
	for i := range r.Configs {
		add(categoryConfiguration, "", proto.Inventory{Config: &r.Configs[i]})
	}
	for i := range r.MCPServers {
		add(categoryConfiguration, "", proto.Inventory{MCPServer: &r.MCPServers[i]})
	}
	for i := range r.Errors {
		add(categoryConfiguration, proto.OutcomeFailure, proto.Inventory{Error: &r.Errors[i]})
	}
	return out
}
