package crashtest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gearmand/client"
)

// kindsFunction is the function of TestEveryKindOfJobSurvives.
const kindsFunction = "crashtest-kinds"

// kindJob is one background job of TestEveryKindOfJobSurvives, as submitted.
type kindJob struct {
	id        string // the job's name in this test; its data starts with "id:<id>\x00"
	unique    string
	reducer   string
	data      []byte
	notBefore time.Time // an epoch job's run time
	handle    string    // from JOB_CREATED
}

// kindRun is one run a worker saw.
type kindRun struct {
	handle, unique, reducer string
	data                    []byte
	at                      time.Time
}

// kindData is the data of job id: "id:<id>\x00" and then rest, so that a
// worker can tell which job it runs whatever its unique.
func kindData(id string, rest []byte) []byte {
	return append([]byte("id:"+id+"\x00"), rest...)
}

// TestEveryKindOfJobSurvives acknowledges one background job of each kind
// the protocol has (priorities, empty and "-" uniques, a 64-byte unique,
// epoch, reduce, 1 MiB of binary data, and a background submission that
// joined a queued foreground job), SIGKILLs the server with no load
// running, restarts it and expects every job back whole: same handle,
// unique, reducer, data and priority, and the epoch job not run before
// its time.
func TestEveryKindOfJobSurvives(t *testing.T) {
	for _, st := range durableStores {
		t.Run(st.name, func(t *testing.T) {
			g := newGearmand(t, append(st.args(t), writeThrough...)...)
			l := g.start()
			ctx, c := dial(t, l.addr)

			large := make([]byte, 1<<20)
			for i := range large {
				large[i] = byte(i * 7)
			}
			when := time.Now().Add(2 * time.Second)
			jobs := []*kindJob{
				{id: "normal", unique: "k-normal"},
				{id: "high", unique: "k-high"},
				{id: "low", unique: "k-low"},
				{id: "empty-unique", data: []byte("with\x00NULs\x00")},
				{id: "dash-unique", unique: "-", data: []byte("coalesced on data")},
				{id: "long-unique", unique: strings.Repeat("u", 60) + "-64b"},
				{id: "epoch", unique: "k-epoch", notBefore: time.Unix(when.Unix(), 0)},
				{id: "reduce", unique: "k-reduce", reducer: "k-reducer"},
				{id: "large", unique: "k-large", data: large},
				{id: "joined", unique: "k-joined"},
			}
			submit := map[string]func(j *kindJob) (string, error){
				"high": func(j *kindJob) (string, error) {
					return c.SubmitBackground(ctx, kindsFunction, j.unique, j.data, client.High)
				},
				"low": func(j *kindJob) (string, error) {
					return c.SubmitBackground(ctx, kindsFunction, j.unique, j.data, client.Low)
				},
				"epoch": func(j *kindJob) (string, error) {
					return c.SubmitEpoch(ctx, kindsFunction, j.unique, j.data, when)
				},
				"reduce": func(j *kindJob) (string, error) {
					return c.SubmitReduceBackground(ctx, kindsFunction, j.unique, j.reducer, j.data)
				},
				"joined": func(j *kindJob) (string, error) {
					// A foreground job nobody works on, joined by a
					// background submission: the background JOB_CREATED
					// must mean the job is stored.
					task, err := c.Submit(ctx, kindsFunction, j.unique, j.data, client.Normal)
					if err != nil {
						return "", err
					}
					h, err := c.SubmitBackground(ctx, kindsFunction, j.unique, j.data, client.Normal)
					if err == nil && h != task.Handle {
						err = fmt.Errorf("the background submission got handle %s, the foreground one %s", h, task.Handle)
					}
					return h, err
				},
			}
			for _, j := range jobs {
				j.data = kindData(j.id, j.data)
				do := submit[j.id]
				if do == nil {
					do = func(j *kindJob) (string, error) {
						return c.SubmitBackground(ctx, kindsFunction, j.unique, j.data, client.Normal)
					}
				}
				var err error
				if j.handle, err = do(j); err != nil {
					t.Fatalf("submitting the %s job: %v", j.id, err)
				}
			}
			l.kill(t)

			l = g.start()
			if n := l.replayed(); n != len(jobs) {
				t.Errorf("life %d replayed %d jobs, want %d", l.n, n, len(jobs))
			}
			out, err := adminCommand(l.addr, "prioritystatus")
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("%s\t1\t%d\t1\t0\n", kindsFunction, len(jobs)-2); !strings.Contains(out, want) {
				t.Errorf("after the restart, prioritystatus is\n%s\nwant the row %q (one high, one low)", out, want)
			}

			runs := runKinds(t, l)
			for _, j := range jobs {
				rs := runs[j.id]
				if len(rs) != 1 {
					t.Errorf("the %s job ran %d times after the restart, want once", j.id, len(rs))
					continue
				}
				r := rs[0]
				if r.handle != j.handle || r.unique != j.unique || r.reducer != j.reducer || !bytes.Equal(r.data, j.data) {
					t.Errorf("the %s job came back as handle %q unique %q reducer %q with %d bytes of data (equal: %v); it was handle %q unique %q reducer %q with %d bytes",
						j.id, r.handle, r.unique, r.reducer, len(r.data), bytes.Equal(r.data, j.data), j.handle, j.unique, j.reducer, len(j.data))
				}
				if r.at.Before(j.notBefore) {
					t.Errorf("the %s job ran at %v, before its time %v", j.id, r.at, j.notBefore)
				}
			}
			for id := range runs {
				if !slices.ContainsFunc(jobs, func(j *kindJob) bool { return j.id == id }) {
					t.Errorf("a job %q ran that was never submitted", id)
				}
			}
			l.stop(t)
		})
	}
}

// runKinds works kindsFunction on l with GRAB_JOB_ALL (so reducers come
// through) until l holds none of its jobs, and returns the runs by job id.
func runKinds(t *testing.T, l *life) map[string][]kindRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	runs := make(map[string][]kindRun)
	w, err := client.NewWorker(ctx, l.addr)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	w.SetGrabAll(true)
	err = w.Register(kindsFunction, func(_ context.Context, j *client.Job) ([]byte, error) {
		id, _, _ := bytes.Cut(bytes.TrimPrefix(j.Data, []byte("id:")), []byte{0})
		mu.Lock()
		runs[string(id)] = append(runs[string(id)], kindRun{
			handle: j.Handle, unique: j.Unique, reducer: j.Reducer, data: bytes.Clone(j.Data), at: time.Now(),
		})
		mu.Unlock()
		return nil, nil
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Work(ctx) }()
	defer func() {
		cancel()
		w.Close()
		<-done
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, err := jobsOf(l.addr, kindsFunction)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("life %d: %d jobs of %s still there after 20s", l.n, n, kindsFunction)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	return runs
}
