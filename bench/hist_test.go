package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		name string
		gen  func() time.Duration
	}{
		{"constant", func() time.Duration { return 250 * time.Microsecond }},
		{"uniform 0-10ms", func() time.Duration { return time.Duration(rng.Int64N(int64(10 * time.Millisecond))) }},
		{"exponential mean 1ms", func() time.Duration { return time.Duration(rng.ExpFloat64() * float64(time.Millisecond)) }},
		{"tiny (exact buckets)", func() time.Duration { return time.Duration(rng.IntN(120)) }},
		{"long tail up to 30s", func() time.Duration { return time.Duration(math.Pow(10, 3+rng.Float64()*7.5)) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var h histogram
			xs := make([]time.Duration, 20000)
			for i := range xs {
				xs[i] = tc.gen()
				h.record(xs[i])
			}
			slices.Sort(xs)
			for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
				want := xs[int(math.Ceil(q*float64(len(xs))))-1]
				got := h.quantile(q)
				if diff := math.Abs(float64(got - want)); diff > float64(want)/100+1 {
					t.Errorf("q%.3f = %v, exact %v (off by %.2f%%)", q, got, want, 100*diff/float64(want))
				}
			}
			if got, want := h.quantile(1), xs[len(xs)-1]; got != want {
				t.Errorf("max = %v, want %v", got, want)
			}
			if h.count() != uint64(len(xs)) {
				t.Errorf("count = %d", h.count())
			}
		})
	}
}

func TestHistogramMerge(t *testing.T) {
	var a, b, all histogram
	for i := 1; i <= 1000; i++ {
		d := time.Duration(i) * time.Microsecond
		if i%2 == 0 {
			a.record(d)
		} else {
			b.record(d)
		}
		all.record(d)
	}
	a.merge(&b)
	for _, q := range []float64{0.1, 0.5, 0.99, 1} {
		if a.quantile(q) != all.quantile(q) {
			t.Errorf("merged q%v = %v, want %v", q, a.quantile(q), all.quantile(q))
		}
	}
	if a.mean() != all.mean() {
		t.Errorf("mean %v, want %v", a.mean(), all.mean())
	}
	var empty histogram
	if empty.quantile(0.5) != 0 || empty.mean() != 0 {
		t.Error("empty histogram should report zeros")
	}
}

func TestHistIndexMonotonic(t *testing.T) {
	prev := -1
	for v := uint64(0); v < 1<<22; v += 7 {
		i := histIndex(v)
		if i < prev {
			t.Fatalf("histIndex(%d) = %d < %d", v, i, prev)
		}
		prev = i
		if mid := histValue(i); float64(absDiff(mid, v)) > float64(v)/128+1 {
			t.Fatalf("histValue(histIndex(%d)) = %d, too far", v, mid)
		}
	}
	if histIndex(math.MaxUint64) >= histBuckets {
		t.Fatal("largest value out of range")
	}
}

func absDiff(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return b - a
}

func BenchmarkHistogramRecord(b *testing.B) {
	b.ReportAllocs()
	var h histogram
	for i := 0; b.Loop(); i++ {
		h.record(time.Duration(i&0xfffff) * time.Nanosecond)
	}
}
