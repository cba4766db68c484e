package web_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gearmand/internal/testdep"
)

// chromiumPath finds a Chromium: $CHROME_PATH, or chromium or
// chromium-browser on PATH. Missing, the test skips with what to install,
// except under CI=true where it fails.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROME_PATH"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testdep.Missing(t, "Chromium (or CHROME_PATH)", "chromium")
	return ""
}

// browser starts a headless Chromium for the test and returns a tab.
func browser(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
		// Chromium's sandbox needs user namespaces, which containers and
		// root often do not give it.
		chromedp.NoSandbox,
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tab, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for Chromium to exit
	})
	return tab
}

// shownFunction is a row of the dashboard's functions table, as read from
// the page.
type shownFunction struct {
	Name    string `json:"name"`
	High    string `json:"high"`
	Normal  string `json:"normal"`
	Low     string `json:"low"`
	Running string `json:"running"`
	Workers string `json:"workers"`
}

// readTable is JavaScript that returns the rows of a table, each as an
// object of its cells' text keyed by their data-col.
const readTable = `(id) => Array.from(document.querySelectorAll("#" + id + " tbody tr"))
	.filter((tr) => !tr.querySelector("td.empty"))
	.map((tr) => Object.fromEntries(Array.from(tr.cells).map((td) => [td.dataset.col, td.textContent])))`

func TestDashboardInABrowser(t *testing.T) {
	f := startWorkload(t)
	ctx, cancel := context.WithTimeout(f.ctx, time.Minute)
	defer cancel()
	tab := browser(t, ctx)

	if err := chromedp.Do(tab,
		chromedp.Navigate(f.web+"/"),
		chromedp.WaitVisible(`#live[data-state="live"]`),
	); err != nil {
		t.Fatalf("loading the dashboard in Chromium: %v", err)
	}
	functions := read(t, tab, chromedp.Evaluate[[]shownFunction]("("+readTable+")('functions')"))
	workers := read(t, tab, chromedp.Evaluate[[]map[string]string]("("+readTable+")('workers')"))
	jobs := read(t, tab, chromedp.Evaluate[[]map[string]string]("("+readTable+")('jobs')"))
	health := read(t, tab, chromedp.Text("#store-health"))
	submitted := read(t, tab, chromedp.Text("#submitted"))
	replay := read(t, tab, chromedp.Text("#replay-state"))
	screenshot := read(t, tab, chromedp.FullScreenshot(100))
	saveScreenshot(t, screenshot)

	want := []shownFunction{
		{Name: "resize", High: "0", Normal: "0", Low: "0", Running: "1", Workers: "1"},
		{Name: "mail", High: "0", Normal: "0", Low: "1", Running: "1", Workers: "1"},
	}
	if !slices.Equal(functions, want) {
		t.Errorf("the page shows functions %+v, want %+v", functions, want)
	}
	var shownWorkers []string
	for _, w := range workers {
		shownWorkers = append(shownWorkers, w["client_id"]+": "+w["functions"])
	}
	if want := []string{"resizer: resize", "mailer: mail"}; !slices.Equal(shownWorkers, want) {
		t.Errorf("the page shows workers %q, want %q", shownWorkers, want)
	}
	var states []string
	for _, j := range jobs {
		states = append(states, j["function"]+" "+j["priority"]+" "+j["state"]+" "+j["attempts"])
	}
	if want := []string{"resize normal running 0", "mail low running 0", "mail low queued 1"}; !slices.Equal(states, want) {
		t.Errorf("the page shows jobs %q, want %q", states, want)
	}
	if health != "healthy" || submitted != "5" || replay != "done" {
		t.Errorf("the page shows store %q, %s submitted, replay %q; want healthy, 5, done", health, submitted, replay)
	}

	// Live refresh: a new function appears without reloading the page.
	f.submit(f.client(), "thumbnail", 0, "t1")
	if err := chromedp.Do(tab, chromedp.WaitVisible(`#functions tr[data-function="thumbnail"]`)); err != nil {
		t.Errorf("a function submitted after loading never appeared on the page: %v", err)
	}
}

// read runs one action in the tab and returns its result.
func read[T any](t *testing.T, tab context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(tab, a)
	if err != nil {
		t.Fatalf("reading the dashboard in Chromium: %v", err)
	}
	return v
}

// saveScreenshot keeps the page's picture in the test's temporary folder
// and, when GEARMAND_SCREENSHOT_DIR is set, there too.
func saveScreenshot(t *testing.T, png []byte) {
	t.Helper()
	dirs := []string{t.TempDir()}
	if d := os.Getenv("GEARMAND_SCREENSHOT_DIR"); d != "" {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		p := filepath.Join(d, "dashboard.png")
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Errorf("saving the screenshot: %v", err)
			continue
		}
		t.Logf("screenshot: %s", p)
	}
}
