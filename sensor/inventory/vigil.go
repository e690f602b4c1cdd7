package inventory

import (
	"net"
	"net/netip"
	"net/url"
	"path"
	"strings"
)

// OTLP transports a protocol setting names.
const (
	transportHTTP = "http"
	transportGRPC = "grpc"
)

// endpoints are the sensor's OTLP receivers (correlate.otlp_http, correlate.otlp_grpc), ""
// for one that is off.
type endpoints struct{ http, grpc string }

// check says whether an agent exporting to endpoint over transport (transportHTTP,
// transportGRPC) reaches the sensor's receiver for that transport, and if not, why.
//
// The endpoint's host:port must be the receiver's: the same port, and the same address, or
// "localhost" for a loopback receiver (agents resolve it to the loopback address; Node tries
// ::1 and 127.0.0.1 both), or any loopback address for a receiver on every address.
func (e endpoints) check(endpoint, transport string) (bool, string) {
	listen := e.http
	if transport == transportGRPC {
		listen = e.grpc
	}
	if listen == "" {
		return false, "Vigil's " + transport + " receiver is off"
	}
	host, port, ok := hostPort(endpoint)
	if !ok {
		return false, "endpoint is not a URL or host:port"
	}
	lhost, lport, err := net.SplitHostPort(listen)
	if err != nil || port != lport {
		return false, "not Vigil's " + transport + " receiver (" + listen + ")"
	}
	if host == lhost || sameLoopback(host, lhost) {
		return true, ""
	}
	return false, "not Vigil's " + transport + " receiver (" + listen + ")"
}

// sameLoopback reports whether an agent connecting to host reaches a receiver listening on
// lhost, for the cases that hold on any host: localhost for a loopback listener, a loopback
// or localhost host for a listener on every address, and the same address spelt two ways.
func sameLoopback(host, lhost string) bool {
	l, lerr := netip.ParseAddr(lhost)
	if lhost == "" || lerr == nil && l.IsUnspecified() {
		a, err := netip.ParseAddr(host)
		return host == "localhost" || err == nil && a.IsLoopback()
	}
	if lerr != nil || !l.IsLoopback() {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap() == l.Unmap()
}

// hostPort returns the host and port an endpoint names: a URL (the scheme's port when it has
// none) or a bare host:port, as gRPC exporters take it.
func hostPort(endpoint string) (string, string, bool) {
	endpoint = strings.TrimSpace(endpoint)
	if strings.Contains(endpoint, "://") {
		u, err := url.Parse(endpoint)
		if err != nil || u.Hostname() == "" {
			return "", "", false
		}
		port := u.Port()
		if port == "" {
			switch u.Scheme {
			case "http":
				port = "80"
			case "https":
				port = "443"
			default:
				return "", "", false
			}
		}
		return u.Hostname(), port, true
	}
	host, port, err := net.SplitHostPort(endpoint)
	return host, port, err == nil && host != ""
}

// vigilProgram is the basename of Vigil's executable in a hook command.
const vigilProgram = "vigil"

// isVigilHook reports whether a hook command runs `vigil hook`: after any leading NAME=value
// assignments (and env or exec), the program's basename is vigil and its first argument is
// hook. A command that merely mentions vigil (echo vigil hook) does not count.
func isVigilHook(command string) bool {
	words := shellWords(command)
	for len(words) > 0 && (words[0] == "env" || words[0] == "exec" || isAssignment(words[0])) {
		words = words[1:]
	}
	return len(words) >= 2 && path.Base(words[0]) == vigilProgram && words[1] == "hook"
}

// isAssignment reports whether a shell word is NAME=value.
func isAssignment(w string) bool {
	name, _, ok := strings.Cut(w, "=")
	if !ok || name == "" {
		return false
	}
	for i, r := range name {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// shellWords splits a command line into words the way sh does for plain words, single and
// double quotes and backslashes; it stops at the first unquoted operator (; | & < > newline),
// since only the first simple command's program matters here.
func shellWords(s string) []string {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			inWord = true
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				end = len(s) - i - 1
			}
			w.WriteString(s[i+1 : i+1+end])
			i += end + 1
		case c == '"':
			inWord = true
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				w.WriteByte(s[i])
			}
		case c == '\\' && i+1 < len(s):
			inWord = true
			i++
			w.WriteByte(s[i])
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case strings.IndexByte(";|&<>\n", c) >= 0:
			if inWord {
				words = append(words, w.String())
			}
			return words
		default:
			inWord = true
			w.WriteByte(c)
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}
