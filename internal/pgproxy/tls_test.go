package pgproxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

func TestClientTLS(t *testing.T) {
	c := sharedCluster(t)
	ctx := ctxT(t, time.Minute)
	cert, key := selfSigned(t)
	tests := []struct {
		name    string
		require bool
		sslmode string
		wantErr string
		wantSSL bool
	}{
		{"offered, client requires", false, "require", "", true},
		{"offered, client disables", false, "disable", "", false},
		{"required, client disables", true, "disable", "SSL/TLS is required", false},
		{"required, client requires", true, "require", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(c)
			cfg.TLS = &TLSConfig{CertFile: cert, KeyFile: key, Require: tc.require}
			p := startProxy(t, cfg)
			dsn := fmt.Sprintf("postgres://app:%s@%s/app?sslmode=%s&connect_timeout=5", appPassword, p.addr, tc.sslmode)
			conn, err := pgx.Connect(ctx, dsn)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want %q, got %v", tc.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			var one int
			if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
				t.Fatalf("query over the connection: %v", err)
			}
			if got := fmt.Sprintf("%T", conn.PgConn().Conn()); strings.Contains(got, "tls") != tc.wantSSL {
				t.Fatalf("connection type %s, want TLS=%v", got, tc.wantSSL)
			}
		})
	}
}
