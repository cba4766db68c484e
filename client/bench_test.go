package client

import (
	"context"
	"testing"
)

// Loopback benchmarks against the in-process server, many goroutines
// sharing one pipelined Client. Run them with -benchtime=1x in CI so they
// cannot rot.

func BenchmarkSubmitBackground(b *testing.B) {
	ctx := testCtx(b)
	c := dial(b, startServer(b))
	data := make([]byte, 64)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	b.SetParallelism(32) // requests in flight per GOMAXPROCS
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.SubmitBackground(ctx, "bench-bg", "", data, Normal); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkEcho(b *testing.B) {
	ctx := testCtx(b)
	c := dial(b, startServer(b))
	data := make([]byte, 64)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	b.SetParallelism(32) // requests in flight per GOMAXPROCS
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Echo(ctx, data); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCall is the foreground round trip: submit, a worker runs the
// job, the result comes back. Two workers share the load.
func BenchmarkCall(b *testing.B) {
	ctx := testCtx(b)
	addr := startServer(b)
	for range 2 {
		startWorker(b, addr, func(w *Worker) {
			mustRegister(b, w, "bench-call", func(ctx context.Context, job *Job) ([]byte, error) {
				return job.Data, nil
			})
		})
	}
	c := dial(b, addr)
	data := make([]byte, 64)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	b.SetParallelism(32) // requests in flight per GOMAXPROCS
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Call(ctx, "bench-call", "", data, Normal); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
