// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package soak

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Sample is one look at both processes.
type Sample struct {
	Elapsed         time.Duration
	CARSS           float64
	CAGoroutines    float64
	AgentRSS        float64
	AgentGoroutines float64
	// CASigned counts the certificates the CA signed so far.
	CASigned    float64
	CallsOK     int64
	CallsFailed int64
}

func (s Sample) String() string {
	return fmt.Sprintf("%6s  CA %6.1f MiB %4.0f goroutines  agent %6.1f MiB %4.0f goroutines  signed %6.0f  calls %d ok %d failed",
		s.Elapsed.Round(time.Second), s.CARSS/(1<<20), s.CAGoroutines, s.AgentRSS/(1<<20), s.AgentGoroutines, s.CASigned, s.CallsOK, s.CallsFailed)
}

// Report is a soak's samples.
type Report struct {
	Options Options
	Samples []Sample
}

var csvHeader = []string{"elapsed_seconds", "ca_rss_bytes", "ca_goroutines", "agent_rss_bytes", "agent_goroutines",
	"ca_signed", "calls_ok", "calls_failed"}

// WriteCSV writes one row per sample, under a header.
func (r *Report) WriteCSV(w io.Writer) error {
	out := csv.NewWriter(w)
	if err := out.Write(csvHeader); err != nil {
		return err
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	for _, s := range r.Samples {
		row := []string{f(s.Elapsed.Seconds()), f(s.CARSS), f(s.CAGoroutines), f(s.AgentRSS), f(s.AgentGoroutines),
			f(s.CASigned), strconv.FormatInt(s.CallsOK, 10), strconv.FormatInt(s.CallsFailed, 10)}
		if err := out.Write(row); err != nil {
			return err
		}
	}
	out.Flush()
	return out.Error()
}

// Trend is a least-squares line through one series after the warm-up.
type Trend struct {
	Series string
	// First and Last are the fitted line's values at the warm-up's end
	// and at the last sample.
	First, Last float64
	// PerHour is the slope.
	PerHour float64
}

// Growth is the fitted growth over the measured span, as a fraction of
// the line's value at its start.
func (t Trend) Growth() float64 {
	if t.First == 0 {
		return 0
	}
	return (t.Last - t.First) / t.First
}

// Trends fits a line through each series, leaving out the first quarter of
// the samples: caches and pools fill while the workloads start.
func (r *Report) Trends() []Trend {
	warm := r.Samples[len(r.Samples)/4:]
	xs := make([]float64, len(warm))
	for i, s := range warm {
		xs[i] = s.Elapsed.Hours()
	}
	series := []struct {
		name  string
		value func(Sample) float64
	}{
		{"ca_rss_bytes", func(s Sample) float64 { return s.CARSS }},
		{"ca_goroutines", func(s Sample) float64 { return s.CAGoroutines }},
		{"agent_rss_bytes", func(s Sample) float64 { return s.AgentRSS }},
		{"agent_goroutines", func(s Sample) float64 { return s.AgentGoroutines }},
	}
	var trends []Trend
	for _, se := range series {
		ys := make([]float64, len(warm))
		for i, s := range warm {
			ys[i] = se.value(s)
		}
		alpha, beta := stat.LinearRegression(xs, ys, nil, false)
		trends = append(trends, Trend{Series: se.name, PerHour: beta,
			First: alpha + beta*xs[0], Last: alpha + beta*xs[len(xs)-1]})
	}
	return trends
}

// The fitted growth a soak tolerates after the warm-up: noise in RSS (the
// Go heap's cycles) and in goroutine counts (calls in flight) stays well
// below it; a leak of a few hundred bytes per certificate, or of a
// goroutine a minute, crosses it within the hour.
const (
	MaxMemoryGrowth    = 0.10
	MaxGoroutineGrowth = 0.05
)

// Analyze returns an error naming each series that grew past its bound.
func (r *Report) Analyze() error {
	if len(r.Samples) < 8 {
		return fmt.Errorf("%d samples are too few to judge a trend: run longer or sample more often", len(r.Samples))
	}
	var grew []string
	for _, t := range r.Trends() {
		bound := MaxMemoryGrowth
		if strings.HasSuffix(t.Series, "goroutines") {
			bound = MaxGoroutineGrowth
		}
		if t.Growth() > bound {
			grew = append(grew, fmt.Sprintf("%s grew %.1f%% (%.0f → %.0f), more than %.0f%%", t.Series, 100*t.Growth(), t.First, t.Last, 100*bound))
		}
	}
	if len(grew) > 0 {
		return fmt.Errorf("growth after the warm-up: %s", strings.Join(grew, "; "))
	}
	return nil
}

// WriteSVG plots memory and goroutines of both processes over time, one
// panel each.
func (r *Report) WriteSVG(w io.Writer) error {
	memory, goroutines := plot.New(), plot.New()
	memory.Title.Text = fmt.Sprintf("Resident memory: %d workloads, %s certificates", r.Options.Workloads, r.Options.WorkloadTTL)
	memory.X.Label.Text, memory.Y.Label.Text = "minutes", "MiB"
	goroutines.Title.Text = "Goroutines"
	goroutines.X.Label.Text, goroutines.Y.Label.Text = "minutes", "goroutines"
	line := func(value func(Sample) float64) plotter.XYs {
		xys := make(plotter.XYs, len(r.Samples))
		for i, s := range r.Samples {
			xys[i].X, xys[i].Y = s.Elapsed.Minutes(), value(s)
		}
		return xys
	}
	if err := plotutil.AddLines(memory,
		"CA", line(func(s Sample) float64 { return s.CARSS / (1 << 20) }),
		"agent", line(func(s Sample) float64 { return s.AgentRSS / (1 << 20) })); err != nil {
		return err
	}
	if err := plotutil.AddLines(goroutines,
		"CA", line(func(s Sample) float64 { return s.CAGoroutines }),
		"agent", line(func(s Sample) float64 { return s.AgentGoroutines })); err != nil {
		return err
	}
	for _, p := range []*plot.Plot{memory, goroutines} {
		p.Y.Min = 0
		p.Legend.Top = true
	}
	const width, height = 8 * vg.Inch, 8 * vg.Inch
	canvas := vgsvg.New(width, height)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadX: vg.Millimeter, PadY: 4 * vg.Millimeter,
		PadTop: vg.Millimeter, PadBottom: vg.Millimeter, PadLeft: vg.Millimeter, PadRight: vg.Millimeter}
	canvases := plot.Align([][]*plot.Plot{{memory}, {goroutines}}, tiles, draw.New(canvas))
	memory.Draw(canvases[0][0])
	goroutines.Draw(canvases[1][0])
	_, err := canvas.WriteTo(w)
	return err
}
