package ocsf

import (
	"net/netip"

	"github.com/vigil-sensor/vigil/proto"
)

// Network Activity (4001) activities.
const (
	activityNetOpen    = 1
	activityNetFail    = 4
	activityNetTraffic = 6
)

// endpoint is the OCSF network_endpoint object.
type endpoint struct {
	IP   string
	Port int
	// Name is a unix socket's path (its name, in unix(7)'s words; abstract names start
	// with @): a network endpoint needs one of ip, name, hostname, ...
	Name string
}

// connectionInfo is the OCSF network_connection_info object.
type connectionInfo struct {
	DirectionID   int
	Direction     string
	ProtocolVerID int
}

// Connection directions Vigil can tell from the address alone.
const (
	directionUnknown  = 0
	directionOutbound = 2
	directionLocal    = 4
)

var directionNames = map[int]string{directionUnknown: "Unknown", directionOutbound: "Outbound", directionLocal: "Local"}

// isNetwork: connect and send lines.
func isNetwork(e *proto.Event) bool {
	return e.Event.Action == proto.ActionConnect || e.Event.Action == proto.ActionSend
}

var (
	destinationPaths = pathsOf("destination.ip", "destination.port", "destination.address")
	networkTypePath  = pathsOf("network.type")
)

// networkActivity maps a connect to Open (Fail when the connect failed; a non-blocking
// connect still in progress is Open with status Unknown) and a send to Traffic. The process
// that connected is actor.process; the peer dst_endpoint. Which transport (TCP, UDP) a
// socket used is not on the native line, so protocol_name is never set.
func (m *mapping) networkActivity() {
	e, o := m.e, &m.out
	activity, name := activityNetOpen, "Open"
	switch {
	case e.Event.Action == proto.ActionSend:
		activity, name = activityNetTraffic, "Traffic"
	case e.Event.Outcome == proto.OutcomeFailure:
		activity, name = activityNetFail, "Fail"
	}
	if d := e.Destination; d != nil && (d.IP != "" || d.Address != "") {
		m.parts.dst = endpoint{IP: d.IP, Port: d.Port, Name: d.Address}
		o.DstEndpoint = &m.parts.dst
		m.use(destinationPaths)
		dir := direction(d)
		ci := &m.parts.conn
		*ci = connectionInfo{DirectionID: dir, Direction: directionNames[dir]}
		if n := e.Network; n != nil {
			switch n.Type {
			case "ipv4":
				ci.ProtocolVerID = 4
				m.use(networkTypePath)
			case "ipv6":
				ci.ProtocolVerID = 6
				m.use(networkTypePath)
			}
		}
		o.ConnectionInfo = ci
	}
	o.Actor = m.actorOf(m.processOf())
	m.use(categoryPath)
	m.classify(classNetworkActivity, activity, name)
}

// direction is Local for a unix socket or a loopback address (the schema's "intra-device"),
// Outbound for a global address outside the private ranges (the host opened a connection to
// the Internet), and Unknown otherwise: whether a private address is inside the host's
// network (Lateral) is not something the sensor knows.
func direction(d *proto.Destination) int {
	if d.IP == "" {
		return directionLocal // a unix socket
	}
	ip, err := netip.ParseAddr(d.IP)
	switch {
	case err != nil:
		return directionUnknown
	case ip.Unmap().IsLoopback():
		return directionLocal
	case ip.Unmap().IsGlobalUnicast() && !ip.Unmap().IsPrivate():
		return directionOutbound
	}
	return directionUnknown
}
