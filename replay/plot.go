package replay

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// maxPlotLines bounds the instances drawn: the ones with the highest peaks.
const maxPlotLines = 8

// WritePlot draws SNAT ports in use over time per instance and protocol,
// with each instance's allocation as a dashed line, the way a cloud console
// shows "used SNAT ports". The format follows the extension of path: .png,
// .svg or .pdf.
func WritePlot(path string, r *Result) error {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".png", ".svg", ".pdf":
	default:
		return fmt.Errorf("plot %s: want a .png, .svg or .pdf file", path)
	}
	p := plot.New()
	p.Title.Text = "SNAT ports in use (" + strings.Join(r.Files, ", ") + ")"
	p.X.Label.Text = "seconds of capture time"
	p.Y.Label.Text = "SNAT ports in use"
	p.Legend.Top = true
	p.Legend.Left = true

	type line struct {
		inst, proto, peak int
	}
	var lines []line
	for _, ir := range r.Instances {
		if ir.Flows == 0 {
			continue
		}
		proto := 0
		if ir.Proto == "udp" {
			proto = 1
		}
		if !slices.ContainsFunc(lines, func(l line) bool { return l.inst == ir.Instance && l.proto == proto }) {
			lines = append(lines, line{ir.Instance, proto, ir.Peak})
		}
	}
	slices.SortStableFunc(lines, func(a, b line) int { return b.peak - a.peak })
	if len(lines) > maxPlotLines {
		lines = lines[:maxPlotLines]
	}
	allocDrawn := map[int]bool{}
	ymax := 1.0
	for i, l := range lines {
		pts := make(plotter.XYs, 0, len(r.Samples))
		for _, s := range r.Samples {
			if l.inst < len(s.InUse) && s.InUse[l.inst][l.proto] >= 0 { // -1: sampled by another worker
				pts = append(pts, plotter.XY{X: s.Time.Sub(r.Start).Seconds(), Y: float64(s.InUse[l.inst][l.proto])})
			}
		}
		if len(pts) == 0 {
			continue
		}
		ln, err := plotter.NewLine(pts)
		if err != nil {
			return fmt.Errorf("plot %s: %w", path, err)
		}
		ln.Color = plotutil.Color(i)
		ln.Width = vg.Points(1.5)
		p.Add(ln)
		p.Legend.Add(fmt.Sprintf("instance %d (%s) %s", l.inst, r.Backends[l.inst], []string{"tcp", "udp"}[l.proto]), ln)
		for _, pt := range pts {
			ymax = max(ymax, pt.Y)
		}
		if alloc := r.Plan.Instances[l.inst].Ports; !allocDrawn[l.inst] {
			ymax = max(ymax, float64(alloc))
			allocDrawn[l.inst] = true
			al, err := plotter.NewLine(plotter.XYs{{X: 0, Y: float64(alloc)}, {X: r.End.Sub(r.Start).Seconds(), Y: float64(alloc)}})
			if err != nil {
				return fmt.Errorf("plot %s: %w", path, err)
			}
			al.Color = plotutil.Color(i)
			al.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
			p.Add(al)
			p.Legend.Add(fmt.Sprintf("instance %d allocation (%d)", l.inst, alloc), al)
		}
	}
	p.Y.Min, p.Y.Max = 0, ymax*1.25 // room for the legend above the allocation
	p.Add(plotter.NewGrid())
	if err := p.Save(9*vg.Inch, 5*vg.Inch, path); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return nil
}
