package cgearmand

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"gearmand/client"
)

// Ran is one job a Drain's worker ran.
type Ran struct {
	Function, Unique string
	Data             []byte
}

// Drain runs one worker of functions on the job server at addr (C
// gearmand or ours) until it has run n jobs and the server's admin status
// shows none of those functions queued or running, and returns the jobs
// in the order they ran. It fails the test if that takes over 30s.
func Drain(tb testing.TB, addr string, n int, functions ...string) []Ran {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := client.NewWorker(ctx, addr)
	if err != nil {
		tb.Fatal(err)
	}
	defer w.Close()
	var (
		mu  sync.Mutex
		ran []Ran
		all = make(chan struct{})
	)
	for _, f := range functions {
		err := w.Register(f, func(_ context.Context, j *client.Job) ([]byte, error) {
			mu.Lock()
			defer mu.Unlock()
			ran = append(ran, Ran{Function: j.Function, Unique: j.Unique, Data: bytes.Clone(j.Data)})
			if len(ran) == n {
				close(all)
			}
			return nil, nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- w.Work(ctx) }()
	select {
	case <-all:
	case <-ctx.Done():
		mu.Lock()
		defer mu.Unlock()
		tb.Fatalf("the worker ran %d of %d jobs from %s in 30s", len(ran), n, addr)
	}
	// The last completion must reach the server before the test looks.
	server := &Server{Addr: addr}
	for busy := true; busy; {
		busy = false
		q := server.Queued(tb)
		for _, f := range functions {
			busy = busy || q[f] > 0
		}
		if busy {
			select {
			case <-ctx.Done():
				tb.Fatalf("%s still holds jobs after its worker ran %d: %v", addr, n, q)
			case <-time.After(10 * time.Millisecond): // polling the admin status
			}
		}
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	return ran
}
