package otlp

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	"google.golang.org/protobuf/encoding/protojson"
	gproto "google.golang.org/protobuf/proto"
)

// maxResponseBytes bounds what is read of a response: a partial-success message or an error
// text, never worth more.
const maxResponseBytes = 64 << 10

// httpTransport is OTLP/HTTP: one POST to <endpoint>/v1/logs per batch, in protobuf or JSON.
type httpTransport struct {
	client  *http.Client
	url     string
	json    bool
	gzip    bool
	headers map[string]string
	jc      jsonCache // http/json: the resource and scope converted
}

func newHTTP(o Options, u *url.URL, cfg *tls.Config) *httpTransport {
	u = &url.URL{Scheme: u.Scheme, Host: u.Host, Path: strings.TrimSuffix(u.Path, "/") + "/v1/logs"}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     cfg,
		TLSHandshakeTimeout: o.Timeout,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	return &httpTransport{
		client:  &http.Client{Transport: tr},
		url:     u.String(),
		json:    o.Protocol == ProtocolHTTPJSON,
		gzip:    !o.Uncompressed,
		headers: o.Headers,
	}
}

// jsonOptions encode OTLP/JSON as the specification has it: lowerCamelCase field names (the
// protobuf JSON names) and enums as numbers. No bytes field (trace or span id) is ever set,
// whose protojson base64 would differ from OTLP's hex.
var jsonOptions = protojson.MarshalOptions{UseEnumNumbers: true}

func (t *httpTransport) export(ctx context.Context, req []byte) (int64, string, error) {
	body := req
	ctype := "application/x-protobuf"
	if t.json {
		ctype = "application/json"
		var ok bool
		if body, ok = t.jc.requestJSON(make([]byte, 0, len(req)+len(req)/4), req); !ok {
			var m collogspb.ExportLogsServiceRequest
			err := gproto.Unmarshal(req, &m)
			if err == nil {
				body, err = jsonOptions.Marshal(&m)
			}
			if err != nil {
				return 0, "", &exportError{err: fmt.Errorf("encode request: %w", err), permanent: true}
			}
		}
	}
	if t.gzip {
		body = compress(body)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return 0, "", &exportError{err: fmt.Errorf("http request: %w", err), permanent: true}
	}
	for k, v := range t.headers {
		hr.Header.Set(k, v)
	}
	hr.Header.Set("Content-Type", ctype)
	if t.gzip {
		hr.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := t.client.Do(hr)
	if err != nil {
		return 0, "", &exportError{err: fmt.Errorf("http export: %w", err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return 0, "", &exportError{
			err:        fmt.Errorf("http export: %s: %s", resp.Status, bytes.TrimSpace(data)),
			permanent:  !retryableHTTP(resp.StatusCode),
			retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		}
	}
	if err != nil || len(data) == 0 {
		return 0, "", nil // taken; a response cut short tells nothing of a partial success
	}
	var out collogspb.ExportLogsServiceResponse
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		err = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(data, &out)
	} else {
		err = gproto.Unmarshal(data, &out)
	}
	if err != nil {
		return 0, "", nil // a 2xx is success whatever its body; only a readable one can say partial
	}
	ps := out.GetPartialSuccess()
	return ps.GetRejectedLogRecords(), ps.GetErrorMessage(), nil
}

// gzipWriters are reused: a gzip writer's state is large, and one request needs one.
var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed) // a valid level: no error
	return zw
}}

// compress is body gzipped at BestSpeed, by klauspost/compress (faster than the standard
// library's, and its level 1 compresses as well as the standard library's level 1: on
// BenchmarkExportCollector's batches 29:1, against 31:1 at the default level). The endpoint
// receives gzip all the same. The buffer is the request's own: net/http may still read it
// after export returns.
func compress(body []byte) []byte {
	buf := bytes.NewBuffer(make([]byte, 0, len(body)/4+64))
	zw := gzipWriters.Get().(*gzip.Writer)
	zw.Reset(buf)
	_, _ = zw.Write(body) // a bytes.Buffer does not fail
	_ = zw.Close()
	gzipWriters.Put(zw)
	return buf.Bytes()
}

func (t *httpTransport) close() error {
	t.client.CloseIdleConnections()
	return nil
}
