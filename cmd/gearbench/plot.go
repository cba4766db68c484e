package main

import (
	"errors"
	"flag"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

func plotCommand(args []string) error {
	fs := flag.NewFlagSet("gearbench plot", flag.ContinueOnError)
	out := fs.String("out", ".", "directory for the PNG files")
	rs, err := parseResults(fs, args)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	files, err := drawPlots(*out, cells(rs))
	for _, f := range files {
		fmt.Println(f)
	}
	return err
}

// Colours of the two servers in every plot.
var (
	cColor  = color.RGBA{R: 0xd6, G: 0x60, B: 0x1f, A: 0xff}
	goColor = color.RGBA{R: 0x1f, G: 0x6f, B: 0xb4, A: 0xff}
)

// drawPlots writes, for each pair, throughput-<pair>.png (jobs/s against
// connection count, one panel per workload run at several counts) and latency-<pair>.png (p50,
// p99 and p99.9 at the main connection count, one panel per workload with
// latencies), and returns the files written.
func drawPlots(dir string, cs []*cell) ([]string, error) {
	var pairs []string
	byPair := map[string][]*cell{}
	for _, c := range cs {
		if _, ok := byPair[c.Pair]; !ok {
			pairs = append(pairs, c.Pair)
		}
		byPair[c.Pair] = append(byPair[c.Pair], c)
	}
	main := mainConns(cs)
	var files []string
	for _, pair := range pairs {
		name := strings.NewReplacer(":", "-", "/", "-", " ", "_").Replace(pair)
		if name == "" {
			name = "unlabelled"
		}
		var tput, lat []*plot.Plot
		for _, w := range workloadsOf(byPair[pair]) {
			var sweep []*cell
			for _, c := range byPair[pair] {
				if c.Workload != w {
					continue
				}
				sweep = append(sweep, c)
				if main[[2]string{pair, w}] == c.Conns && hasLatency(c) {
					p, err := latencyPlot(c)
					if err != nil {
						return files, err
					}
					lat = append(lat, p)
				}
			}
			if len(sweep) < 2 {
				continue // one connection count: the tables say it all
			}
			p, err := throughputPlot(w, sweep)
			if err != nil {
				return files, err
			}
			tput = append(tput, p)
		}
		for _, f := range []struct {
			kind  string
			plots []*plot.Plot
		}{{"throughput", tput}, {"latency", lat}} {
			if len(f.plots) == 0 {
				continue
			}
			path := filepath.Join(dir, f.kind+"-"+name+".png")
			if err := savePanels(path, f.kind+", "+pair+" (C queue:ours)", f.plots); err != nil {
				return files, err
			}
			files = append(files, path)
		}
	}
	if len(files) == 0 {
		return nil, errors.New("no labelled results to plot (runs need --side c or go)")
	}
	return files, nil
}

func workloadsOf(cs []*cell) []string {
	var ws []string
	for _, c := range cs {
		if !slices.Contains(ws, c.Workload) {
			ws = append(ws, c.Workload)
		}
	}
	return ws
}

// throughputPlot draws median jobs/s against connection count for C and
// ours.
func throughputPlot(workload string, sweep []*cell) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = workload
	p.X.Label.Text = "client connections"
	p.Y.Label.Text = "jobs/s"
	p.Y.Min = 0
	p.X.Scale = plot.LogScale{}
	var ticks []plot.Tick
	top, bottom := 0.0, math.Inf(1)
	for _, side := range []struct {
		name  string
		color color.Color
		runs  func(*cell) []Result
	}{
		{"C gearmand", cColor, func(c *cell) []Result { return c.C }},
		{"ours", goColor, func(c *cell) []Result { return c.Go }},
	} {
		var xys plotter.XYs
		for _, c := range sweep {
			if rs := side.runs(c); len(rs) > 0 {
				xys = append(xys, plotter.XY{X: float64(c.Conns), Y: median(rs, jobsPerS)})
				top, bottom = max(top, xys[len(xys)-1].Y), min(bottom, xys[len(xys)-1].Y)
			}
		}
		if len(xys) == 0 {
			continue
		}
		slices.SortFunc(xys, func(a, b plotter.XY) int { return int(a.X - b.X) })
		l, s, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, err
		}
		l.Color, s.Color = side.color, side.color
		l.Width = vg.Points(1.5)
		p.Add(l, s)
		p.Legend.Add(side.name, l, s)
		for _, xy := range xys {
			ticks = append(ticks, plot.Tick{Value: xy.X, Label: strconv.Itoa(int(xy.X))})
		}
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.Y.Max = top * 1.25 // room for the legend
	if bottom > 0 && top/bottom > 20 {
		// C's durable queues can be 100 times slower: a log scale shows both.
		p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
		p.Y.Min, p.Y.Max = bottom/2, top*3
		p.Y.Label.Text = "jobs/s (log scale)"
	}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	return p, nil
}

// latencyPlot draws p50, p99 and p99.9 bars (medians over rounds) for C and
// ours.
func latencyPlot(c *cell) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s, %d×%d in flight", c.Workload, c.Conns, c.Window)
	p.Y.Label.Text = "latency (ms)"
	p.NominalX("p50", "p99", "p99.9")
	w := vg.Points(14)
	top := 0.0
	for i, side := range []struct {
		name  string
		color color.Color
		runs  []Result
	}{{"C gearmand", cColor, c.C}, {"ours", goColor, c.Go}} {
		if len(side.runs) == 0 {
			continue
		}
		var v plotter.Values
		for _, pick := range []func(Latency) float64{p50, p99, p999} {
			v = append(v, median(side.runs, latencyOf(pick))/1000)
			top = max(top, v[len(v)-1])
		}
		b, err := plotter.NewBarChart(v, w)
		if err != nil {
			return nil, err
		}
		b.Color = side.color
		b.LineStyle.Width = 0
		b.Offset = vg.Length(2*i-1) * w / 2
		p.Add(b)
		p.Legend.Add(side.name, b)
	}
	p.Y.Min, p.Y.Max = 0, top*1.3 // room for the legend above the bars
	p.Legend.Top = true
	p.Legend.Left = true
	return p, nil
}

// savePanels lays plots out side by side, up to three a row, under a
// title, and writes them as one PNG.
func savePanels(path, title string, plots []*plot.Plot) error {
	cols := min(len(plots), 3)
	rows := (len(plots) + cols - 1) / cols
	grid := make([][]*plot.Plot, rows)
	for i, p := range plots {
		grid[i/cols] = append(grid[i/cols], p)
	}
	for len(grid[rows-1]) < cols {
		grid[rows-1] = append(grid[rows-1], nil)
	}
	const panel = 4 * vg.Inch
	img := vgimg.New(vg.Length(cols)*panel, vg.Length(rows)*panel*3/4+0.4*vg.Inch)
	dc := draw.New(img)
	head := plot.New()
	head.Title.Text = title
	head.HideAxes()
	top := draw.Crop(dc, 0, 0, vg.Length(rows)*panel*3/4, 0)
	head.Draw(top)
	body := draw.Crop(dc, 0, 0, 0, -0.4*vg.Inch)
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align(grid, tiles, body)
	for i := range grid {
		for j, p := range grid[i] {
			if p != nil {
				p.Draw(canvases[i][j])
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
