package replay

import (
	"cmp"
	"fmt"
	"image/color"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// maxPlotLines bounds the instances drawn one by one: the exhausted ones
// first, then the closest to their allocation. The others are drawn as one
// line, their highest use at each time, so that a plot of 20,000 instances
// stays readable and its memory bounded.
const maxPlotLines = 8

// Plot size: the chart, and the legend beside it (never over the data).
const (
	plotWidth   = 11 * vg.Inch
	plotHeight  = 5 * vg.Inch
	legendWidth = 3.2 * vg.Inch
)

// PlotFormat returns the image format a plot path asks for ("png", "svg"
// or "pdf", from its extension), or an error naming the path.
func PlotFormat(path string) (string, error) {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".png", ".svg", ".pdf":
		return ext[1:], nil
	}
	return "", fmt.Errorf("--plot %s: want a .png, .svg or .pdf file", path)
}

// WritePlot draws the plot of r (see WritePlotTo) to path, in the format its
// extension names.
func WritePlot(path string, r *Result) error {
	format, err := PlotFormat(path)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	if err := WritePlotTo(f, format, r); err != nil {
		f.Close()
		return fmt.Errorf("plot %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return nil
}

// plotLine is one instance and protocol drawn on its own.
type plotLine struct {
	inst, proto  int
	peak, alloc  int
	refused      uint64
	first        *Mark
	inside, name string
}

// WritePlotTo draws SNAT ports in use over time as step lines (a count
// holds until it changes), per instance and protocol for the instances
// that came closest to running out, each with its allocation dashed and a
// mark where it first refused a flow (B9); the other instances as one grey
// line, their highest use. The legend sits beside the chart, the title
// names the capture files, and the time axis reads as elapsed time
// (h:mm:ss for long captures). format is "png", "svg" or "pdf".
func WritePlotTo(w io.Writer, format string, r *Result) error {
	lines, rest := plotLines(r)
	p := plot.New()
	p.Title.Text = "SNAT ports in use: " + plotTitle(r.Files)
	p.Title.TextStyle.Font.Size = vg.Points(14)
	if r.Partial != "" {
		p.Title.Text += " (partial)"
	}
	span := r.End.Sub(r.Start)
	p.X.Label.Text = xLabel(r.Start, span)
	p.X.Tick.Marker = elapsedTicker{span: span}
	p.X.Min, p.X.Max = 0, max(span.Seconds(), 1e-3)
	p.Y.Label.Text = "SNAT ports in use"
	p.Add(plotter.NewGrid())
	leg := plot.NewLegend()
	leg.Top, leg.Left = true, true
	leg.TextStyle.Font.Size = vg.Points(10)

	ymax := 1.0
	var marks plotter.XYs
	allocs := map[int][]int{} // allocation → instances drawn with it
	for i, l := range lines {
		pts := l.points(r, func(inst, proto int, s *Sample) (float64, bool) {
			v := s.InUse[inst][proto]
			return float64(v), v >= 0 // -1: sampled by another worker
		})
		if len(pts) == 0 {
			continue
		}
		c := linePalette[i%len(linePalette)]
		ln, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		ln.StepStyle = plotter.PostStep
		ln.Color, ln.Width = c, vg.Points(1.5)
		p.Add(ln)
		label := l.name
		if l.refused > 0 {
			label += fmt.Sprintf(": %d refused", l.refused)
		}
		leg.Add(label, ln)
		for _, pt := range pts {
			ymax = max(ymax, pt.Y)
		}
		ymax = max(ymax, float64(l.alloc))
		allocs[l.alloc] = append(allocs[l.alloc], l.inst)
		if l.first != nil {
			marks = append(marks, plotter.XY{X: l.first.Time.Sub(r.Start).Seconds(), Y: float64(l.alloc)})
		}
	}
	// One dashed line per allocation value: instances of one pool usually
	// share it.
	values := slices.Sorted(maps.Keys(allocs))
	for _, v := range values {
		al, err := plotter.NewLine(plotter.XYs{{X: 0, Y: float64(v)}, {X: p.X.Max, Y: float64(v)}})
		if err != nil {
			return err
		}
		al.Color, al.Width, al.Dashes = color.Gray{Y: 60}, vg.Points(1), []vg.Length{vg.Points(6), vg.Points(3)}
		p.Add(al)
		who := "per instance"
		if len(values) > 1 {
			who = "of instance " + joinInts(slices.Compact(slices.Sorted(slices.Values(allocs[v]))))
		}
		leg.Add(fmt.Sprintf("allocation %s: %d ports", who, v), al)
	}
	if rest > 0 {
		pts := restPoints(r, lines)
		if len(pts) > 0 {
			ln, err := plotter.NewLine(pts)
			if err != nil {
				return err
			}
			ln.StepStyle = plotter.PostStep
			ln.Color, ln.Width = color.Gray{Y: 140}, vg.Points(1.2)
			p.Add(ln)
			leg.Add(fmt.Sprintf("the other %d: highest in use", rest), ln)
			for _, pt := range pts {
				ymax = max(ymax, pt.Y)
			}
		}
	}
	if len(marks) > 0 {
		sc, err := plotter.NewScatter(marks)
		if err != nil {
			return err
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: color.RGBA{R: 200, A: 255}, Radius: vg.Points(5), Shape: draw.PyramidGlyph{}}
		p.Add(sc)
		leg.Add("first refused flow (B9)", sc)
	}
	if len(lines) == 0 {
		leg.Add("no instance opened a flow")
	}
	p.Y.Min, p.Y.Max = 0, ymax*1.08

	cw, err := draw.NewFormattedCanvas(plotWidth+legendWidth, plotHeight, format)
	if err != nil {
		return err
	}
	dc := draw.New(cw)
	p.Draw(draw.Crop(dc, 0, -legendWidth, 0, -vg.Points(4)))
	leg.Draw(draw.Crop(draw.Crop(dc, plotWidth, 0, 0, 0), vg.Points(6), 0, 0, -vg.Points(30)))
	_, err = cw.WriteTo(w)
	return err
}

// plotLines picks the instances and protocols drawn one by one (at most
// maxPlotLines: the ones that refused most, then the closest to their
// allocation, then pool order) and counts the others that sent traffic.
func plotLines(r *Result) ([]plotLine, int) {
	var all []plotLine
	for _, ir := range r.Instances {
		if ir.Flows == 0 && ir.ExhaustionDrops == 0 {
			continue
		}
		proto := 0
		if ir.Proto == "udp" {
			proto = 1
		}
		k := slices.IndexFunc(all, func(l plotLine) bool { return l.inst == ir.Instance && l.proto == proto })
		if k < 0 {
			alloc := 0
			if ir.Instance < len(r.Plan.Instances) {
				alloc = r.Plan.Instances[ir.Instance].Ports
			}
			all = append(all, plotLine{inst: ir.Instance, proto: proto, alloc: alloc,
				name: fmt.Sprintf("instance %d (%s) %s", ir.Instance, ir.Inside, ir.Proto)})
			k = len(all) - 1
		}
		l := &all[k]
		l.peak += ir.Peak
		l.refused += ir.ExhaustionDrops
		if ir.FirstExhaustion != nil {
			l.first = ir.FirstExhaustion
		}
	}
	slices.SortStableFunc(all, func(a, b plotLine) int {
		if c := cmp.Compare(b.refused, a.refused); c != 0 {
			return c
		}
		// Closest to its allocation: peak/alloc, compared without division.
		if c := cmp.Compare(b.peak*max(a.alloc, 1), a.peak*max(b.alloc, 1)); c != 0 {
			return c
		}
		return cmp.Compare(a.inst*2+a.proto, b.inst*2+b.proto)
	})
	if len(all) <= maxPlotLines {
		return all, 0
	}
	rest := map[int]bool{}
	for _, l := range all[maxPlotLines:] {
		rest[l.inst] = true
	}
	return all[:maxPlotLines], len(rest)
}

// points is l's series of samples, read by value.
func (l plotLine) points(r *Result, value func(inst, proto int, s *Sample) (float64, bool)) plotter.XYs {
	pts := make(plotter.XYs, 0, len(r.Samples))
	for i := range r.Samples {
		s := &r.Samples[i]
		if l.inst >= len(s.InUse) {
			continue
		}
		if v, ok := value(l.inst, l.proto, s); ok {
			pts = append(pts, plotter.XY{X: s.Time.Sub(r.Start).Seconds(), Y: v})
		}
	}
	return pts
}

// restPoints is, at each sample, the highest use of any instance and
// protocol not drawn on its own.
func restPoints(r *Result, drawn []plotLine) plotter.XYs {
	skip := map[[2]int]bool{}
	for _, l := range drawn {
		skip[[2]int{l.inst, l.proto}] = true
	}
	// Workers sample at their own times: the highest use is carried from
	// one sample to the next per instance, so a sample of one worker does
	// not hide the others'.
	last := map[[2]int]int{}
	pts := make(plotter.XYs, 0, len(r.Samples))
	for i := range r.Samples {
		s := &r.Samples[i]
		for inst, use := range s.InUse {
			for proto, v := range use {
				if v >= 0 && !skip[[2]int{inst, proto}] {
					last[[2]int{inst, proto}] = int(v)
				}
			}
		}
		top := 0
		for _, v := range last {
			top = max(top, v)
		}
		pts = append(pts, plotter.XY{X: s.Time.Sub(r.Start).Seconds(), Y: float64(top)})
	}
	return pts
}

// plotTitle names the capture files by their base names: up to two, then
// "and N more".
func plotTitle(files []string) string {
	var names []string
	for i, f := range files {
		if i == 2 && len(files) > 3 {
			names = append(names, fmt.Sprintf("and %d more", len(files)-2))
			break
		}
		names = append(names, filepath.Base(f))
	}
	return strings.Join(names, ", ")
}

// xLabel says what the time axis counts from and in which unit.
func xLabel(start time.Time, span time.Duration) string {
	unit := "seconds"
	if span >= 2*time.Minute {
		unit = "h:mm:ss"
	}
	if start.IsZero() {
		return "time since the first packet (" + unit + ")"
	}
	return fmt.Sprintf("time since the first packet, %s UTC (%s)", start.UTC().Format("2006-01-02 15:04:05"), unit)
}

// elapsedTicker marks the time axis at round steps of elapsed time: in
// seconds for a short capture, as h:mm:ss (or m:ss) for a long one.
type elapsedTicker struct{ span time.Duration }

// tickSteps are the round steps, in seconds, the ticker chooses from.
var tickSteps = []float64{0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30,
	60, 120, 300, 600, 900, 1800, 3600, 7200, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400}

// Ticks returns about six labelled ticks from lo to hi (seconds).
func (t elapsedTicker) Ticks(lo, hi float64) []plot.Tick {
	step := tickSteps[len(tickSteps)-1]
	for _, s := range tickSteps {
		if (hi-lo)/s <= 8 {
			step = s
			break
		}
	}
	long := t.span >= 2*time.Minute
	var ticks []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		ticks = append(ticks, plot.Tick{Value: v, Label: elapsedLabel(v, long)})
	}
	return ticks
}

// elapsedLabel writes v seconds as "12.5" (short captures) or "1:02:03",
// "2:03" (long ones).
func elapsedLabel(v float64, long bool) string {
	if !long {
		return fmt.Sprintf("%g", math.Round(v*1e6)/1e6)
	}
	s := int64(math.Round(v))
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// linePalette tells eight lines apart (Tableau 10, without its grey, which
// draws the other instances).
var linePalette = []color.Color{
	color.RGBA{0x1f, 0x77, 0xb4, 0xff}, color.RGBA{0xd6, 0x27, 0x28, 0xff}, color.RGBA{0x2c, 0xa0, 0x2c, 0xff},
	color.RGBA{0xff, 0x7f, 0x0e, 0xff}, color.RGBA{0x94, 0x67, 0xbd, 0xff}, color.RGBA{0x8c, 0x56, 0x4b, 0xff},
	color.RGBA{0xe3, 0x77, 0xc2, 0xff}, color.RGBA{0x17, 0xbe, 0xcf, 0xff},
}

// joinInts writes 1, 2, 5.
func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}
