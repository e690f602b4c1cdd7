package otlp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// transport sends one export request, req an ExportLogsServiceRequest in protobuf
// (requestBytes). rejected and message are the server's partial success (records it refused,
// and why); err is an *exportError when the request failed.
type transport interface {
	export(ctx context.Context, req []byte) (rejected int64, message string, err error)
	close() error
}

// newTransport builds the transport o.Protocol names.
func newTransport(o Options) (transport, error) {
	u, plaintext, err := splitEndpoint(o.Endpoint, o.TLS.Insecure)
	if err != nil {
		return nil, err
	}
	var cfg *tls.Config
	if !plaintext {
		if cfg, err = tlsConfig(o.TLS); err != nil {
			return nil, err
		}
	}
	if o.Protocol == ProtocolGRPC {
		return newGRPC(o, u.Host, cfg)
	}
	return newHTTP(o, u, cfg), nil
}

// tlsConfig is the client side of TLS: the endpoint's certificate checked against CAFile (or
// the system's roots), and the client certificate when there is one. TLS 1.2 at least.
func tlsConfig(t TLS) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
