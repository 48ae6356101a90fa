package httpproxy

import (
	"crypto/tls"
	"fmt"
	"net"

	"github.com/tiergate/tiergate/internal/config"
)

func (t *TLSConfig) validate() error {
	var errs []error
	if len(t.Certificates) == 0 {
		errs = append(errs, config.Errorf("certificates", "at least one certificate is required"))
	}
	for i, c := range t.Certificates {
		if _, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile); err != nil {
			errs = append(errs, config.At("certificates", i, config.Errorf("cert_file", "%v", err)))
		}
	}
	if t.MinVersion != "" {
		errs = append(errs, config.CheckOneOf("min_version", t.MinVersion, "1.2", "1.3"))
	}
	return config.Join(errs...)
}

// serverTLS builds the listener's tls.Config; crypto/tls picks the
// certificate matching the client's SNI among Certificates.
func (t *TLSConfig) serverTLS() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	if t.MinVersion == "1.3" {
		tc.MinVersion = tls.VersionTLS13
	}
	for _, c := range t.Certificates {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load certificate %s: %w", c.CertFile, err)
		}
		tc.Certificates = append(tc.Certificates, cert)
	}
	return tc, nil
}

// wrapTLS returns ln serving TLS when lc asks for it.
func wrapTLS(ln net.Listener, lc ListenerConfig) (net.Listener, error) {
	if lc.TLS == nil {
		return ln, nil
	}
	tc, err := lc.TLS.serverTLS()
	if err != nil {
		return nil, err
	}
	return tls.NewListener(ln, tc), nil
}
