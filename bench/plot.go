package main

import (
	"fmt"
	"image/color"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// plotOverhead draws full.png: overhead vs no sensor (median, %) per workload, one bar per
// configuration and variant. The axis is cut above the largest non-auditd bar so that
// Vigil's bars stay readable; every bar carries its value, so auditd's cut bars still say
// how tall they are.
func plotOverhead(r *report, path string) error {
	works := r.measured()
	type series struct {
		config, variant string
		col             color.RGBA
	}
	palette := map[string][2]color.RGBA{
		configFloor:       {{0xb0, 0xb0, 0xb0, 0xff}, {0x70, 0x70, 0x70, 0xff}},
		configVigil:       {{0x7f, 0xb8, 0xe8, 0xff}, {0x1f, 0x5f, 0xa8, 0xff}},
		configVigilStdout: {{0x9f, 0xd8, 0x9f, 0xff}, {0x2f, 0x8f, 0x2f, 0xff}},
		configVigilAudit:  {{0xd0, 0xb0, 0xe0, 0xff}, {0x80, 0x40, 0xa0, 0xff}},
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
	// The axis ends at top: room above the tallest bar it shows in full for the legend.
	// Bars taller than that (auditd's opens) are cut and labelled inside, rotated.
	shown := 50.0
	for _, s := range ss {
		for _, w := range works {
			if v := val(s.config, s.variant, w); s.config != configAuditd || v < 300 {
				shown = math.Max(shown, v)
			}
		}
	}
	top := shown * 1.6

	p := plot.New()
	p.Title.Text = "Overhead vs no sensor (median over interleaved rounds)"
	p.Y.Label.Text = "overhead, %"
	p.Legend.Top = true
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	width := vg.Points(16)
	names := make([]string, len(works))
	for i, w := range works {
		names[i] = workInfo[w].name
	}
	lo := 0.0
	for i, s := range ss {
		vals := make(plotter.Values, len(works))
		var labels, cutLabels plotter.XYLabels
		for j, w := range works {
			v := val(s.config, s.variant, w)
			vals[j] = v
			lo = math.Min(lo, v)
			text := fmt.Sprintf("%+.0f%%", v)
			if v > top {
				cutLabels.XYs = append(cutLabels.XYs, plotter.XY{X: float64(j), Y: top * 0.97})
				cutLabels.Labels = append(cutLabels.Labels, text+" (cut)")
				continue
			}
			labels.XYs = append(labels.XYs, plotter.XY{X: float64(j), Y: math.Max(v, 0)})
			labels.Labels = append(labels.Labels, text)
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
		for _, ls := range []plotter.XYLabels{labels, cutLabels} {
			if len(ls.Labels) == 0 {
				continue
			}
			l, err := plotter.NewLabels(ls)
			if err != nil {
				return err
			}
			for k := range l.TextStyle {
				l.TextStyle[k].Font.Size = vg.Points(7)
				l.TextStyle[k].XAlign = -0.5
			}
			l.Offset = vg.Point{X: bars.Offset, Y: vg.Points(2)}
			if len(ls.Labels) > 0 && strings.HasSuffix(ls.Labels[0], "(cut)") {
				for k := range l.TextStyle {
					l.TextStyle[k].Rotation = -math.Pi / 2
					l.TextStyle[k].XAlign = 0
					l.TextStyle[k].YAlign = -0.5
					l.TextStyle[k].Color = color.White
				}
				l.Offset = vg.Point{X: bars.Offset, Y: 0}
			}
			p.Add(l)
		}
	}
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.6, float64(len(works))-0.4
	p.Y.Min, p.Y.Max = math.Min(lo*1.2, -5), top
	p.Add(plotter.NewGrid())
	return p.Save(9*vg.Inch, 5*vg.Inch, path)
}
