package web_test

import (
	"bytes"
	"net/http"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// sample is one scraped series: a gauge or counter value, or a
// histogram's count and sum.
type sample struct {
	value, sum float64
	count      uint64
}

// scrape fetches /metrics and indexes every series as
// name{label="value",...} with labels sorted, or the bare name.
func (f *fixture) scrape() map[string]sample {
	f.t.Helper()
	code, body := f.get("/metrics")
	if code != http.StatusOK {
		f.t.Fatalf("GET /metrics: %d %s", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		f.t.Fatalf("parsing /metrics: %v", err)
	}
	out := make(map[string]sample)
	for name, fam := range families {
		for _, m := range fam.GetMetric() {
			var s sample
			switch fam.GetType() {
			case dto.MetricType_GAUGE:
				s.value = m.GetGauge().GetValue()
			case dto.MetricType_COUNTER:
				s.value = m.GetCounter().GetValue()
			case dto.MetricType_HISTOGRAM:
				s.count, s.sum = m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
			}
			out[seriesKey(name, m.GetLabel())] = s
		}
	}
	return out
}

func seriesKey(name string, labels []*dto.LabelPair) string {
	if len(labels) == 0 {
		return name
	}
	var parts []string
	for _, l := range labels {
		parts = append(parts, l.GetName()+"="+`"`+l.GetValue()+`"`)
	}
	sort.Strings(parts)
	return name + "{" + strings.Join(parts, ",") + "}"
}

func TestMetricsAfterAKnownWorkload(t *testing.T) {
	f := startWorkload(t)
	got := f.scrape()
	want := map[string]float64{
		`gearmand_jobs_queued{function="resize",priority="high"}`:   0,
		`gearmand_jobs_queued{function="resize",priority="normal"}`: 0,
		`gearmand_jobs_queued{function="resize",priority="low"}`:    0,
		`gearmand_jobs_queued{function="mail",priority="high"}`:     0,
		`gearmand_jobs_queued{function="mail",priority="normal"}`:   0,
		`gearmand_jobs_queued{function="mail",priority="low"}`:      1,
		`gearmand_jobs_running{function="resize"}`:                  1,
		`gearmand_jobs_running{function="mail"}`:                    1,
		`gearmand_workers{function="resize"}`:                       1,
		`gearmand_workers{function="mail"}`:                         1,
		`gearmand_jobs_submitted_total`:                             5,
		`gearmand_jobs_completed_total`:                             1,
		`gearmand_jobs_failed_total`:                                1,
		`gearmand_jobs_requeued_total`:                              1,
		`gearmand_jobs`:                                             3,
		`gearmand_connections`:                                      3,
		`gearmand_store_info{kind="memory",mode="write-through"}`:   1,
		`gearmand_store_healthy`:                                    1,
		`gearmand_store_commit_failures_total`:                      0,
		`gearmand_store_pending_writes`:                             0,
		`gearmand_store_pending_bytes`:                              0,
		`gearmand_replay_running`:                                   0,
		`gearmand_replay_jobs`:                                      0,
	}
	for key, v := range want {
		s, ok := got[key]
		if !ok {
			t.Errorf("%s is missing", key)
			continue
		}
		if s.value != v {
			t.Errorf("%s = %v, want %v", key, s.value, v)
		}
	}

	// Five adds, one update and two deletes went to the store, in at least
	// two commits (a job's delete cannot share the commit of its add).
	size, latency := got["gearmand_store_commit_batch_size"], got["gearmand_store_commit_duration_seconds"]
	if size.sum != 8 || size.count < 2 {
		t.Errorf("commit batch sizes: sum %v over %d commits, want 8 over at least 2", size.sum, size.count)
	}
	if latency.count != size.count || latency.sum <= 0 {
		t.Errorf("commit durations: %d commits summing %vs, want %d commits taking some time", latency.count, latency.sum, size.count)
	}
	if st := f.srv.StoreStatus(); uint64(size.count) != st.Commits {
		t.Errorf("histograms saw %d commits, the server counted %d", size.count, st.Commits)
	}
	if _, ok := got["go_goroutines"]; !ok {
		t.Error("the Go runtime collector is missing")
	}
}
