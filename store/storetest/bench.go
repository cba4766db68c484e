package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"gearmand/store"
)

// Bench runs the shared store benchmarks, each on a fresh store from open
// (which Bench closes):
//
//   - Apply/batch=B/payload=P: one op is one record made durable. Each
//     Apply adds B records with P bytes of Data and deletes the B records
//     the Apply before it added, as in a server whose workers keep up, so
//     the store stays small however long the benchmark runs.
//   - Replay/records=N/payload=P: one op is one record replayed.
//
// SetBytes counts the payload, so MB/s is payload made durable per second.
func Bench(b *testing.B, open func(b *testing.B) store.Store) {
	for _, c := range []struct{ batch, payload int }{
		{1, 64},
		{100, 64},
		{1000, 64},
		{100, 4096},
	} {
		b.Run(fmt.Sprintf("Apply/batch=%d/payload=%d", c.batch, c.payload), func(b *testing.B) {
			benchApply(b, open, c.batch, c.payload)
		})
	}
	b.Run("Replay/records=10000/payload=64", func(b *testing.B) {
		benchReplay(b, open, 10_000, 64)
	})
}

func benchApply(b *testing.B, open func(b *testing.B) store.Store, batch, payload int) {
	s := open(b)
	b.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	data := pattern(payload)
	adds := make([]store.Record, batch)
	for i := range adds {
		// Uniques differ within a batch, as the queue coalesces
		// background jobs that share one; a store keyed by unique (C
		// gearmand's table) would otherwise measure its collision path.
		adds[i] = Sample(uint64(i))
		adds[i].Data = data
	}
	deletes := make([]uint64, 0, batch)
	var seq uint64
	b.ReportAllocs()
	b.SetBytes(int64(payload))
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(batch, b.N-done)
		deletes = deletes[:0]
		for i := range n {
			if seq >= uint64(batch) {
				deletes = append(deletes, seq+1-uint64(batch))
			}
			seq++
			adds[i].Seq = seq
		}
		if err := s.Apply(ctx, store.Batch{Adds: adds[:n], Deletes: deletes}); err != nil {
			b.Fatalf("Apply: %v", err)
		}
		done += n
	}
}

func benchReplay(b *testing.B, open func(b *testing.B) store.Store, records, payload int) {
	s := open(b)
	b.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	data := pattern(payload)
	for first := 0; first < records; first += 1000 {
		var batch store.Batch
		for seq := first + 1; seq <= min(first+1000, records); seq++ {
			r := Sample(uint64(seq))
			r.Data = data
			batch.Adds = append(batch.Adds, r)
		}
		if err := s.Apply(ctx, batch); err != nil {
			b.Fatalf("Apply: %v", err)
		}
	}
	b.ReportAllocs()
	b.SetBytes(int64(payload))
	b.ResetTimer()
	for done := 0; done < b.N; {
		err := s.Replay(ctx, func(store.Record) error {
			done++
			if done == b.N {
				return errBenchDone
			}
			return nil
		})
		if err != nil && !errors.Is(err, errBenchDone) {
			b.Fatalf("Replay: %v", err)
		}
	}
}

var errBenchDone = errors.New("storetest: benchmark done")
