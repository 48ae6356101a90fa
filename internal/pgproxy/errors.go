package pgproxy

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/tiergate/tiergate/internal/failover"
)

// Sentinel errors. The session turns them into ErrorResponses with a
// SQLSTATE in one place (clientError); nothing else in the package knows
// SQLSTATEs except for the server's own ErrorResponses, which are relayed.
var (
	// ErrPoolTimeout: no server connection became free within
	// pool.query_wait_timeout.
	ErrPoolTimeout = errors.New("pgproxy: timed out waiting for a server connection")
	// ErrTooManyClients: max_client_conn reached.
	ErrTooManyClients = errors.New("pgproxy: too many client connections")
	// ErrNoNode: no usable node for the statement's role.
	ErrNoNode = errors.New("pgproxy: no usable server for this statement")
	// ErrServerConn: dialing or talking to a server failed.
	ErrServerConn = errors.New("pgproxy: server connection failed")
	// ErrCanceled: the client cancelled a statement still waiting for a
	// server connection.
	ErrCanceled = errors.New("pgproxy: canceling statement due to user request")
	// ErrShutdown: the proxy is shutting down.
	ErrShutdown = errors.New("pgproxy: the proxy is shutting down")
	// errProtocol: the client broke the wire protocol.
	errProtocol = errors.New("protocol violation")
	// errUnknownDatabase: the client asked for a database not in the config.
	errUnknownDatabase = errors.New("unknown database")
	// errUnsupported: a feature the proxy does not offer (replication, ...).
	errUnsupported = errors.New("not supported")
)

// serverError wraps an I/O failure on a server connection. SafeToRetry
// tells whether nothing of the current request reached the client.
type serverError struct {
	node string
	err  error
}

func (e *serverError) Error() string { return fmt.Sprintf("server %s: %v", e.node, e.err) }
func (e *serverError) Unwrap() []error {
	return []error{ErrServerConn, e.err}
}

// SQLSTATEs the proxy itself reports.
const (
	sqlstateProtocolViolation   = "08P01"
	sqlstateConnectionFailure   = "08006"
	sqlstateTooManyConnections  = "53300"
	sqlstateInvalidPassword     = "28P01"
	sqlstateInvalidAuthSpec     = "28000"
	sqlstateInvalidCatalog      = "3D000"
	sqlstateFeatureNotSupported = "0A000"
	sqlstateAdminShutdown       = "57P01"
	sqlstateSyntaxError         = "42601"
	sqlstateInsufficientPriv    = "42501"
	sqlstateInternal            = "XX000"
	sqlstateCannotConnectNow    = "57P03"
	sqlstateInvalidParameter    = "22023"
	sqlstateQueryCanceled       = "57014"
	sqlstateReadOnlyTxn         = "25006"
)

// clientError maps an error to the ErrorResponse the client sees.
func clientError(err error) *pgproto3.ErrorResponse {
	code, msg := sqlstateInternal, err.Error()
	var le *loginError
	var re *errServerResponse
	switch {
	case errors.As(err, &le):
		code, msg = le.code, le.msg
	case errors.As(err, &re):
		code, msg = re.code, re.msg
	case errors.Is(err, errNotAdmin):
		code = sqlstateInsufficientPriv
	case errors.Is(err, ErrPoolTimeout):
		code, msg = sqlstateTooManyConnections, "query_wait_timeout: no server connection available"
	case errors.Is(err, ErrTooManyClients):
		code, msg = sqlstateTooManyConnections, "sorry, too many clients already"
	case errors.Is(err, ErrCanceled):
		code, msg = sqlstateQueryCanceled, "canceling statement due to user request"
	case errors.Is(err, ErrNoNode):
		code = sqlstateConnectionFailure
	case errors.Is(err, ErrServerConn):
		code = sqlstateConnectionFailure
	case errors.Is(err, ErrShutdown):
		code, msg = sqlstateAdminShutdown, "terminating connection due to administrator command"
	case errors.Is(err, errProtocol):
		code = sqlstateProtocolViolation
	case errors.Is(err, errAuthFailed):
		code = sqlstateInvalidPassword
	case errors.Is(err, errUnknownDatabase):
		code = sqlstateInvalidCatalog
	case errors.Is(err, errUnsupported):
		code = sqlstateFeatureNotSupported
	case errors.Is(err, failover.ErrFenced):
		// Retryable: nothing was sent; the peers are changing (or have
		// not confirmed) the primary.
		code, msg = sqlstateReadOnlyTxn, "cannot execute a write now: "+msg+" (retry)"
	}
	return &pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: code, Message: msg}
}

// errorResponse builds a non-fatal ErrorResponse.
func errorResponse(code, format string, args ...any) *pgproto3.ErrorResponse {
	return &pgproto3.ErrorResponse{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: code, Message: fmt.Sprintf(format, args...)}
}

// asQueryError turns a fatal client error into an ERROR for one query
// (the session goes on).
func asQueryError(err error) *pgproto3.ErrorResponse {
	e := clientError(err)
	e.Severity, e.SeverityUnlocalized = "ERROR", "ERROR"
	return e
}
