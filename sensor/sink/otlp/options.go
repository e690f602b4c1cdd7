package otlp

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// Protocol is the OTLP transport: one of ProtocolGRPC, ProtocolHTTPProtobuf, ProtocolHTTPJSON
// (the names of OTEL_EXPORTER_OTLP_PROTOCOL).
type Protocol string

// The OTLP transports.
const (
	ProtocolGRPC         Protocol = "grpc"
	ProtocolHTTPProtobuf Protocol = "http/protobuf"
	ProtocolHTTPJSON     Protocol = "http/json"
)

// Protocols are the transports Options.Protocol may name.
var Protocols = []Protocol{ProtocolGRPC, ProtocolHTTPProtobuf, ProtocolHTTPJSON}

// Defaults of the Options left zero.
const (
	DefaultTimeout         = 10 * time.Second
	DefaultMaxBatchRecords = 512
	// DefaultMaxBatchBytes stays well under the 4 MiB a gRPC server (the collector's OTLP
	// receiver among them) accepts in one message by default.
	DefaultMaxBatchBytes = 1 << 20
	DefaultMaxDelay      = time.Second
	DefaultMinBackoff    = 500 * time.Millisecond
	DefaultMaxBackoff    = 30 * time.Second
	DefaultCloseTimeout  = 5 * time.Second
	DefaultSpoolMaxBytes = 256 << 20
)

// TLS is the transport security of the connection to the endpoint.
type TLS struct {
	// CAFile is a PEM bundle the endpoint's certificate must chain to; "" uses the system's.
	CAFile string
	// CertFile and KeyFile are a client certificate and its key (PEM), for endpoints that
	// authenticate the sensor by mTLS; both or neither.
	CertFile, KeyFile string
	// Insecure sends in plaintext. It must be asked for: an endpoint without a scheme (or
	// https://) is spoken to over TLS, an http:// endpoint in plaintext.
	Insecure bool
}

// Options configure an Exporter.
type Options struct {
	// Endpoint is where records go: for grpc host:port (or http://host:port, https://host:port);
	// for http/* a URL (http:// or https://, host:port alone means https) to which /v1/logs is
	// appended, as OTEL_EXPORTER_OTLP_ENDPOINT is.
	Endpoint string
	// Protocol is the transport; "" means ProtocolGRPC.
	Protocol Protocol
	// Headers are sent with every request (an API key, a tenant). They are never logged.
	Headers map[string]string
	TLS     TLS
	// Uncompressed turns gzip off (it is on by default: JSON lines compress about 8:1).
	Uncompressed bool
	// Timeout bounds one export request; 0 means DefaultTimeout.
	Timeout time.Duration

	// MaxBatchRecords, MaxBatchBytes and MaxDelay close a batch: whichever comes first of that
	// many records, that many bytes of encoded records, or its first record that old.
	MaxBatchRecords int
	MaxBatchBytes   int
	MaxDelay        time.Duration
	// MinBackoff and MaxBackoff bound the wait between two tries of one batch (doubling, with
	// jitter); a server's Retry-After or RetryInfo is honoured up to MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// CloseTimeout bounds how long Close keeps sending what is buffered before it spools the
	// rest; 0 means DefaultCloseTimeout.
	CloseTimeout time.Duration

	// SpoolDir keeps batches the endpoint has not taken yet, across restarts; required.
	SpoolDir string
	// SpoolMaxBytes bounds the spool's files; 0 means DefaultSpoolMaxBytes.
	SpoolMaxBytes int64

	// InstanceID names this exporter's run in vigil.record.id; "" picks a random one.
	InstanceID string
	// Resource attributes of every export (see HostResource).
	ServiceVersion string
	HostName       string
	HostID         string // /etc/machine-id
	OSType         string // linux, darwin
	BootID         string

	Log zerolog.Logger
}

// HostResource fills the resource fields of o that are empty from the host: its name, machine
// id, boot id (where readable) and OS. The tests set them instead.
func HostResource(o Options) Options {
	if o.HostName == "" {
		o.HostName, _ = os.Hostname()
	}
	if o.HostID == "" {
		o.HostID = readID("/etc/machine-id")
	}
	if o.BootID == "" {
		o.BootID = readID("/proc/sys/kernel/random/boot_id")
	}
	if o.OSType == "" {
		o.OSType = runtime.GOOS
	}
	return o
}

// readID is the first line of a small identity file, "" when it cannot be read (a container
// without /etc/machine-id, macOS without /proc): the attribute is then left out.
func readID(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// withDefaults validates o and fills its zero fields.
func (o Options) withDefaults() (Options, error) {
	if o.Endpoint == "" {
		return o, errors.New("no endpoint")
	}
	if o.Protocol == "" {
		o.Protocol = ProtocolGRPC
	}
	switch o.Protocol {
	case ProtocolGRPC, ProtocolHTTPProtobuf, ProtocolHTTPJSON:
	default:
		return o, fmt.Errorf("protocol %q is not one of grpc, http/protobuf, http/json", o.Protocol)
	}
	if o.SpoolDir == "" {
		return o, errors.New("no spool directory")
	}
	if (o.TLS.CertFile == "") != (o.TLS.KeyFile == "") {
		return o, errors.New("a client certificate needs both its cert file and its key file")
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MaxBatchRecords, DefaultMaxBatchRecords)
	def(&o.MaxBatchBytes, DefaultMaxBatchBytes)
	defD(&o.Timeout, DefaultTimeout)
	defD(&o.MaxDelay, DefaultMaxDelay)
	defD(&o.MinBackoff, DefaultMinBackoff)
	defD(&o.MaxBackoff, DefaultMaxBackoff)
	defD(&o.CloseTimeout, DefaultCloseTimeout)
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.SpoolMaxBytes <= 0 {
		o.SpoolMaxBytes = DefaultSpoolMaxBytes
	}
	if o.InstanceID == "" {
		var b [8]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
		o.InstanceID = hex.EncodeToString(b[:])
	}
	return o, nil
}

// splitEndpoint parses an endpoint into what to dial or post to and whether plaintext was
// asked for: an http:// scheme, or TLS.Insecure. A bare host:port is TLS unless Insecure.
func splitEndpoint(endpoint string, insecure bool) (u *url.URL, plaintext bool, err error) {
	raw := endpoint
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err = url.Parse(raw)
	if err != nil {
		return nil, false, fmt.Errorf("endpoint %q: %w", endpoint, err)
	}
	if u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, false, fmt.Errorf("endpoint %q: want host:port or an http:// or https:// URL", endpoint)
	}
	plaintext = u.Scheme == "http" || insecure
	if plaintext {
		u.Scheme = "http"
	}
	return u, plaintext, nil
}
