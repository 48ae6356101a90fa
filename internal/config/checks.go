package config

import (
	"net"
	"strconv"
	"strings"
)

// CheckHostPort reports a problem with a "host:port" address, or nil.
// The host may be empty (all interfaces) only when allowEmptyHost is set.
func CheckHostPort(path, addr string, allowEmptyHost bool) error {
	if addr == "" {
		return Errorf(path, "is required (host:port)")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		if strings.Contains(err.Error(), "missing port") {
			return Errorf(path, "%q has no port", addr)
		}
		return Errorf(path, "%q is not host:port: %v", addr, err)
	}
	if host == "" && !allowEmptyHost {
		return Errorf(path, "%q has no host", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return Errorf(path, "%q has an invalid port", addr)
	}
	return nil
}

// IsLoopback reports whether the host of a host:port address is a loopback
// address or "localhost". An empty host (all interfaces) is not loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckOneOf reports an error when value is not one of allowed.
func CheckOneOf(path, value string, allowed ...string) error {
	for _, a := range allowed {
		if value == a {
			return nil
		}
	}
	return Errorf(path, "%q is not one of %s", value, strings.Join(allowed, ", "))
}
