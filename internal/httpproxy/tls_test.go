package httpproxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func writeCert(t *testing.T, dir, name string) CertConfig {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	cc := CertConfig{CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}
	_ = os.WriteFile(cc.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(cc.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return cc
}

func TestTLSWithSNI(t *testing.T) {
	dir := t.TempDir()
	b := startBackend(t, "a")
	var proto string
	b.set(func(w http.ResponseWriter, r *http.Request) { proto = r.Header.Get("X-Forwarded-Proto") })
	cfg := baseConfig(b)
	cfg.Listeners[0].TLS = &TLSConfig{Certificates: []CertConfig{writeCert(t, dir, "a.example"), writeCert(t, dir, "b.example")}}
	te := startEdge(t, cfg)
	for _, sni := range []string{"a.example", "b.example"} {
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{ServerName: sni, InsecureSkipVerify: true}}}
		resp, err := c.Get("https://" + te.addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got := resp.TLS.PeerCertificates[0].Subject.CommonName; got != sni {
			t.Errorf("SNI %s got certificate %s", sni, got)
		}
		if resp.StatusCode != 200 || proto != "https" {
			t.Errorf("status %d, X-Forwarded-Proto %q", resp.StatusCode, proto)
		}
	}
	bad := baseConfig(b)
	bad.Listeners[0].TLS = &TLSConfig{Certificates: []CertConfig{{CertFile: filepath.Join(dir, "missing.crt"), KeyFile: filepath.Join(dir, "missing.key")}}}
	bad.SetDefaults()
	if err := bad.Validate(); err == nil {
		t.Fatal("a missing certificate file was accepted")
	}
}
