//go:build !linux

package pgproxy

import (
	"context"
	"errors"

	"go.uber.org/zap"
)

// parker is Linux-only (epoll); elsewhere idle clients keep their
// goroutine.
type parker struct{}

func newParker(*zap.Logger, func(*session)) (*parker, error) {
	return nil, errors.New("parking idle clients needs Linux")
}

func (p *parker) park(*session) bool  { return false }
func (p *parker) count() int          { return 0 }
func (p *parker) run(context.Context) {}
func (p *parker) wakeAll()            {}
