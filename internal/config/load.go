package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Defaulter is implemented by config structs that fill in defaults.
type Defaulter interface{ SetDefaults() }

// Validator is implemented by config structs that check themselves.
type Validator interface{ Validate() error }

// ErrInvalid is wrapped by every error Load and Parse return for a file that
// was read but is not a valid config.
var ErrInvalid = errors.New("invalid config")

// LookupEnv resolves ${NAME} references; os.LookupEnv by default.
type LookupEnv func(name string) (string, bool)

// Load reads the YAML file at path into dst (a pointer to a struct): strict
// decoding, ${ENV} expansion, then dst.SetDefaults() and dst.Validate() when
// implemented. Every problem is reported as "path:line: field: message".
func Load(path string, dst any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data, dst, os.LookupEnv)
}

// Parse is Load on bytes already read; name is used in error messages.
func Parse(name string, data []byte, dst any, env LookupEnv) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("config.Parse: dst must be a non-nil pointer, got %T", dst)
	}
	if env == nil {
		env = os.LookupEnv
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return wrapInvalid(syntaxError(name, err))
	}
	idx := &pathIndex{lines: map[string]int{}, byLine: map[int]string{}}
	if len(doc.Content) > 0 {
		root := doc.Content[0]
		w := walker{file: name, env: env, idx: idx}
		w.walk(root, rv.Type().Elem(), "")
		if len(w.errs) > 0 {
			return wrapInvalid(w.errs)
		}
		if err := root.Decode(dst); err != nil {
			return wrapInvalid(decodeError(name, idx, err))
		}
	}
	if d, ok := dst.(Defaulter); ok {
		d.SetDefaults()
	}
	if v, ok := dst.(Validator); ok {
		if err := v.Validate(); err != nil {
			return wrapInvalid(locate(name, idx, err))
		}
	}
	return nil
}

func wrapInvalid(err error) error {
	return &invalidError{err}
}

type invalidError struct{ err error }

func (e *invalidError) Error() string   { return e.err.Error() }
func (e *invalidError) Unwrap() []error { return []error{ErrInvalid, e.err} }

// pathIndex remembers where each field path appears in the file.
type pathIndex struct {
	lines  map[string]int // field path -> line of its value
	byLine map[int]string // line -> deepest field path on it
}

func (p *pathIndex) add(path string, line int) {
	if path == "" {
		return
	}
	p.lines[path] = line
	if old, ok := p.byLine[line]; !ok || len(path) > len(old) {
		p.byLine[line] = path
	}
}

// lineOf returns the line of path, or of its closest ancestor present in the
// file (a missing required field points at its parent section).
func (p *pathIndex) lineOf(path string) int {
	for path != "" {
		if l, ok := p.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

func locate(file string, idx *pathIndex, err error) error {
	fes := flatten(err)
	for _, fe := range fes {
		fe.File = file
		if fe.Line == 0 {
			fe.Line = idx.lineOf(fe.Path)
		}
	}
	return Errors(fes)
}

var lineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func syntaxError(file string, err error) error {
	msg := err.Error()
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &FieldError{File: file, Line: line, Msg: m[2]}
	}
	return &FieldError{File: file, Msg: strings.TrimPrefix(msg, "yaml: ")}
}

func decodeError(file string, idx *pathIndex, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		fe := &FieldError{File: file, Msg: err.Error()}
		if m := lineRE.FindStringSubmatch(fe.Msg); m != nil {
			fe.Line, _ = strconv.Atoi(m[1])
			fe.Msg = m[2]
			fe.Path = idx.byLine[fe.Line]
		}
		return fe
	}
	var out Errors
	for _, msg := range te.Errors {
		fe := &FieldError{File: file, Msg: msg}
		if m := lineRE.FindStringSubmatch(msg); m != nil {
			fe.Line, _ = strconv.Atoi(m[1])
			fe.Msg = m[2]
			fe.Path = idx.byLine[fe.Line]
		}
		fe.Msg = strings.Replace(fe.Msg, "cannot unmarshal", "cannot use", 1)
		out = append(out, fe)
	}
	return out
}

