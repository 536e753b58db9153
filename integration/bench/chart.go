package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strings"
)

// svg draws two panels: median throughput with min–max whiskers, and the
// median p50/p90/p99 latency of each variant.
func (rep *report) svg() string {
	const (
		width   = 960
		height  = 760
		left    = 80
		right   = 30
		panelH  = 250
		top1    = 70
		top2    = top1 + panelH + 110
		plotW   = width - left - right
		barFill = "#4c78a8"
	)
	var b strings.Builder
	w := bufio.NewWriter(&b)
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(w, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(w, `<text x="%d" y="24" font-size="16" font-weight="bold">tokengate load benchmark: %d rounds × %v, wrk -t%d -c%d</text>`+"\n",
		left, rep.o.rounds, rep.o.duration, rep.o.threads, rep.o.connections)

	n := len(rep.sums)
	slot := float64(plotW) / float64(n)

	// Panel 1: throughput.
	maxRPS := 0.0
	for _, s := range rep.sums {
		maxRPS = math.Max(maxRPS, s.rps.max)
	}
	yMax := niceCeil(maxRPS)
	fmt.Fprintf(w, `<text x="%d" y="%d" font-size="14" font-weight="bold">Throughput (req/s): median, whiskers min–max</text>`+"\n", left, top1-12)
	axis(w, left, top1, plotW, panelH, yMax, "%.0f")
	for i, s := range rep.sums {
		x := float64(left) + slot*float64(i) + slot*0.2
		bw := slot * 0.6
		y := func(v float64) float64 { return float64(top1+panelH) - v/yMax*panelH }
		fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", x, y(s.rps.med), bw, float64(top1+panelH)-y(s.rps.med), barFill)
		cx := x + bw/2
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`+"\n", cx, y(s.rps.min), cx, y(s.rps.max))
		for _, v := range []float64{s.rps.min, s.rps.max} {
			fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`+"\n", cx-8, y(v), cx+8, y(v))
		}
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle">%.0f</text>`+"\n", cx, y(s.rps.max)-6, s.rps.med)
		fmt.Fprintf(w, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", cx, top1+panelH+18, shortName(s.name))
		fmt.Fprintf(w, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%d, %s</text>`+"\n", cx, top1+panelH+34, s.want, s.path)
	}

	// Panel 2: latency percentiles, scaled to the proxied variants; the
	// token endpoint's taller bars are cut at the top.
	maxLat := 0.0
	for _, s := range rep.sums {
		if s.refresh == nil {
			maxLat = math.Max(maxLat, s.p99.med)
		}
	}
	lMax := niceCeil(maxLat)
	colors := []string{"#72b7b2", "#f58518", "#e45756"}
	fmt.Fprintf(w, `<text x="%d" y="%d" font-size="14" font-weight="bold">Latency (ms): median p50 / p90 / p99</text>`+"\n", left, top2-12)
	for i, name := range []string{"p50", "p90", "p99"} {
		lx := width - right - 210 + i*70
		fmt.Fprintf(w, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n", lx, top2-23, colors[i], lx+16, top2-13, name)
	}
	latFormat := "%.0f"
	if lMax < 10 {
		latFormat = "%.2f"
	}
	axis(w, left, top2, plotW, panelH, lMax, latFormat)
	for i, s := range rep.sums {
		x0 := float64(left) + slot*float64(i) + slot*0.15
		bw := slot * 0.7 / 3
		for j, v := range []float64{s.p50.med, s.p90.med, s.p99.med} {
			h := math.Min(v, lMax) / lMax * panelH
			x := x0 + bw*float64(j)
			// A cut bar's label goes inside it, in white, staggered.
			ly, style, label := float64(top2+panelH)-h-4, "", fmt.Sprintf("%.2f", v)
			if v > lMax {
				ly, style, label = float64(top2+14+j%2*12), ` font-weight="bold" fill="white"`, fmt.Sprintf("%.0f", v)
			}
			fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", x, float64(top2+panelH)-h, bw-2, h, colors[j])
			fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10"%s>%s</text>`+"\n", x+bw/2-1, ly, style, label)
		}
		fmt.Fprintf(w, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x0+bw*1.5, top2+panelH+18, shortName(s.name))
	}
	fmt.Fprintf(w, `<text x="%d" y="%d" fill="#555">%s: token pairs issued per second (200 answers only). Ratios and targets: bench-results.md.</text>`+"\n", left, height-12, refreshName(rep.o))
	w.WriteString("</svg>\n")
	w.Flush()
	return b.String()
}

// axis draws a y axis with five gridlines from 0 to max, and the x axis.
func axis(w io.Writer, left, top, plotW, h int, max float64, format string) {
	for i := 0; i <= 5; i++ {
		v := max * float64(i) / 5
		y := float64(top+h) - float64(h)*float64(i)/5
		fmt.Fprintf(w, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, y, left+plotW, y)
		fmt.Fprintf(w, `<text x="%d" y="%.1f" text-anchor="end">`+format+`</text>`+"\n", left-6, y+4, v)
	}
	fmt.Fprintf(w, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", left, top, left, top+h)
	fmt.Fprintf(w, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", left, top+h, left+plotW, top+h)
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten, with headroom.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	v *= 1.1
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
