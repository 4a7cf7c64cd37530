// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

// Package fleetview draws the fleet's certificates as one self-contained
// HTML page: per namespace and path, a timeline per workload from
// notBefore through its rotation point to notAfter, a line at now, the
// roots' validity and the rotation phase, problems in red. The page loads
// nothing: its SVG is inline and it has no script.
package fleetview

import (
	"cmp"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/meshcert/kubectl-meshcert/core/ca"
	"github.com/meshcert/kubectl-meshcert/core/fleet"
)

// View is what the page shows.
type View struct {
	// Cluster names the cluster, such as its API server's address.
	Cluster   string
	Now       time.Time
	Workloads []fleet.Workload
	// Rotation is the CA's root rotation status; nil when the CA could not
	// be read.
	Rotation *ca.RotationStatus
}

// States of a workload's certificate, as classes and legend entries.
const (
	StateValid    = "valid"    // before its rotation point
	StateRotating = "rotating" // past its rotation point, not yet renewed
	StateProblem  = "problem"  // expired, failing verification, or unreadable
)

// Geometry of a timeline chart, in SVG user units.
const (
	ChartWidth  = 960
	LabelWidth  = 360
	RowHeight   = 22
	BarHeight   = 12
	axisHeight  = 24
	plotPadding = 8
)

// Scale maps times onto the plot area of a chart.
type Scale struct {
	From, To time.Time
}

// X is the horizontal position of t.
func (s Scale) X(t time.Time) float64 {
	span := s.To.Sub(s.From).Seconds()
	if span <= 0 {
		return LabelWidth
	}
	x := LabelWidth + (ChartWidth-LabelWidth-plotPadding)*t.Sub(s.From).Seconds()/span
	return min(max(x, LabelWidth), ChartWidth-plotPadding)
}

// WorkloadScale spans every workload's validity and now.
func WorkloadScale(ws []fleet.Workload, now time.Time) Scale {
	s := Scale{From: now, To: now}
	for _, w := range ws {
		if !w.NotBefore.IsZero() && w.NotBefore.Before(s.From) {
			s.From = w.NotBefore
		}
		if w.NotAfter.After(s.To) {
			s.To = w.NotAfter
		}
	}
	// A little room after the last expiry, so that its end is seen.
	s.To = s.To.Add(s.To.Sub(s.From) / 50)
	return s
}

// State classifies a workload's certificate at now.
func State(w fleet.Workload, now time.Time) string {
	switch {
	case w.Problem != "" || w.NotAfter.IsZero() || !now.Before(w.NotAfter):
		return StateProblem
	case !w.RotationDue.IsZero() && !now.Before(w.RotationDue):
		return StateRotating
	}
	return StateValid
}

// row is one workload's timeline.
type row struct {
	fleet.Workload
	Y                            float64
	State                        string
	BarX, BarWidth, DueX, LabelY float64
	HasDue                       bool
	Title                        string
}

// group is one namespace and path's chart.
type group struct {
	Namespace, Path string
	Rows            []row
	Height          float64
	NowX            float64
	Ticks           []tick
	AxisY           float64
}

type tick struct {
	X     float64
	Label string
}

type rootRow struct {
	ca.RootInfo
	Role             string
	BarX, BarWidth   float64
	Y, LabelY        float64
	Expired, Signing bool
}

type page struct {
	View
	ChartWidth, LabelWidth, BarHeight int
	Groups                            []group
	Roots                             []rootRow
	RootHeight                        float64
	RootNowX                          float64
	RootTicks                         []tick
	RootAxisY                         float64
	Counts                            map[string]int
	Generated                         string
}

//go:embed page.html.tmpl
var pageTemplate string

var tmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"f":    func(v float64) string { return fmt.Sprintf("%.1f", v) },
	"time": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"add":  func(a, b float64) float64 { return a + b },
}).Parse(pageTemplate))

