package balancer

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkPick measures Pick+Done from parallel goroutines, with the real
// clock and rand, over 8 and 64 members with mixed weights.
func BenchmarkPick(b *testing.B) {
	for _, policy := range Policies() {
		for _, n := range []int{8, 64} {
			b.Run(fmt.Sprintf("%s/backends=%d", policy, n), func(b *testing.B) {
				weights := make([]int, n)
				for i := range weights {
					weights[i] = 1 + i%4
				}
				pool := testPool(weights...)
				cfg := testConfig(policy)
				cfg.SlowStart = time.Minute
				bal, err := New(cfg, Options{})
				if err != nil {
					b.Fatal(err)
				}
				bal.Update(pool)
				pool[1].SetHealthy(false, time.Now())
				key := []byte("user-1234567")
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						r, err := bal.Pick(PickInfo{Key: key})
						if err != nil {
							b.Fatal(err)
						}
						r.Done(nil, time.Millisecond)
					}
				})
			})
		}
	}
}
