//go:build linux

package pgproxy

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"

	"go.uber.org/zap"
)

// parker holds idle clients without a goroutine each: a parked session's
// socket is watched by one epoll instance, and its goroutine (with its
// stack) is gone until the client sends something (or hangs up), when a
// new one resumes the session. Only sessions with nothing buffered, no
// server connection and no transaction park (see session.canPark).
type parker struct {
	log    *zap.Logger
	epfd   int
	resume func(*session)

	mu     sync.Mutex
	parked map[int32]*session // by socket fd
}

func newParker(log *zap.Logger, resume func(*session)) (*parker, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &parker{log: log, epfd: fd, resume: resume, parked: map[int32]*session{}}, nil
}

// socketFD returns the descriptor of a plain TCP client connection; other
// connections (TLS: records may sit in its buffer) do not park.
func socketFD(c net.Conn) (int32, bool) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return 0, false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var fd int32
	if rc.Control(func(f uintptr) { fd = int32(f) }) != nil {
		return 0, false
	}
	return fd, true
}

// park hands s to the poller; on success the caller's goroutine must stop
// touching s. If the socket is already readable the session resumes at
// once (level-triggered).
func (p *parker) park(s *session) bool {
	fd, ok := socketFD(s.conn)
	if !ok {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.parked == nil || s.srv.draining.Load() { // closed, or draining (wakeAll ran or is about to)
		return false
	}
	p.parked[fd] = s
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: fd}
	if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev); err != nil {
		delete(p.parked, fd)
		p.log.Debug("park failed", zap.Error(err))
		return false
	}
	return true
}

// take removes fd's session from the poller.
func (p *parker) take(fd int32) *session {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.parked[fd]
	if s != nil {
		delete(p.parked, fd)
		_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
	}
	return s
}

// count is the number of parked sessions.
func (p *parker) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.parked)
}

// run resumes sessions whose sockets become readable until ctx ends; then
// it resumes every parked session (they find the proxy draining) and
// closes the poller.
func (p *parker) run(ctx context.Context) {
	events := make([]syscall.EpollEvent, 128)
	for ctx.Err() == nil {
		n, err := syscall.EpollWait(p.epfd, events, 200)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			p.log.Error("epoll wait", zap.Error(err))
			break
		}
		for _, ev := range events[:n] {
			if s := p.take(ev.Fd); s != nil {
				go p.resume(s)
			}
		}
	}
	p.wakeAll()
	p.mu.Lock()
	p.parked = nil
	p.mu.Unlock()
	_ = syscall.Close(p.epfd)
}

// wakeAll resumes every parked session (shutdown).
func (p *parker) wakeAll() {
	p.mu.Lock()
	list := make([]int32, 0, len(p.parked))
	for fd := range p.parked {
		list = append(list, fd)
	}
	p.mu.Unlock()
	for _, fd := range list {
		if s := p.take(fd); s != nil {
			go p.resume(s)
		}
	}
}
