package httproute

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tiergate/tiergate/internal/config"
)

// Redirect is a compiled redirect answer.
type Redirect struct {
	// Status is 301, 302, 303, 307 or 308.
	Status int
	parts  []tmplPart
}

// Respond is a fixed answer.
type Respond struct {
	Status      int
	ContentType string // "" means send no Content-Type
	Body        string
}

type tmplVar uint8

const (
	varNone tmplVar = iota
	varHost
	varPath
	varQuery
)

func lookupTmplVar(name string) (tmplVar, bool) {
	switch name {
	case "host":
		return varHost, true
	case "path":
		return varPath, true
	case "query":
		return varQuery, true
	}
	return varNone, false
}

// tmplPart is a literal, or a variable when v is not varNone.
type tmplPart struct {
	lit string
	v   tmplVar
}

// Fixed returns the Location when it contains no variables.
func (r *Redirect) Fixed() (string, bool) {
	switch {
	case len(r.parts) == 0:
		return "", true
	case len(r.parts) == 1 && r.parts[0].v == varNone:
		return r.parts[0].lit, true
	}
	return "", false
}

// AppendLocation appends the Location for req to dst. Substituted bytes
// that are not safe in a header or that browsers reinterpret (controls,
// space, DEL, non-ASCII and '\') are percent-encoded, and a $path at the
// start of the Location has leading slashes collapsed, so a request for
// "//evil.example" cannot become a protocol-relative redirect.
func (r *Redirect) AppendLocation(dst []byte, req Request) []byte {
	start := len(dst)
	for _, p := range r.parts {
		switch p.v {
		case varNone:
			dst = append(dst, p.lit...)
		case varHost:
			var buf [maxHostLen]byte
			h, ok := normalizeHost(&buf, req.Host())
			if !ok {
				h = stripPort(req.Host())
			}
			dst = appendEscaped(dst, h)
		case varPath:
			path := req.Path()
			if len(dst) == start {
				for len(path) > 1 && path[0] == '/' && path[1] == '/' {
					path = path[1:]
				}
			}
			if len(path) == 0 || path[0] != '/' {
				dst = append(dst, '/')
			}
			dst = appendEscaped(dst, path)
		case varQuery:
			if q := req.Query(); len(q) > 0 {
				dst = append(dst, '?')
				dst = appendEscaped(dst, q)
			}
		}
	}
	return dst
}

func appendEscaped(dst, b []byte) []byte {
	const hex = "0123456789ABCDEF"
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || c == '\\' {
			dst = append(dst, '%', hex[c>>4], hex[c&15])
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// compileRedirect checks and compiles a redirect; errors name fields of
// RedirectConfig.
func compileRedirect(c *RedirectConfig) (Redirect, error) {
	var errs []error
	status := c.Status
	if status == 0 {
		status = DefaultRedirectStatus
	}
	switch status {
	case 301, 302, 303, 307, 308:
	default:
		errs = append(errs, config.Errorf("status", "%d is not a redirect status (301, 302, 303, 307 or 308)", c.Status))
	}
	parts, err := parseTemplate(c.To)
	if err != nil {
		errs = append(errs, config.Errorf("to", "%v", err))
	}
	return Redirect{Status: status, parts: parts}, config.Join(errs...)
}

// parseTemplate parses a redirect target into literal and variable parts.
func parseTemplate(s string) ([]tmplPart, error) {
	if s == "" {
		return nil, errors.New("is required (an http(s) URL or a path starting with /)")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == 0x7f {
			return nil, fmt.Errorf("%q contains a control character", s)
		}
	}
	if !strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "$path") && !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
		return nil, fmt.Errorf("%q must be an http(s) URL or start with / or $path", s)
	}
	if strings.HasPrefix(s, "//") {
		return nil, fmt.Errorf("%q is protocol-relative; write the scheme", s)
	}
	var parts []tmplPart
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			parts = append(parts, tmplPart{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' {
			lit.WriteByte(c)
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			lit.WriteByte('$')
			i++
			continue
		}
		j := i + 1
		for j < len(s) && (s[j] >= 'a' && s[j] <= 'z' || s[j] == '_') {
			j++
		}
		name := s[i+1 : j]
		v, ok := lookupTmplVar(name)
		if !ok {
			return nil, fmt.Errorf("unknown variable $%s in %q (known: $host, $path, $query; $$ is a literal $)", name, s)
		}
		flush()
		parts = append(parts, tmplPart{v: v})
		i = j - 1
	}
	flush()
	return parts, nil
}

// compileRespond checks and compiles a fixed response.
func compileRespond(c *RespondConfig) (Respond, error) {
	r := Respond{Status: c.Status, ContentType: c.ContentType, Body: c.Body}
	if r.Status == 0 {
		r.Status = DefaultRespondStatus
	}
	if r.ContentType == "" && r.Body != "" {
		r.ContentType = DefaultContentType
	}
	var errs []error
	switch {
	case r.Status < 200 || r.Status > 599:
		errs = append(errs, config.Errorf("status", "%d is outside 200..599", c.Status))
	case (r.Status == 204 || r.Status == 304) && r.Body != "":
		errs = append(errs, config.Errorf("body", "status %d cannot have a body", r.Status))
	}
	if err := checkHeaderValue(r.ContentType); err != nil {
		errs = append(errs, config.Errorf("content_type", "%v", err))
	}
	return r, config.Join(errs...)
}
