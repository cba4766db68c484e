// Package metrics exposes a Server's figures to Prometheus.
//
// Gauges (queued, running and workers per function, connections, store
// health, replay progress) and the job counters are read from the server's
// snapshots when Prometheus scrapes, by one custom collector: nothing is
// updated per job. The only figures updated as they happen are the two
// store-commit histograms, fed by the server's commit observer from the
// committer's goroutine.
//
// Every metric is named gearmand_*; the Go runtime and process collectors
// are registered beside them.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"gearmand/queue"
	"gearmand/server"
	"gearmand/store"
)

// Metrics is the Prometheus registry of one Server.
type Metrics struct {
	reg           *prometheus.Registry
	commitSeconds prometheus.Histogram
	commitSize    prometheus.Histogram
}

// New builds the registry for srv and makes srv report its store commits
// to it (see server.Server.ObserveCommits, which it takes over).
func New(srv *server.Server) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gearmand_store_commit_duration_seconds",
			Help: "How long each store commit (one Apply of a batch of adds and deletes) took, failed ones included.",
			// 100µs (an in-memory store) to about 15s (a store in trouble).
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 14),
		}),
		commitSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "gearmand_store_commit_batch_size",
			Help:    "Adds plus deletes written by each store commit.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10),
		}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.commitSeconds,
		m.commitSize,
		newSnapshotCollector(srv),
	)
	srv.ObserveCommits(m.ObserveCommit)
	return m
}

// ObserveCommit records one store commit in the histograms.
func (m *Metrics) ObserveCommit(c store.Commit) {
	m.commitSeconds.Observe(c.Duration.Seconds())
	m.commitSize.Observe(float64(c.Adds + c.Deletes))
}

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// snapshotCollector reads the server's snapshots at scrape time.
type snapshotCollector struct {
	srv *server.Server

	queued, running, workers                  *prometheus.Desc
	submitted, completed, failed, requeued    *prometheus.Desc
	connections, jobs                         *prometheus.Desc
	storeInfo, storeHealthy, storeFailures    *prometheus.Desc
	storePending, storePendingBytes           *prometheus.Desc
	storeFree, storeMinFree, storeSpaceLow    *prometheus.Desc
	replayRunning, replayJobs, replayDuration *prometheus.Desc
}

func newSnapshotCollector(srv *server.Server) *snapshotCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("gearmand_"+name, help, labels, nil)
	}
	return &snapshotCollector{
		srv:               srv,
		queued:            d("jobs_queued", "Jobs waiting for a worker (delayed epoch jobs included), per function and priority.", "function", "priority"),
		running:           d("jobs_running", "Jobs assigned to a worker, per function.", "function"),
		workers:           d("workers", "Worker registrations (CAN_DO), per function.", "function"),
		submitted:         d("jobs_submitted_total", "Jobs created by submissions (coalesced submissions and replayed jobs are not counted)."),
		completed:         d("jobs_completed_total", "Jobs that ended with WORK_COMPLETE."),
		failed:            d("jobs_failed_total", "Jobs that ended with WORK_FAIL or WORK_EXCEPTION, or ran out of retries."),
		requeued:          d("jobs_requeued_total", "Jobs put back in their queue after their worker was lost or timed out."),
		connections:       d("connections", "Open client and worker connections."),
		jobs:              d("jobs", "Jobs held: queued, delayed, waiting for the store or running."),
		storeInfo:         d("store_info", "The store in use (always 1).", "kind", "mode"),
		storeHealthy:      d("store_healthy", "1 unless the latest store commit failed or the space guard refuses new jobs."),
		storeFailures:     d("store_commit_failures_total", "Store commits that failed."),
		storePending:      d("store_pending_writes", "Background jobs waiting for, or being written to, the store."),
		storePendingBytes: d("store_pending_bytes", "Payload bytes of the background jobs waiting for the store."),
		storeFree:         d("store_free_bytes", "Free bytes on the store's filesystem, as the space guard last saw them (with --store-min-free and a file store only)."),
		storeMinFree:      d("store_min_free_bytes", "The space guard's minimum (--store-min-free)."),
		storeSpaceLow:     d("store_space_low", "1 while the store's filesystem has less than --store-min-free free and new background jobs are refused."),
		replayRunning:     d("replay_running", "1 while the start-up replay of stored jobs runs."),
		replayJobs:        d("replay_jobs", "Jobs loaded by the start-up replay (so far, while it runs)."),
		replayDuration:    d("replay_duration_seconds", "How long the start-up replay took (so far, while it runs)."),
	}
}

// Describe implements prometheus.Collector.
func (c *snapshotCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.queued, c.running, c.workers, c.submitted, c.completed, c.failed, c.requeued,
		c.connections, c.jobs, c.storeInfo, c.storeHealthy, c.storeFailures, c.storePending,
		c.storePendingBytes, c.storeFree, c.storeMinFree, c.storeSpaceLow,
		c.replayRunning, c.replayJobs, c.replayDuration,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *snapshotCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	for _, f := range c.srv.Functions() {
		for p, n := range f.Queued {
			gauge(c.queued, float64(n), f.Name, queue.Priority(p).String())
		}
		gauge(c.running, float64(f.Running), f.Name)
		gauge(c.workers, float64(f.Workers), f.Name)
	}
	n := c.srv.Counters()
	counter(c.submitted, n.Submitted)
	counter(c.completed, n.Completed)
	counter(c.failed, n.Failed)
	counter(c.requeued, n.Requeued)
	gauge(c.connections, float64(c.srv.Connections()))
	gauge(c.jobs, float64(c.srv.JobsPage(0, 0).Total))

	st := c.srv.StoreStatus()
	gauge(c.storeInfo, 1, st.Kind, st.Mode)
	gauge(c.storeHealthy, boolValue(st.Healthy))
	counter(c.storeFailures, st.Failures)
	gauge(c.storePending, float64(st.PendingAdds))
	gauge(c.storePendingBytes, float64(st.PendingBytes))
	if sp := st.Space; sp != nil {
		gauge(c.storeFree, float64(sp.Free))
		gauge(c.storeMinFree, float64(sp.Min))
		gauge(c.storeSpaceLow, boolValue(sp.Low))
	}

	r := c.srv.ReplayStatus()
	gauge(c.replayRunning, boolValue(r.State == server.ReplayRunning))
	gauge(c.replayJobs, float64(r.Loaded))
	gauge(c.replayDuration, r.Duration.Seconds())
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
