package main

import (
	"math"
	"math/bits"
	"time"
)

// histogram records durations in log-linear buckets: exact below 128ns,
// then 128 buckets per power of two, so any quantile is within 0.8% of the
// recorded value, from nanoseconds to hours, in a fixed 36 KiB array and
// with no allocation per sample. It is not safe for concurrent use; give
// each goroutine its own and merge them.
type histogram struct {
	counts [histBuckets]uint64
	n      uint64
	sum    float64 // nanoseconds
	min    uint64
	max    uint64
}

const (
	histSubBits = 7
	histSub     = 1 << histSubBits // 128
	histExps    = 64 - histSubBits // enough for any uint64
	histBuckets = histSub + histExps*histSub
)

func histIndex(v uint64) int {
	if v < histSub {
		return int(v)
	}
	e := bits.Len64(v) - histSubBits - 1 // v>>e is in [128, 256)
	return histSub + e*histSub + int(v>>e) - histSub
}

// histValue is the midpoint of bucket i's range.
func histValue(i int) uint64 {
	if i < histSub {
		return uint64(i)
	}
	e := (i - histSub) / histSub
	m := uint64((i-histSub)%histSub + histSub)
	lo := m << e
	hi := (m+1)<<e - 1
	return lo + (hi-lo)/2
}

// record adds one duration (negative counts as zero).
func (h *histogram) record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[histIndex(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

// merge adds o's samples to h.
func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// count is the number of samples.
func (h *histogram) count() uint64 { return h.n }

// quantile returns the q-quantile (0..1) of the samples: the smallest
// recorded value with at least q of the samples at or below it. It is 0
// for an empty histogram; q=1 is the exact maximum.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q >= 1 {
		return time.Duration(h.max)
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := histValue(i)
			return time.Duration(min(max(v, h.min), h.max))
		}
	}
	return time.Duration(h.max)
}

// mean is the average sample.
func (h *histogram) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}
