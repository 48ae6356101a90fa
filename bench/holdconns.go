package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/valyala/fasthttp"
)

// holdSpec describes the idle-connection client: N connections to Addr,
// each used once (one HTTP request, or a PostgreSQL login plus SELECT 1),
// then held open and idle until the process is told to stop.
type holdSpec struct {
	Proto    string // "http" or "pg"
	Addr     string
	N        int
	Parallel int    // connections being opened at once
	User     string // pg
	Database string // pg
}

// holdConns opens the connections, reports "ready ok=N failed=M" on out,
// and holds them until ctx ends.
func holdConns(ctx context.Context, spec holdSpec, out io.Writer) error {
	if spec.Parallel <= 0 {
		spec.Parallel = 200
	}
	var use func(net.Conn) error
	switch spec.Proto {
	case "http":
		use = useHTTP
	case "pg":
		use = func(c net.Conn) error { return usePG(c, spec.User, spec.Database) }
	default:
		return errUsage("-hold-proto http|pg, not %q", spec.Proto)
	}
	conns := make([]net.Conn, spec.N)
	var failed atomic.Int64
	var firstErr atomic.Pointer[error]
	sem := make(chan struct{}, spec.Parallel)
	var wg sync.WaitGroup
	for i := range spec.N {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.DialTimeout("tcp", spec.Addr, 10*time.Second)
			if err == nil {
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				if err = use(c); err == nil {
					_ = c.SetDeadline(time.Time{})
					conns[i] = c
					return
				}
				_ = c.Close()
			}
			failed.Add(1)
			firstErr.CompareAndSwap(nil, &err)
		}()
	}
	wg.Wait()
	ok := 0
	for _, c := range conns {
		if c != nil {
			ok++
		}
	}
	msg := ""
	if e := firstErr.Load(); e != nil {
		msg = " first_error=" + fmt.Sprintf("%q", (*e).Error())
	}
	fmt.Fprintf(out, "ready ok=%d failed=%d%s\n", ok, failed.Load(), msg)
	<-ctx.Done()
	for _, c := range conns {
		if c != nil {
			_ = c.Close()
		}
	}
	return nil
}

// useHTTP sends one keep-alive GET and reads the whole response.
func useHTTP(c net.Conn) error {
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: tiergate-bench\r\n\r\n"); err != nil {
		return err
	}
	var resp fasthttp.Response
	if err := resp.Read(bufio.NewReaderSize(c, 1024)); err != nil {
		return err
	}
	if resp.StatusCode() != 200 {
		return fmt.Errorf("status %d", resp.StatusCode())
	}
	if resp.ConnectionClose() {
		return errors.New("server closed the connection")
	}
	return nil
}

// usePG logs in (trust auth) and runs SELECT 1.
func usePG(c net.Conn, user, database string) error {
	fe := pgproto3.NewFrontend(c, c)
	fe.Send(&pgproto3.StartupMessage{
		ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters:      map[string]string{"user": user, "database": database, "application_name": "tiergate-bench"},
	})
	if err := fe.Flush(); err != nil {
		return err
	}
	if err := pgUntilReady(fe); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	fe.Send(&pgproto3.Query{String: "SELECT 1"})
	if err := fe.Flush(); err != nil {
		return err
	}
	return pgUntilReady(fe)
}

func pgUntilReady(fe *pgproto3.Frontend) error {
	var failure error
	for {
		msg, err := fe.Receive()
		if err != nil {
			return err
		}
		switch m := msg.(type) {
		case *pgproto3.ErrorResponse:
			failure = fmt.Errorf("%s: %s", m.Code, m.Message)
		case *pgproto3.AuthenticationOk:
		case *pgproto3.AuthenticationCleartextPassword, *pgproto3.AuthenticationMD5Password, *pgproto3.AuthenticationSASL:
			return errors.New("server asked for a password; the bench uses trust auth")
		case *pgproto3.ReadyForQuery:
			return failure
		}
	}
}

// raiseFileLimit lifts the open-files limit as far as allowed (children
// inherit it): 10,000 idle connections need more than the usual 1024.
func raiseFileLimit(want uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur >= want {
		return lim.Cur, nil
	}
	if lim.Max < want {
		// Root may raise the hard limit too.
		try := syscall.Rlimit{Cur: want, Max: want}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &try); err == nil {
			return want, nil
		}
	}
	lim.Cur = min(want, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	return lim.Cur, nil
}
