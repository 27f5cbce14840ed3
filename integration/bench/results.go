package bench

import (
	"encoding/csv"
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
)

// The two ways.
const (
	Ours     = "ours"
	Baseline = "baseline"
)

// Results collects samples per metric and way.
type Results struct {
	order   []string
	units   map[string]string
	samples map[string]map[string][]float64
}

// NewResults returns empty results.
func NewResults() *Results {
	return &Results{units: map[string]string{}, samples: map[string]map[string][]float64{}}
}

// Add records one sample of metric for way.
func (r *Results) Add(metric, way, unit string, v float64) {
	if _, ok := r.samples[metric]; !ok {
		r.order = append(r.order, metric)
		r.samples[metric] = map[string][]float64{}
		r.units[metric] = unit
	}
	r.samples[metric][way] = append(r.samples[metric][way], v)
}

// Summary is min, median and max of some samples.
type Summary struct {
	N                int
	Min, Median, Max float64
}

// Summarize summarizes samples (N is 0 for none).
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Summary{N: len(s), Min: s[0], Median: m, Max: s[len(s)-1]}
}

// Row is one metric's summaries and ratio (ours/baseline of the medians;
// NaN when the baseline has none).
type Row struct {
	Metric, Unit   string
	Ours, Baseline Summary
	Ratio          float64
}

// Rows returns one row per metric, in the order they were first added.
func (r *Results) Rows() []Row {
	var out []Row
	for _, m := range r.order {
		row := Row{Metric: m, Unit: r.units[m], Ours: Summarize(r.samples[m][Ours]), Baseline: Summarize(r.samples[m][Baseline]), Ratio: math.NaN()}
		if row.Baseline.N > 0 && row.Baseline.Median != 0 {
			row.Ratio = row.Ours.Median / row.Baseline.Median
		}
		out = append(out, row)
	}
	return out
}

func num(v float64, n int) string {
	if n == 0 {
		return ""
	}
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

// WriteCSV writes results.csv (metric,ours_median,baseline_median,ratio,unit)
// and results-detail.csv (min, median and max of each way, and the number
// of samples) into dir.
func (r *Results) WriteCSV(dir string) error {
	rows := r.Rows()
	main := [][]string{{"metric", "ours_median", "baseline_median", "ratio", "unit"}}
	detail := [][]string{{"metric", "way", "n", "min", "median", "max", "unit"}}
	for _, row := range rows {
		ratio := ""
		if !math.IsNaN(row.Ratio) {
			ratio = strconv.FormatFloat(row.Ratio, 'f', 3, 64)
		}
		main = append(main, []string{row.Metric, num(row.Ours.Median, row.Ours.N), num(row.Baseline.Median, row.Baseline.N), ratio, row.Unit})
		for _, w := range []struct {
			name string
			s    Summary
		}{{Ours, row.Ours}, {Baseline, row.Baseline}} {
			if w.s.N == 0 {
				continue
			}
			detail = append(detail, []string{row.Metric, w.name, strconv.Itoa(w.s.N), num(w.s.Min, 1), num(w.s.Median, 1), num(w.s.Max, 1), row.Unit})
		}
	}
	for name, recs := range map[string][][]string{"results.csv": main, "results-detail.csv": detail} {
		if err := writeCSV(filepath.Join(dir, name), recs); err != nil {
			return err
		}
	}
	return nil
}

func writeCSV(path string, recs [][]string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing results: %w", err)
	}
	w := csv.NewWriter(f)
	if err := w.WriteAll(recs); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// Table formats the rows for a log: min/median/max of each way and the
// ratio of the medians.
func (r *Results) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-36s %-42s %-42s %7s %s\n", "metric", "ours min/median/max", "baseline min/median/max", "ratio", "unit")
	for _, row := range r.Rows() {
		f := func(s Summary) string {
			if s.N == 0 {
				return "-"
			}
			return fmt.Sprintf("%s/%s/%s (n=%d)", human(s.Min, row.Unit), human(s.Median, row.Unit), human(s.Max, row.Unit), s.N)
		}
		ratio := "-"
		if !math.IsNaN(row.Ratio) {
			ratio = fmt.Sprintf("%.3f", row.Ratio)
		}
		fmt.Fprintf(&b, "%-36s %-42s %-42s %7s %s\n", row.Metric, f(row.Ours), f(row.Baseline), ratio, row.Unit)
	}
	return b.String()
}

