package queue

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"gearmand/protocol"
)

// TestRandomOperationsKeepInvariants drives the queue with a seeded random
// mix of every operation and checks the internal invariants after each one:
// counters match jobs, links go both ways, indexes hold live jobs only.
func TestRandomOperationsKeepInvariants(t *testing.T) {
	for seed := range uint64(20) {
		t.Run("seed="+strconv.FormatUint(seed, 10), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
			h := newHarness(t, Config{JobRetries: rng.IntN(4) - 1, WorkerWakeup: rng.IntN(3)})
			fns := []string{"a", "b", "c"}
			var sessions []*conn
			for i := range 6 {
				sessions = append(sessions, h.connect("s"+strconv.Itoa(i)))
			}
			pick := func() *conn { return sessions[rng.IntN(len(sessions))] }
			fn := func() []byte { return []byte(fns[rng.IntN(len(fns))]) }
			var assigned, completed, retried int
			for step := range 3000 {
				s := pick()
				switch op := rng.IntN(16); op {
				case 0, 1, 2:
					sub := Submission{
						Function:   fn(),
						Unique:     []byte([]string{"", "-", "u1", "u2", "u3"}[rng.IntN(5)]),
						Data:       []byte([]string{"", "x", "y"}[rng.IntN(3)]),
						Priority:   Priority(rng.IntN(3)),
						Background: rng.IntN(2) == 0,
					}
					if sub.Background && rng.IntN(4) == 0 {
						sub.RunAt = h.clock.Now().Add(time.Duration(rng.IntN(5)) * time.Second)
					}
					_ = h.q.Submit(s.s, sub)
				case 3, 4:
					h.q.Grab(s.s, GrabKind(rng.IntN(3)))
				case 5, 6, 7:
					h.q.mu.Lock()
					var handle string
					if n := len(s.s.assigned); n > 0 {
						handle = s.s.assigned[rng.IntN(n)].handle
					}
					h.q.mu.Unlock()
					if handle == "" {
						handle = "H:t:" + strconv.Itoa(rng.IntN(50))
					}
					typ := []protocol.Type{protocol.WorkData, protocol.WorkStatus, protocol.WorkComplete,
						protocol.WorkFail, protocol.WorkException, protocol.WorkWarning}[rng.IntN(6)]
					args := []string{handle, "1", "2"}[:typ.NumArgs()]
					if h.work(s, typ, args...) == nil && typ == protocol.WorkComplete {
						completed++
					}
				case 8:
					h.q.PreSleep(s.s)
				case 9:
					h.q.CanDo(s.s, fn(), time.Duration(rng.IntN(3))*time.Second)
				case 10:
					h.q.CantDo(s.s, fn())
				case 11:
					if rng.IntN(4) == 0 {
						h.q.ResetAbilities(s.s)
					}
				case 12:
					if rng.IntN(4) == 0 {
						h.q.Disconnect(s.s)
						*s = *h.connect(s.name)
					}
				case 13:
					if rng.IntN(3) == 0 {
						h.q.Cancel("H:t:" + strconv.Itoa(rng.IntN(50)))
					}
				case 14:
					h.q.Tick(h.clock.Advance(time.Duration(rng.IntN(1500)) * time.Millisecond))
				case 15:
					switch rng.IntN(3) {
					case 0:
						h.q.SetMaxQueue(string(fn()), [3]int{rng.IntN(4), rng.IntN(4), rng.IntN(4)})
					case 1:
						_ = h.q.DropFunction(string(fn()))
					case 2:
						h.q.StatusUnique([]byte("u1"))
						h.q.Workers()
					}
				}
				for _, c := range sessions {
					for _, pk := range c.p.got {
						if pk.Type == protocol.JobAssign || pk.Type == protocol.JobAssignUniq || pk.Type == protocol.JobAssignAll {
							assigned++
						}
					}
					c.p.got = c.p.got[:0]
				}
				checkInvariants(t, h.q)
				if t.Failed() {
					t.Fatalf("invariants broken at step %d", step)
				}
			}
			for _, j := range h.q.Jobs() {
				retried += int(j.Retries)
			}
			// The walk must reach the interesting states, not idle.
			if assigned < 100 || completed < 10 {
				t.Fatalf("walk too idle: %d assigned, %d completed", assigned, completed)
			}
			t.Logf("%d assigned, %d completed, %d retries pending", assigned, completed, retried)
			// Drain: every job can still finish.
			for _, c := range sessions {
				h.q.Disconnect(c.s)
			}
			h.q.Tick(h.clock.Advance(time.Hour))
			w := h.worker("drain", fns...)
			for range 10000 {
				h.q.Grab(w.s, GrabJob)
				pk := next(t, w)
				if pk.Type == protocol.NoJob {
					break
				}
				h.complete(w, pk.Args[0], "")
			}
			if h.q.Len() != 0 {
				t.Fatalf("jobs left after draining: %+v", h.q.Jobs())
			}
			for _, f := range h.q.Functions() {
				if f.Total() != 0 {
					t.Fatalf("function %+v not empty", f)
				}
			}
		})
	}
}
