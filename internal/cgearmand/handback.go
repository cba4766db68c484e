package cgearmand

import (
	"context"
	"errors"
	"testing"
	"time"

	"gearmand/store"
)

// HandBackChild is the whole life of a hand-back kill test's child: it
// opens the store, hands its jobs back to C gearmand's layout
// (store.HandBack), closes it, and prints "done", or "error: …" and exits
// 1 if that fails.
func HandBackChild(open func() (store.Store, error)) {
	TakeoverChild(func() (store.Store, error) {
		s, err := open()
		if err != nil {
			return nil, err
		}
		hb, ok := s.(store.HandBack)
		if !ok {
			s.Close()
			return nil, errors.New("the store cannot hand its jobs back")
		}
		if _, err := hb.HandBack(context.Background()); err != nil {
			s.Close()
			return nil, err
		}
		return s, nil
	})
}

// KillWhen polls started until it reports true, then SIGKILLs the child.
// It returns false, killing nothing, if the child ended first having
// printed "done" (the test then saw no half-way state), and fails the
// test if it ended otherwise or started failed.
func (c *Child) KillWhen(tb testing.TB, started func() (bool, error)) bool {
	tb.Helper()
	for {
		select {
		case <-c.exited:
			if out := c.Output(); out != "done\n" {
				tb.Fatalf("the child failed: %q", out)
			}
			return false
		default:
		}
		ok, err := started()
		if err != nil {
			tb.Fatal(err)
		}
		if ok {
			c.Kill()
			return true
		}
		time.Sleep(time.Millisecond) // polling another process's progress
	}
}
