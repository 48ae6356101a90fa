package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// FieldError is one problem in a config file. Path is the dotted field path
// from the document root ("upstreams[0].backends[1].address"); File and Line
// are filled in by the loader when it knows them.
type FieldError struct {
	File string
	Line int
	Path string
	Msg  string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
		if e.Line > 0 {
			b.WriteString(strconv.Itoa(e.Line))
			b.WriteByte(':')
		}
		b.WriteByte(' ')
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errorf returns a FieldError for the field at path (relative to the struct
// whose Validate reports it).
func Errorf(path, format string, args ...any) error {
	return &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Errors is a list of problems; Validate methods may return one to report
// everything at once. Use Join to build it.
type Errors []*FieldError

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap lets errors.As find the individual FieldErrors.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Join flattens errs (nils are skipped) into Errors. A plain error that is not
// a FieldError becomes one with an empty path. It returns nil when there is
// nothing to report.
func Join(errs ...error) error {
	var out Errors
	for _, err := range errs {
		out = append(out, flatten(err)...)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// In prefixes every path in err with the field name prefix: a child section's
// "address" becomes "backends[1].address" via In("backends[1]", err).
func In(prefix string, err error) error {
	if err == nil {
		return nil
	}
	fes := flatten(err)
	for _, fe := range fes {
		fe.Path = joinPath(prefix, fe.Path)
	}
	return Errors(fes)
}

// At is In for the i-th element of the list field name: At("backends", 1, err).
func At(name string, i int, err error) error {
	return In(Index(name, i), err)
}

// Index formats the path of a list element: Index("backends", 1) = "backends[1]".
func Index(name string, i int) string {
	return name + "[" + strconv.Itoa(i) + "]"
}

// Key formats the path of a map entry: Key("databases", "app") = "databases.app".
func Key(name, key string) string {
	return joinPath(name, key)
}

func joinPath(prefix, path string) string {
	switch {
	case prefix == "":
		return path
	case path == "":
		return prefix
	case strings.HasPrefix(path, "["):
		return prefix + path
	default:
		return prefix + "." + path
	}
}

func flatten(err error) []*FieldError {
	if err == nil {
		return nil
	}
	if es, ok := err.(Errors); ok {
		return append([]*FieldError(nil), es...)
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var out []*FieldError
		for _, e := range joined.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return []*FieldError{fe}
	}
	return []*FieldError{{Msg: err.Error()}}
}
