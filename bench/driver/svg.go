package main

import (
	"fmt"
	"math"
	"strings"
)

// latencySVG draws start-hook latency against NIC count: median with a
// p95 whisker for fdbhook and the shell hook, first apply and steady, and
// the exec floor, on log-log axes.
func latencySVG(res *Results) string {
	const (
		w, h                  = 800, 470
		left, right, top, bot = 70, 230, 50, 60
	)
	pw, ph := float64(w-left-right), float64(h-top-bot)
	// Y range: whole decades around every median and p95.
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range res.Latency {
		if len(s.Samples) == 0 {
			continue
		}
		lo = min(lo, median(s.Samples))
		hi = max(hi, quantile(s.Samples, 0.95))
	}
	if math.IsInf(lo, 1) {
		lo, hi = 1, 10
	}
	lo = math.Pow(10, math.Floor(math.Log10(lo)))
	hi = math.Pow(10, math.Ceil(math.Log10(hi)))
	x := func(n int) float64 {
		return float64(left) + pw*math.Log2(float64(n))/math.Log2(float64(sizes[len(sizes)-1]))
	}
	y := func(v float64) float64 {
		return float64(top) + ph*(1-(math.Log10(v)-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo)))
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15" font-weight="bold">Guest start hook latency, exec to exit (median, whisker to p95)</text>`+"\n", left)
	// Grid and axes.
	for d := lo; d <= hi*1.0001; d *= 10 {
		for _, k := range []float64{1, 2, 5} {
			v := d * k
			if v > hi*1.0001 {
				break
			}
			stroke, width := "#e4e4e4", 1
			if k == 1 {
				stroke = "#bbbbbb"
			}
			fmt.Fprintf(&b, `<line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="%d"/>`+"\n", left, float64(left)+pw, y(v), y(v), stroke, width)
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", left-6, y(v), fmtMS(v))
		}
	}
	for _, n := range sizes {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%.1f" stroke="#e4e4e4"/>`+"\n", x(n), x(n), top, float64(top)+ph)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%d</text>`+"\n", x(n), float64(top)+ph+18, n)
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#444"/>`+"\n", left, top, pw, ph)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">managed NICs (log scale)</text>`+"\n", float64(left)+pw/2, h-18)
	fmt.Fprintf(&b, `<text transform="translate(18 %.1f) rotate(-90)" text-anchor="middle">milliseconds (log scale)</text>`+"\n", float64(top)+ph/2)
	// Targets: ratios to the no-op of this run.
	noop := 0.0
	if s := findSeries(res.Latency, "noop", 0, "", 0); s != nil {
		noop = median(s.Samples)
	}
	for _, t := range []struct {
		n int
		v float64
	}{{1, target1NICX * noop}, {64, target64NICsX * noop}} {
		if noop > 0 && t.v >= lo && t.v <= hi {
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#d62728" stroke-width="2" stroke-dasharray="3 2"/>`+"\n",
				x(t.n)-14, x(t.n)+14, y(t.v), y(t.v))
			// Beside the marker: right of it at the left edge, left of it
			// at the right edge, below the line where floors run above.
			lx, ly, anchor := x(t.n)+16, y(t.v)+12, "start"
			if t.n != 1 {
				lx, ly, anchor = x(t.n)-16, y(t.v)-4, "end"
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="#d62728" font-size="10" text-anchor="%s">target %s</text>`+"\n",
				lx, ly, anchor, fmtMS(t.v))
		}
	}
	lines := []struct {
		variant, mode, label, color, dash string
	}{
		{"shell", "first", "shell hook, first apply", "#ff7f0e", ""},
		{"shell", "steady", "shell hook, steady", "#ff7f0e", "6 4"},
		{"fdbhook", "first", "fdbhook, first apply", "#1f77b4", ""},
		{"fdbhook", "steady", "fdbhook, steady", "#1f77b4", "6 4"},
	}
	floors := []struct {
		variant, label, color, dash string
	}{
		{"hookinit", "floor: exec + the hook's imports", "#9467bd", "2 3"},
		{"prepare", "fdbhook: ignored operation (prepare begin)", "#2ca02c", "2 3"},
		{"noop", "floor: exec of a no-op Go binary", "#7f7f7f", "2 3"},
	}
	for i, l := range lines {
		var pts []string
		for _, n := range sizes {
			s := findSeries(res.Latency, l.variant, n, l.mode, 0)
			if s == nil || len(s.Samples) == 0 {
				continue
			}
			m, p := median(s.Samples), quantile(s.Samples, 0.95)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(n), y(m)))
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5"/>`+"\n", x(n), x(n), y(m), y(p), l.color)
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5"/>`+"\n", x(n)-4, x(n)+4, y(p), y(p), l.color)
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"><title>%s, %d NICs: median %s, p95 %s</title></circle>`+"\n",
				x(n), y(m), l.color, l.label, n, fmtMS(m), fmtMS(p))
		}
		dash := ""
		if l.dash != "" {
			dash = fmt.Sprintf(` stroke-dasharray="%s"`, l.dash)
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), l.color, dash)
		ly := float64(top) + 10 + float64(i)*34
		lx := float64(left) + pw + 14
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="2"%s/>`+"\n", lx, lx+24, ly, ly, l.color, dash)
		words := strings.SplitN(l.label, ", ", 2)
		for j, wd := range words {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" dominant-baseline="middle">%s</text>`+"\n", lx+30, ly+float64(j)*14, wd)
		}
	}
	for i, f := range floors {
		s := findSeries(res.Latency, f.variant, 0, "", 0)
		if s == nil || len(s.Samples) == 0 {
			continue
		}
		m := median(s.Samples)
		fmt.Fprintf(&b, `<line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="2" stroke-dasharray="%s"><title>%s: median %s</title></line>`+"\n",
			left, float64(left)+pw, y(m), y(m), f.color, f.dash, f.label, fmtMS(m))
		ly := float64(top) + 10 + float64(len(lines)+i)*34
		lx := float64(left) + pw + 14
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="2" stroke-dasharray="%s"/>`+"\n", lx, lx+24, ly, ly, f.color, f.dash)
		words := strings.SplitN(f.label, ": ", 2)
		for j, wd := range words {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" dominant-baseline="middle">%s</text>`+"\n", lx+30, ly+float64(j)*14, wd)
		}
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10" fill="#555">%s; %s; %d runs per point</text>`+"\n",
		left, top-10, xmlEscape(res.Machine.CPU), xmlEscape(res.Machine.Kernel), res.Runs)
	b.WriteString("</svg>\n")
	return b.String()
}

func fmtMS(v float64) string {
	switch {
	case v >= 10:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 1:
		return fmt.Sprintf("%.3g ms", v)
	default:
		return fmt.Sprintf("%.2g ms", v)
	}
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