// Render writes the page.
func Render(w io.Writer, v View) error {
	p := page{View: v, ChartWidth: ChartWidth, LabelWidth: LabelWidth, BarHeight: BarHeight,
		Counts: map[string]int{}, Generated: v.Now.UTC().Format("2006-01-02 15:04:05 UTC")}
	scale := WorkloadScale(v.Workloads, v.Now)
	ticks := axisTicks(scale)
	byGroup := map[[2]string][]fleet.Workload{}
	for _, wl := range v.Workloads {
		key := [2]string{wl.Namespace, wl.Path}
		byGroup[key] = append(byGroup[key], wl)
	}
	keys := make([][2]string, 0, len(byGroup))
	for k := range byGroup {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int { return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1])) })
	for _, k := range keys {
		ws := byGroup[k]
		slices.SortStableFunc(ws, func(a, b fleet.Workload) int {
			return cmp.Or(a.NotAfter.Compare(b.NotAfter), cmp.Compare(a.Name, b.Name))
		})
		g := group{Namespace: k[0], Path: k[1], NowX: scale.X(v.Now), Ticks: ticks}
		for i, wl := range ws {
			y := float64(i*RowHeight) + 4
			r := row{Workload: wl, Y: y + (RowHeight-BarHeight)/2 - 2, LabelY: y + RowHeight/2 + 2, State: State(wl, v.Now)}
			start := wl.NotBefore
			if start.IsZero() {
				start = scale.From
			}
			r.BarX = scale.X(start)
			r.BarWidth = max(scale.X(wl.NotAfter)-r.BarX, 1)
			if !wl.RotationDue.IsZero() {
				r.HasDue, r.DueX = true, scale.X(wl.RotationDue)
			}
			r.Title = title(wl, v.Now)
			p.Counts[r.State]++
			g.Rows = append(g.Rows, r)
		}
		g.AxisY = float64(len(ws)*RowHeight) + 8
		g.Height = g.AxisY + axisHeight
		p.Groups = append(p.Groups, g)
	}
	if v.Rotation != nil {
		p.rootRows(v.Rotation, v.Now)
	}
	return tmpl.Execute(w, p)
}

func (p *page) rootRows(st *ca.RotationStatus, now time.Time) {
	roots := slices.Clone(st.Bundle)
	s := Scale{From: now, To: now}
	for _, r := range roots {
		if r.NotBefore.Before(s.From) {
			s.From = r.NotBefore
		}
		if r.NotAfter.After(s.To) {
			s.To = r.NotAfter
		}
	}
	s.To = s.To.Add(s.To.Sub(s.From) / 50)
	for i, r := range roots {
		y := float64(i*RowHeight) + 4
		role := "trusted"
		switch {
		case r.Fingerprint == st.SigningRoot.Fingerprint:
			role = "signing"
		case st.Next != nil && r.Fingerprint == st.Next.Fingerprint:
			role = "next"
		case st.Previous != nil && r.Fingerprint == st.Previous.Fingerprint:
			role = "previous"
		}
		bx := s.X(r.NotBefore)
		p.Roots = append(p.Roots, rootRow{RootInfo: r, Role: role, BarX: bx, BarWidth: max(s.X(r.NotAfter)-bx, 1),
			Y: y + (RowHeight-BarHeight)/2 - 2, LabelY: y + RowHeight/2 + 2, Expired: !now.Before(r.NotAfter), Signing: role == "signing"})
	}
	p.RootAxisY = float64(len(roots)*RowHeight) + 8
	p.RootHeight = p.RootAxisY + axisHeight
	p.RootNowX = s.X(now)
	p.RootTicks = axisTicks(s)
}

func title(w fleet.Workload, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s/%s (%s)\n%s\nserial %s\nnotBefore %s\nnotAfter %s (%s)", strings.ToLower(w.Kind), w.Namespace, w.Name, w.Path,
		w.SPIFFEID, w.Serial, w.NotBefore.UTC().Format(time.RFC3339), w.NotAfter.UTC().Format(time.RFC3339), w.Remaining)
	if !w.RotationDue.IsZero() {
		fmt.Fprintf(&b, "\nrotation due %s", w.RotationDue.UTC().Format(time.RFC3339))
	}
	if w.Problem != "" {
		fmt.Fprintf(&b, "\nproblem: %s", w.Problem)
	} else if !now.Before(w.NotAfter) {
		b.WriteString("\nproblem: expired")
	}
	return b.String()
}

// axisTicks places about six labelled ticks on a scale, at round steps.
func axisTicks(s Scale) []tick {
	span := s.To.Sub(s.From)
	steps := []time.Duration{time.Second, 5 * time.Second, 15 * time.Second, time.Minute, 5 * time.Minute, 15 * time.Minute,
		time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour, 30 * 24 * time.Hour,
		90 * 24 * time.Hour, 365 * 24 * time.Hour, 2 * 365 * 24 * time.Hour, 5 * 365 * 24 * time.Hour}
	step := steps[len(steps)-1]
	for _, st := range steps {
		if span/st <= 6 {
			step = st
			break
		}
	}
	format := "15:04"
	switch {
	case step < time.Minute:
		format = "15:04:05"
	case step >= 24*time.Hour:
		format = "2006-01-02"
	case step >= 3*time.Hour:
		format = "Jan 2 15:04"
	}
	var ticks []tick
	for t := s.From.Truncate(step).Add(step); t.Before(s.To); t = t.Add(step) {
		ticks = append(ticks, tick{X: s.X(t), Label: t.UTC().Format(format)})
	}
	return ticks
}