func human(v float64, unit string) string {
	switch unit {
	case "bytes":
		switch {
		case v >= 1<<30:
			return fmt.Sprintf("%.2fG", v/(1<<30))
		case v >= 1<<20:
			return fmt.Sprintf("%.1fM", v/(1<<20))
		case v >= 1<<10:
			return fmt.Sprintf("%.1fK", v/(1<<10))
		}
		return fmt.Sprintf("%.0f", v)
	case "s":
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// ChartGroup is one colour of the chart: the metrics it shows, with their
// labels.
type ChartGroup struct {
	Name    string
	Metrics []string
	Labels  []string
}

// WritePNG draws the ratios (ours/baseline of the medians) of the groups'
// metrics as bars, one colour per group, with a line at 1 (parity).
func (r *Results) WritePNG(path, title string, groups []ChartGroup) error {
	ratio := map[string]float64{}
	for _, row := range r.Rows() {
		ratio[row.Metric] = row.Ratio
	}
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(14)
	p.Y.Label.Text = "ours / baseline (median; below 1: ours is better)"
	p.Legend.Top = true
	p.Legend.Left = true
	colors := []color.Color{
		color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
		color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
		color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
		color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
		color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
	}
	var names []string
	top := 1.0
	for gi, g := range groups {
		var vals plotter.Values
		var lab plotter.XYLabels
		x0 := float64(len(names))
		for i, m := range g.Metrics {
			v, ok := ratio[m]
			if !ok || math.IsNaN(v) {
				v = 0
			}
			vals = append(vals, v)
			text := "n/a"
			if ok && !math.IsNaN(ratio[m]) {
				text = fmt.Sprintf("%.2f", v)
			}
			lab.XYs = append(lab.XYs, plotter.XY{X: x0 + float64(i), Y: v})
			lab.Labels = append(lab.Labels, text)
			names = append(names, g.Labels[i])
			top = math.Max(top, v)
		}
		if len(vals) == 0 {
			continue
		}
		bars, err := plotter.NewBarChart(vals, vg.Points(22))
		if err != nil {
			return fmt.Errorf("chart: %w", err)
		}
		bars.XMin = x0
		bars.Color = colors[gi%len(colors)]
		bars.LineStyle.Width = 0
		p.Add(bars)
		p.Legend.Add(g.Name, bars)
		labels, err := plotter.NewLabels(lab)
		if err != nil {
			return fmt.Errorf("chart: %w", err)
		}
		for i := range labels.TextStyle {
			labels.TextStyle[i].XAlign = draw.XCenter
			labels.TextStyle[i].Font.Size = vg.Points(9)
		}
		labels.Offset = vg.Point{Y: vg.Points(3)}
		p.Add(labels)
	}
	parity, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: 1}, {X: float64(len(names)) - 0.5, Y: 1}})
	if err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	parity.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	parity.Color = color.Gray{Y: 0x60}
	p.Add(parity)
	p.Add(plotter.NewGrid())
	p.NominalX(names...)
	p.X.Tick.Label.Rotation = math.Pi / 5
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YCenter
	p.Y.Min = 0
	p.Y.Max = top * 1.4
	w := vg.Length(len(names))*vg.Points(46) + vg.Inch
	if w < 8*vg.Inch {
		w = 8 * vg.Inch
	}
	if err := p.Save(w, 5*vg.Inch, path); err != nil {
		return fmt.Errorf("chart %s: %w", path, err)
	}
	return nil
}

// ReadDetailCSV reads results-detail.csv back (its min, median and max of
// each way as three samples), to redraw a chart without running again.
func ReadDetailCSV(path string) (*Results, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading results: %w", err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	r := NewResults()
	for i, rec := range recs {
		if i == 0 {
			continue
		}
		if len(rec) != 7 {
			return nil, fmt.Errorf("%s:%d: %d fields, want 7", path, i+1, len(rec))
		}
		for _, s := range rec[3:6] {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, i+1, err)
			}
			r.Add(rec[0], rec[1], rec[6], v)
		}
	}
	return r, nil
}
