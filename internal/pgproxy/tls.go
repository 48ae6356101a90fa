package pgproxy

import (
	"crypto/tls"
	"fmt"

	"github.com/tiergate/tiergate/internal/config"
)

// TLSConfig offers TLS to clients that send SSLRequest (sslmode=require,
// verify-full, ...). Without it the proxy answers 'N', as a server with
// ssl=off does.
type TLSConfig struct {
	// CertFile and KeyFile are the PEM certificate chain and key. Required.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// MinVersion is "1.2" (default) or "1.3".
	MinVersion string `yaml:"min_version"`
	// Require refuses clients that do not ask for TLS (SQLSTATE 28000),
	// like hostssl-only pg_hba rules. Default false.
	Require bool `yaml:"require"`
}

// Validate loads the key pair, so a bad file is reported at load time.
func (t *TLSConfig) Validate() error {
	var errs []error
	if t.CertFile == "" {
		errs = append(errs, config.Errorf("cert_file", "is required"))
	}
	if t.KeyFile == "" {
		errs = append(errs, config.Errorf("key_file", "is required"))
	}
	if t.CertFile != "" && t.KeyFile != "" {
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			errs = append(errs, config.Errorf("cert_file", "%v", err))
		}
	}
	if t.MinVersion != "" {
		errs = append(errs, config.CheckOneOf("min_version", t.MinVersion, "1.2", "1.3"))
	}
	return config.Join(errs...)
}

// serverConfig builds the crypto/tls settings.
func (t *TLSConfig) serverConfig() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.MinVersion == "1.3" {
		tc.MinVersion = tls.VersionTLS13
	}
	return tc, nil
}
