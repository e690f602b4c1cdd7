//go:build !linux

package correlate

import (
	"context"
	"errors"

	"github.com/rs/zerolog"
)

// errHookServerUnsupported: the hook server identifies senders with SO_PEERCRED, which is
// Linux's; macOS would need LOCAL_PEERPID / LOCAL_PEERCRED, not written yet.
var errHookServerUnsupported = errors.New("hook server: not supported on this platform (needs Linux SO_PEERCRED)")

// HookServer is Linux-only; see hookserver_linux.go.
type HookServer struct{ undeliveredDir string }

// HookOption configures a HookServer.
type HookOption func(*HookServer)

// WithUndeliveredDir sets the undelivered-count directory.
func WithUndeliveredDir(dir string) HookOption {
	return func(s *HookServer) { s.undeliveredDir = dir }
}

// WithSenderStart sets how a sender's start time is read.
func WithSenderStart(start func(pid int) (uint64, error)) HookOption {
	return func(s *HookServer) {}
}

// NewHookServer always fails on this platform.
func NewHookServer(path string, deliver func(HookBatch), log zerolog.Logger, opts ...HookOption) (*HookServer, error) {
	return nil, errHookServerUnsupported
}

// Path is "".
func (s *HookServer) Path() string { return "" }

// Serve always fails on this platform.
func (s *HookServer) Serve(ctx context.Context) error { return errHookServerUnsupported }

// Close does nothing.
func (s *HookServer) Close() error { return nil }

// Stats is empty.
func (s *HookServer) Stats() HookStats { return HookStats{} }

// UndeliveredCounts always fails on this platform.
func (s *HookServer) UndeliveredCounts() (map[int]uint64, error) {
	return nil, errHookServerUnsupported
}
