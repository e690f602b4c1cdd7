package correlate

// Which process sent an OTLP request: each connection's addresses, resolved to the pid that
// owns its client socket once per connection.

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"sync"

	"google.golang.org/grpc/peer"
)

// connPeer is one connection's addresses and, once looked up, its sender pid.
type connPeer struct {
	local, remote netip.AddrPort
	once          sync.Once
	pid           int
	start         uint64 // the pid's start time (ns since boot) when the resolver reports it
}

type connPeerKey struct{}

func newConnPeer(local, remote net.Addr) *connPeer {
	l, ok1 := addrPort(local)
	rm, ok2 := addrPort(remote)
	if !ok1 || !ok2 {
		return nil
	}
	return &connPeer{local: l, remote: rm}
}

func addrPort(a net.Addr) (netip.AddrPort, bool) {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case nil:
		return ap, false
	default:
		var err error
		if ap, err = netip.ParseAddrPort(a.String()); err != nil {
			return ap, false
		}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), ap.IsValid()
}

// sender resolves cp's pid (and, from a PeerIdentityResolver, its start time) on first use: one /proc scan per connection, done on the
// request's goroutine (ConnContext runs in the accept loop, which must not wait on it), and
// only for connections that send something worth delivering.
func (r *Receiver) sender(cp *connPeer) (int, uint64) {
	cp.once.Do(func() {
		if r.o.Resolver == nil {
			return
		}
		var pid int
		var start uint64
		var err error
		if ir, ok := r.o.Resolver.(PeerIdentityResolver); ok {
			pid, start, err = ir.PeerOf(cp.local, cp.remote)
		} else {
			pid, err = r.o.Resolver.PidOf(cp.local, cp.remote)
		}
		r.mu.Lock()
		if err != nil || pid <= 0 {
			r.st.PeersUnresolved++
		} else {
			r.st.PeersResolved++
		}
		r.mu.Unlock()
		if err != nil || pid <= 0 {
			r.o.Log.Debug().Err(err).Stringer("peer", cp.remote).Msg("otlp sender pid not found")
			return
		}
		cp.pid, cp.start = pid, start
	})
	return cp.pid, cp.start
}

// connContext attaches a connPeer to every accepted HTTP connection.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if cp := newConnPeer(c.LocalAddr(), c.RemoteAddr()); cp != nil {
		return context.WithValue(ctx, connPeerKey{}, cp)
	}
	return ctx
}

// requestPeer is the request's connPeer: the connection's, or (a handler run without
// ConnContext) one built from the request alone.
func requestPeer(req *http.Request) *connPeer {
	if cp, ok := req.Context().Value(connPeerKey{}).(*connPeer); ok {
		return cp
	}
	local, _ := req.Context().Value(http.LocalAddrContextKey).(net.Addr)
	remote, err := netip.ParseAddrPort(req.RemoteAddr)
	if local == nil || err != nil {
		return nil
	}
	return newConnPeer(local, net.TCPAddrFromAddrPort(remote))
}

// grpcPeer is the call's connPeer: the connection's (grpcStats.TagConn), else one from the
// call's peer.
func grpcPeer(ctx context.Context) *connPeer {
	if cp, ok := ctx.Value(connPeerKey{}).(*connPeer); ok {
		return cp
	}
	if p, ok := peer.FromContext(ctx); ok {
		return newConnPeer(p.LocalAddr, p.Addr)
	}
	return nil
}
