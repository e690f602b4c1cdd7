package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Path is where the metrics are served.
const Path = "/metrics"

// Server serves a registry over HTTP at Path.
type Server struct {
	ln   net.Listener
	srv  *http.Server
	done chan error
}

// Listen binds addr and serves reg on it. Binding is done here, not in the background, so a
// taken port or a refused address stops `vigil run` at start with this error instead of
// leaving a sensor nobody can scrape.
func Listen(addr string, reg *prometheus.Registry) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	// A failed scrape is answered with an error status (HTTPErrorOnError), not a partial page
	// that would look like a sensor whose counters went to zero.
	mux.Handle(Path, promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError, Timeout: 10 * time.Second}))
	s := &Server{ln: ln, done: make(chan error, 1), srv: &http.Server{
		Handler: mux,
		// Bounds on a slow or idle client, which a loopback peer can still be.
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
	}}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return s, nil
}

// Addr is the address bound (the port picked when addr's was 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops accepting, lets scrapes in flight finish until ctx is done, and returns why the
// server stopped if it was not this Close.
func (s *Server) Close(ctx context.Context) error {
	if err := s.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("metrics: shut down: %w", err)
	}
	if err := <-s.done; err != nil {
		return fmt.Errorf("metrics: serve: %w", err)
	}
	return nil
}
