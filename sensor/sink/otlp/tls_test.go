package otlp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/sensor/sink/otlp/otlptest"
)

// testPKI is a CA made for the test, a server certificate for 127.0.0.1 and a client
// certificate it signed, written as PEM files.
type testPKI struct {
	caFile, certFile, keyFile string
	server                    *tls.Config // requires a client certificate from the CA
}

func newPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vigil test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, usage x509.ExtKeyUsage, ips []net.IP) tls.Certificate {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "vigil test"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips, KeyUsage: x509.KeyUsageDigitalSignature,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	}
	srvCert := issue(2, x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	cliCert := issue(3, x509.ExtKeyUsageClientAuth, nil)
	p := testPKI{
		caFile:   filepath.Join(dir, "ca.pem"),
		certFile: filepath.Join(dir, "client.pem"),
		keyFile:  filepath.Join(dir, "client.key"),
	}
	writePEM := func(path, typ string, der []byte) {
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writePEM(p.caFile, "CERTIFICATE", caDER)
	writePEM(p.certFile, "CERTIFICATE", cliCert.Certificate[0])
	keyDER, _ := x509.MarshalPKCS8PrivateKey(cliCert.PrivateKey)
	writePEM(p.keyFile, "PRIVATE KEY", keyDER)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	p.server = &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	return p
}

// TestTLS: with the test CA and a client certificate the records arrive over TLS (mTLS); a
// server the CA does not vouch for, or a missing client certificate, sends nothing and says
// why in LastError.
func TestTLS(t *testing.T) {
	pki := newPKI(t)
	for _, p := range Protocols {
		for _, tc := range []struct {
			name    string
			tls     TLS
			wantErr string // "": delivered
		}{
			{"mTLS", TLS{CAFile: pki.caFile, CertFile: pki.certFile, KeyFile: pki.keyFile}, ""},
			{"unknown CA", TLS{CertFile: pki.certFile, KeyFile: pki.keyFile}, "certificate"},
			{"no client certificate", TLS{CAFile: pki.caFile}, "certificate"},
		} {
			t.Run(string(p)+"/"+tc.name, func(t *testing.T) {
				srv := newServer(t, p, pki.server)
				o := testOptions(t, srv)
				o.TLS = tc.tls
				o.CloseTimeout = 200 * time.Millisecond
				e := open(t, o)
				write(t, e, 0, 10)
				if tc.wantErr == "" {
					otlptest.WaitFor(t, "records over TLS", func() bool { return len(srv.got()) == 10 })
					checkInOrder(t, srv.got(), "inst1", 10)
					return
				}
				e.Flush()
				otlptest.WaitFor(t, "an export error naming the "+tc.wantErr, func() bool { return strings.Contains(e.Stats().LastError, tc.wantErr) })
				if err := e.Close(); err != nil {
					t.Fatal(err)
				}
				if st := e.Stats(); st.SpooledRecords != 10 || len(srv.got()) != 0 {
					t.Errorf("stats %+v, %d records arrived: want none, the 10 spooled", st, len(srv.got()))
				}
			})
		}
	}
}
