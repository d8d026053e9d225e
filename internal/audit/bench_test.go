package audit_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/signet-dev/signet/internal/audit"
	"github.com/signet-dev/signet/internal/db/dbtest"
)

// BenchmarkWrite is 64 concurrent callers each waiting for its row's
// commit, as the TSA's handlers do under load; ns/op is per row.
func BenchmarkWrite(b *testing.B) {
	pool := dbtest.NewPool(b)
	var n atomic.Int64 // serials are unique across every run
	for _, committers := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("committers=%d", committers), func(b *testing.B) {
			w := audit.New(pool, "ca_certificates", caColumns, quiet, audit.Options{Committers: committers})
			defer w.Close()
			b.SetParallelism(32) // × GOMAXPROCS (2 here): 64 callers
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					if err := w.Write(context.Background(), caRow(fmt.Sprintf("b%d", i), "a@example.com", "a")); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