// walker checks the YAML tree against the Go type before decoding: unknown
// keys, duplicate keys, ${ENV} expansion, and the path of every node.
type walker struct {
	file string
	env  LookupEnv
	idx  *pathIndex
	errs Errors
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

func (w *walker) fail(n *yaml.Node, path, format string, args ...any) {
	w.errs = append(w.errs, &FieldError{File: w.file, Line: n.Line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	w.idx.add(path, n.Line)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) || t.Kind() == reflect.Interface {
		w.expandAll(n, path)
		return
	}
	switch n.Kind {
	case yaml.ScalarNode:
		w.expand(n, path)
	case yaml.MappingNode:
		switch t.Kind() {
		case reflect.Struct:
			w.walkStruct(n, t, path)
		case reflect.Map:
			seen := map[string]bool{}
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if k.Value == "<<" {
					continue
				}
				if seen[k.Value] {
					w.fail(k, Key(path, k.Value), "duplicate key")
				}
				seen[k.Value] = true
				w.walk(v, t.Elem(), Key(path, k.Value))
			}
		}
	case yaml.SequenceNode:
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			for i, c := range n.Content {
				w.walk(c, t.Elem(), Index(path, i))
			}
		}
	}
}

// fieldsOf maps yaml names to struct fields, following ",inline".
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range fieldsOf(ft) {
					out[k] = v
				}
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

func (w *walker) walkStruct(n *yaml.Node, t reflect.Type, path string) {
	fields := fieldsOf(t)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value == "<<" {
			continue
		}
		fp := Key(path, k.Value)
		ft, ok := fields[k.Value]
		if !ok {
			w.fail(k, fp, "unknown field%s", suggest(k.Value, fields))
			continue
		}
		if seen[k.Value] {
			w.fail(k, fp, "duplicate key")
		}
		seen[k.Value] = true
		w.idx.add(fp, k.Line)
		w.walk(v, ft, fp)
	}
}

func suggest(name string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	best, bestD := "", 3
	for _, k := range names {
		if d := editDistance(name, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return " (known: " + strings.Join(names, ", ") + ")"
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func (w *walker) expandAll(n *yaml.Node, path string) {
	if n.Kind == yaml.ScalarNode {
		w.expand(n, path)
		return
	}
	for _, c := range n.Content {
		w.expandAll(c, path)
	}
}

// expand replaces ${NAME} and ${NAME:-default} in a scalar value; "$$" is a
// literal "$". A reference to an unset variable without default is an error.
func (w *walker) expand(n *yaml.Node, path string) {
	if !strings.Contains(n.Value, "$") {
		return
	}
	out, err := ExpandEnv(n.Value, w.env)
	if err != nil {
		w.fail(n, path, "%v", err)
		return
	}
	if out != n.Value {
		n.Value = out
		if n.Style == 0 || n.Style == yaml.TaggedStyle {
			n.Tag = "" // let YAML re-resolve the type of the expanded value
		}
	}
}

// ExpandEnv expands ${NAME} and ${NAME:-default} in s; "$$" is a literal "$"
// and a "$" not followed by "{" or "$" is kept as is.
func ExpandEnv(s string, env LookupEnv) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", fmt.Errorf("unterminated ${ in %q", s)
			}
			ref := s[i+2 : i+2+end]
			name, def, hasDef := strings.Cut(ref, ":-")
			if !validEnvName(name) {
				return "", fmt.Errorf("invalid environment variable name %q", name)
			}
			v, ok := env(name)
			switch {
			case ok && v != "":
				b.WriteString(v)
			case hasDef:
				b.WriteString(def)
			case ok:
			default:
				return "", fmt.Errorf("environment variable %s is not set (use ${%s:-default} for a default)", name, name)
			}
			i += 2 + end
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r == '_' || (r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z') || (i > 0 && r >= '0' && r <= '9') {
			continue
		}
		return false
	}
	return true
}
