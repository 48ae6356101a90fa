package httproute

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
)

// exprEnv is the environment route expressions see: its exported fields are
// the variables, and the functions Header/Cookie/QueryParam read req. The
// compiler is given the value type; at run time the VM gets a *exprEnv.
type exprEnv struct {
	Method   string
	Host     string
	Path     string
	Query    string
	ClientIP string

	req Request
}

// Variables of exprEnv, as exprProgram.uses bits.
const (
	useMethod = 1 << iota
	useHost
	usePath
	useQuery
	useClientIP
	useAll = useMethod | useHost | usePath | useQuery | useClientIP
)

// envVarBit returns the uses bit of an env variable name, or 0.
func envVarBit(name string) int {
	switch name {
	case "Method":
		return useMethod
	case "Host":
		return useHost
	case "Path":
		return usePath
	case "Query":
		return useQuery
	case "ClientIP":
		return useClientIP
	}
	return 0
}

// isRequestFunc reports whether name is one of the request functions, which
// users call as Name(arg) and which are rewritten to Name($env, arg) at
// compile time, so they reach the request without a method value per call.
func isRequestFunc(name string) bool {
	switch name {
	case "Header", "Cookie", "QueryParam":
		return true
	}
	return false
}

// exprProgram is one compiled route expression.
type exprProgram struct {
	src  string
	prog *vm.Program
	uses int // which env variables to fill before running
}

// compileExpr compiles src once at load. The error is expr's own message,
// which points at the offending column.
func compileExpr(src string) (*exprProgram, error) {
	uses := &usedVars{}
	opts := []expr.Option{
		expr.Env(exprEnv{}),
		expr.AsBool(),
		expr.Patch(uses),
		expr.Patch(envArgPatch{}),
		expr.Function("Header", exprHeader, new(func(*exprEnv, string) string)),
		expr.Function("Cookie", exprCookie, new(func(*exprEnv, string) string)),
		expr.Function("QueryParam", exprQueryParam, new(func(*exprEnv, string) string)),
	}
	prog, err := expr.Compile(src, opts...)
	if err != nil {
		return nil, err
	}
	return &exprProgram{src: src, prog: prog, uses: uses.mask}, nil
}

// usedVars records which env variables an expression reads, so evaluation
// converts only those. A user-written $env may read any of them.
type usedVars struct{ mask int }

func (u *usedVars) Visit(node *ast.Node) {
	id, ok := (*node).(*ast.IdentifierNode)
	if !ok {
		return
	}
	if id.Value == "$env" {
		u.mask = useAll
		return
	}
	u.mask |= envVarBit(id.Value)
}

// envArgPatch rewrites Header(x) into Header($env, x), and likewise for the
// other request functions.
type envArgPatch struct{}

func (envArgPatch) Visit(node *ast.Node) {
	call, ok := (*node).(*ast.CallNode)
	if !ok {
		return
	}
	id, ok := call.Callee.(*ast.IdentifierNode)
	if !ok {
		return
	}
	if isRequestFunc(id.Value) {
		env := &ast.IdentifierNode{Value: "$env"}
		env.SetLocation(call.Location())
		call.Arguments = append([]ast.Node{env}, call.Arguments...)
	}
}

func envAndName(params []any) (*exprEnv, string, error) {
	if len(params) != 2 {
		return nil, "", fmt.Errorf("want 1 argument, got %d", len(params)-1)
	}
	env, ok := params[0].(*exprEnv)
	name, ok2 := params[1].(string)
	if !ok || !ok2 || env.req == nil {
		return nil, "", fmt.Errorf("bad arguments")
	}
	return env, name, nil
}

func exprHeader(params ...any) (any, error) {
	env, name, err := envAndName(params)
	if err != nil {
		return nil, err
	}
	v, _ := env.req.Header(name)
	return bytesView(v), nil
}

func exprCookie(params ...any) (any, error) {
	env, name, err := envAndName(params)
	if err != nil {
		return nil, err
	}
	return bytesView(env.req.Cookie(name)), nil
}

func exprQueryParam(params ...any) (any, error) {
	env, name, err := envAndName(params)
	if err != nil {
		return nil, err
	}
	v, _ := queryValue(env.req.Query(), name)
	return bytesView(v), nil
}

// bytesView returns b as a string without copying. The strings handed to an
// expression point into request buffers; they are only read while the
// expression runs, inside Match, during which the request is not modified,
// and the expression's result is a bool, so no view outlives the call.
func bytesView(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// exprState is the per-evaluation scratch: a VM (not safe for concurrent
// use, so pooled) and the env with buffers for the values Match computes
// itself (normalised host, client IP text).
type exprState struct {
	vm      vm.VM
	env     exprEnv
	hostBuf []byte
	ipBuf   []byte
}

type exprPool struct{ p sync.Pool }

func (p *exprPool) get() *exprState {
	if st, ok := p.p.Get().(*exprState); ok {
		return st
	}
	return &exprState{}
}

func (p *exprPool) put(st *exprState) {
	st.env = exprEnv{}
	p.p.Put(st)
}

// prepare fills the env variables in uses that are not filled yet; filled
// accumulates across the expressions tried for one request.
func (st *exprState) prepare(r Request, host []byte, uses int, filled *int) {
	st.env.req = r
	need := uses &^ *filled
	if need == 0 {
		return
	}
	*filled |= need
	if need&useMethod != 0 {
		st.env.Method = methodString(r.Method())
	}
	if need&useHost != 0 {
		st.hostBuf = append(st.hostBuf[:0], host...)
		st.env.Host = bytesView(st.hostBuf)
	}
	if need&usePath != 0 {
		st.env.Path = bytesView(r.Path())
	}
	if need&useQuery != 0 {
		st.env.Query = bytesView(r.Query())
	}
	if need&useClientIP != 0 {
		st.env.ClientIP = ""
		if ip := r.ClientIP(); ip.IsValid() {
			st.ipBuf = ip.Unmap().AppendTo(st.ipBuf[:0])
			st.env.ClientIP = bytesView(st.ipBuf)
		}
	}
}

// eval runs the program; a runtime error or a non-bool result is no match.
func (p *exprProgram) eval(st *exprState) bool {
	out, err := st.vm.Run(p.prog, &st.env)
	if err != nil {
		return false
	}
	b, _ := out.(bool)
	return b
}

// methodString returns well-known methods as constants and others as views.
func methodString(m []byte) string {
	switch string(m) {
	case "GET":
		return "GET"
	case "HEAD":
		return "HEAD"
	case "POST":
		return "POST"
	case "PUT":
		return "PUT"
	case "DELETE":
		return "DELETE"
	case "PATCH":
		return "PATCH"
	case "OPTIONS":
		return "OPTIONS"
	}
	return bytesView(m)
}
