package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gearmand/server"
	"gearmand/server/web"
	"gearmand/store/memstore"
)

// diskStore is a memstore that says it lives in a directory (the
// store.Pather capability), so that the server watches its free space.
type diskStore struct {
	*memstore.Store
	dir string
}

func (d diskStore) Path() string { return d.dir }

// startFullDisk runs a fixture whose space guard is tripped: no disk has
// 4 EiB free.
func startFullDisk(t *testing.T) *fixture {
	dir := t.TempDir()
	return startFixture(t, func(c *server.Config) {
		c.Store = diskStore{memstore.New(), dir}
		c.StoreMinFree = 1 << 62
		c.StoreTimeout = 3 * time.Second
	})
}

// TestSpaceGuardInTheAPIAndMetrics: /api/status and /metrics say the
// guard refuses, and with which figures.
func TestSpaceGuardInTheAPIAndMetrics(t *testing.T) {
	f := startFullDisk(t)
	var st web.Status
	f.getJSON("/api/status", &st)
	sp := st.Store.Space
	if sp == nil || !sp.Low || sp.MinFreeBytes != 1<<62 || sp.FreeBytes == 0 || sp.Since == nil || sp.Path == "" {
		t.Errorf("/api/status store.space = %+v, want low, with the minimum, the free bytes and since when", sp)
	}
	if st.Store.Healthy || st.Store.TimeoutMS != 3000 {
		t.Errorf("/api/status store: healthy %v, timeout_ms %v; want false and 3000", st.Store.Healthy, st.Store.TimeoutMS)
	}
	m := f.scrape()
	if m["gearmand_store_space_low"].value != 1 || m["gearmand_store_min_free_bytes"].value != 1<<62 || m["gearmand_store_free_bytes"].value == 0 {
		t.Errorf("/metrics: space_low %v, min_free_bytes %v, free_bytes %v", m["gearmand_store_space_low"], m["gearmand_store_min_free_bytes"], m["gearmand_store_free_bytes"])
	}

	plain := startFixture(t)
	var pst web.Status
	plain.getJSON("/api/status", &pst)
	if pst.Store.Space != nil {
		t.Errorf("a store without a path: store.space = %+v, want none", pst.Store.Space)
	}
	if _, ok := plain.scrape()["gearmand_store_space_low"]; ok {
		t.Errorf("a store without a path has gearmand_store_space_low")
	}
}

// TestSpaceGuardOnTheDashboard: the dashboard's store card says that new
// background jobs are refused, and "not watched" without a guard.
func TestSpaceGuardOnTheDashboard(t *testing.T) {
	for _, c := range []struct {
		name  string
		start func(*testing.T) *fixture
		want  string
	}{
		{"guard low", startFullDisk, "new background jobs refused"},
		{"no guard", func(t *testing.T) *fixture { return startFixture(t) }, "not watched"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := c.start(t)
			ctx, cancel := context.WithTimeout(f.ctx, time.Minute)
			defer cancel()
			tab := browser(t, ctx)
			if err := chromedp.Do(tab,
				chromedp.Navigate(f.web+"/"),
				chromedp.WaitVisible(`#live[data-state="live"]`),
			); err != nil {
				t.Fatalf("loading the dashboard in Chromium: %v", err)
			}
			if got := read(t, tab, chromedp.Text("#store-space")); !strings.Contains(got, c.want) {
				t.Errorf("free space shows %q, want it to say %q", got, c.want)
			}
		})
	}
}
