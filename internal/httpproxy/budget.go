package httpproxy

import (
	"sync/atomic"
	"time"
)

// retryBudget caps retries at ratio × requests plus minPerSecond, like
// Envoy's and Finagle's budgets, so a failing upstream does not turn every
// request into several and make the outage worse. It is a token bucket in
// milli-tokens: each request deposits ratio×1000, each retry withdraws 1000,
// and time refills minPerSecond×1000 per second; the balance is capped at
// ten seconds' worth of the floor plus a burst of requests' deposits.
type retryBudget struct {
	deposit  int64 // per request, milli-tokens
	refill   int64 // per second, milli-tokens
	capacity int64
	balance  atomic.Int64
	last     atomic.Int64 // unix nanos of the last refill
	now      func() time.Time
}

func newRetryBudget(ratio float64, minPerSecond int, now func() time.Time) *retryBudget {
	if now == nil {
		now = time.Now
	}
	b := &retryBudget{
		deposit: int64(ratio * 1000),
		refill:  int64(minPerSecond) * 1000,
		now:     now,
	}
	b.capacity = 10*b.refill + 100*b.deposit + 1000
	b.balance.Store(b.capacity)
	b.last.Store(now().UnixNano())
	return b
}

// onRequest records one client request.
func (b *retryBudget) onRequest() { b.add(b.deposit) }

// tryRetry withdraws a retry, or reports that the budget is spent.
func (b *retryBudget) tryRetry() bool {
	b.refillNow()
	for {
		cur := b.balance.Load()
		if cur < 1000 {
			return false
		}
		if b.balance.CompareAndSwap(cur, cur-1000) {
			return true
		}
	}
}

func (b *retryBudget) refillNow() {
	now := b.now().UnixNano()
	last := b.last.Load()
	elapsed := now - last
	if elapsed < int64(10*time.Millisecond) || !b.last.CompareAndSwap(last, now) {
		return
	}
	b.add(b.refill * elapsed / int64(time.Second))
}

func (b *retryBudget) add(n int64) {
	for {
		cur := b.balance.Load()
		next := min(cur+n, b.capacity)
		if next == cur || b.balance.CompareAndSwap(cur, next) {
			return
		}
	}
}
