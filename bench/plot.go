package main

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// plotOverhead draws full.png: overhead vs no sensor (median, %) per workload, one bar per
// configuration and variant. The axis is cut above the largest non-auditd bar so that
// Vigil's bars stay readable; every bar carries its value, so auditd's cut bars still say
// how tall they are.
func plotOverhead(r *report, path string) error {
	type series struct {
		config, variant string
		col             color.RGBA
	}
	palette := map[string][2]color.RGBA{
		configFloor:       {{0xb0, 0xb0, 0xb0, 0xff}, {0x70, 0x70, 0x70, 0xff}},
		configVigil:       {{0x7f, 0xb8, 0xe8, 0xff}, {0x1f, 0x5f, 0xa8, 0xff}},
		configVigilStdout: {{0x9f, 0xd8, 0x9f, 0xff}, {0x2f, 0x8f, 0x2f, 0xff}},
		configAuditd:      {{0xf0, 0xa0, 0x80, 0xff}, {0xc0, 0x40, 0x20, 0xff}},
	}
	var ss []series
	for _, c := range r.Configs {
		if c == configNone {
			continue
		}
		for i, v := range variants {
			ss = append(ss, series{c, v, palette[c][i]})
		}
	}
	if len(ss) == 0 {
		return fmt.Errorf("no configuration besides %s to plot", configNone)
	}
	val := func(c, v, w string) float64 {
		if s := r.find(c, v, w); s != nil && s.OverheadPct != nil {
			return *s.OverheadPct
		}
		return 0
	}
	cut := 50.0
	for _, s := range ss {
		if s.config == configAuditd {
			continue
		}
		for _, w := range workloads {
			cut = math.Max(cut, val(s.config, s.variant, w)*1.25)
		}
	}

	p := plot.New()
	p.Title.Text = "Overhead vs no sensor (median over interleaved rounds)"
	p.Y.Label.Text = "overhead, %"
	p.Legend.Top = true
	p.Legend.Left = true
	width := vg.Points(11)
	names := make([]string, len(workloads))
	for i, w := range workloads {
		names[i] = map[string]string{"open": "open+close", "forkexec": "fork+exec", "connect": "connect"}[w]
	}
	lo := 0.0
	for i, s := range ss {
		vals := make(plotter.Values, len(workloads))
		var labels plotter.XYLabels
		for j, w := range workloads {
			v := val(s.config, s.variant, w)
			vals[j] = v
			lo = math.Min(lo, v)
			labels.XYs = append(labels.XYs, plotter.XY{X: float64(j), Y: math.Min(v, cut)})
			labels.Labels = append(labels.Labels, fmt.Sprintf("%+.0f%%", v))
		}
		bars, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return err
		}
		bars.Color = s.col
		bars.LineStyle.Width = 0
		bars.Offset = width * vg.Length(float64(i)-float64(len(ss)-1)/2)
		p.Add(bars)
		p.Legend.Add(s.config+", "+s.variant, bars)
		l, err := plotter.NewLabels(labels)
		if err != nil {
			return err
		}
		for k := range l.TextStyle {
			l.TextStyle[k].Font.Size = vg.Points(6)
			l.TextStyle[k].XAlign = -0.5
		}
		l.Offset = vg.Point{X: bars.Offset, Y: vg.Points(2)}
		p.Add(l)
	}
	p.NominalX(names...)
	p.Y.Min, p.Y.Max = math.Min(lo*1.2, -5), cut
	p.Add(plotter.NewGrid())
	return p.Save(9*vg.Inch, 5*vg.Inch, path)
}
