// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package fleetview_test

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/meshcert/kubectl-meshcert/core/ca"
	"github.com/meshcert/kubectl-meshcert/core/fleet"
	"github.com/meshcert/kubectl-meshcert/core/fleetview"
)

var update = flag.Bool("update", false, "rewrite testdata/fleet.png, the README's picture")

var now = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

// fixture is a fleet with each state on both paths, and a root rotation
// prepared.
func fixture() fleetview.View {
	w := func(ns, kind, name, path string, issued, due, expires time.Duration, problem string) fleet.Workload {
		return fleet.Workload{Namespace: ns, Kind: kind, Name: name, Path: path, SPIFFEID: "spiffe://cluster.local/ns/" + ns + "/sa/" + name,
			Serial: "0a", NotBefore: now.Add(issued), NotAfter: now.Add(expires), RotationDue: now.Add(due), Remaining: expires.String(), Problem: problem}
	}
	return fleetview.View{
		Cluster: "https://127.0.0.1:6443",
		Now:     now,
		Workloads: []fleet.Workload{
			w("shop", "Pod", "frontend-7d9", "sds", -2*time.Hour, 10*time.Hour, 22*time.Hour, ""),
			w("shop", "Pod", "backend-5c1", "sds", -14*time.Hour, -2*time.Hour, 10*time.Hour, ""),
			w("shop", "Pod", "cart-0", "sds", -30*time.Hour, -18*time.Hour, -6*time.Hour, ""),
			w("billing", "Secret", "meshcert.ledger", "file-mount", -8*time.Hour, 8*time.Hour, 16*time.Hour, ""),
			w("billing", "Secret", "meshcert.audit", "file-mount", -3*time.Hour, 9*time.Hour, 21*time.Hour, "x509: certificate signed by unknown authority"),
		},
		Rotation: &ca.RotationStatus{Phase: ca.PhasePrepared, Source: ca.SourceSelfSigned,
			SigningRoot: ca.RootInfo{Subject: "O=meshcert", Fingerprint: "aa11", NotBefore: now.Add(-365 * 24 * time.Hour), NotAfter: now.Add(9 * 365 * 24 * time.Hour)},
			Next:        &ca.RootInfo{Subject: "O=meshcert", Fingerprint: "bb22", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(10 * 365 * 24 * time.Hour)},
			Bundle: []ca.RootInfo{
				{Subject: "O=meshcert", Fingerprint: "aa11", NotBefore: now.Add(-365 * 24 * time.Hour), NotAfter: now.Add(9 * 365 * 24 * time.Hour)},
				{Subject: "O=meshcert", Fingerprint: "bb22", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(10 * 365 * 24 * time.Hour)},
			}},
	}
}

func TestStates(t *testing.T) {
	v := fixture()
	want := []string{fleetview.StateValid, fleetview.StateRotating, fleetview.StateProblem, fleetview.StateValid, fleetview.StateProblem}
	for i, w := range v.Workloads {
		require.Equal(t, want[i], fleetview.State(w, now), w.Name)
	}
}

// browser starts headless Chromium: Debian's chromium, which make chromium
// installs.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	require.NoError(t, err, "chromium is needed to test the fleet page: run make chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1000, 800))
	allocator, cancelAllocator := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAllocator)
	ctx, cancel := chromedp.NewContext(allocator)
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(cancelTimeout)
	return ctx
}

type drawnBar struct {
	Workload  string  `json:"workload"`
	Root      string  `json:"root"`
	Role      string  `json:"role"`
	State     string  `json:"state"`
	NotBefore string  `json:"notBefore"`
	NotAfter  string  `json:"notAfter"`
	X         float64 `json:"x"`
	Width     float64 `json:"width"`
	Fill      string  `json:"fill"`
}

type drawnPage struct {
	Bars      []drawnBar `json:"bars"`
	Roots     []drawnBar `json:"roots"`
	NowX      []float64  `json:"nowX"`
	DueX      []float64  `json:"dueX"`
	Groups    []string   `json:"groups"`
	Phase     string     `json:"phase"`
	Resources int        `json:"resources"`
	External  int        `json:"external"`
}

const readPage = `(() => {
  const bar = r => ({workload: r.dataset.workload || "", root: r.dataset.root || "", role: r.dataset.role || "", state: r.dataset.state || "",
    notBefore: r.dataset.notBefore, notAfter: r.dataset.notAfter,
    x: r.x.baseVal.value, width: r.width.baseVal.value, fill: getComputedStyle(r).fill});
  return {
    bars: [...document.querySelectorAll("svg.group rect.bar")].map(bar),
    roots: [...document.querySelectorAll("svg#roots rect.bar")].map(bar),
    nowX: [...document.querySelectorAll("svg.group line.now")].map(l => l.x1.baseVal.value),
    dueX: [...document.querySelectorAll("svg.group line.due")].map(l => l.x1.baseVal.value),
    groups: [...document.querySelectorAll("svg.group")].map(s => s.dataset.namespace + " " + s.dataset.path),
    phase: document.querySelector("[data-phase]").dataset.phase,
    resources: performance.getEntriesByType("resource").length,
    external: document.querySelectorAll("script, link, img, iframe, object, [src], [href]").length,
  };
})()`

// TestPageInChromium renders the fleet in headless Chromium and checks
// what it draws against the data: a bar per workload where the scale puts
// it, coloured by its state, the now line and rotation points, the roots
// and the phase, and nothing loaded from anywhere. It keeps a screenshot.
func TestPageInChromium(t *testing.T) {
	v := fixture()
	file := filepath.Join(t.TempDir(), "fleet.html")
	out, err := os.Create(file)
	require.NoError(t, err)
	require.NoError(t, fleetview.Render(out, v))
	require.NoError(t, out.Close())

	ctx := browser(t)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("file://"+file), chromedp.WaitVisible(chromedp.CSS("svg.group"))))
	drawn, err := chromedp.Run(ctx, chromedp.Evaluate[drawnPage](readPage))
	require.NoError(t, err)
	screenshot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)

	scale := fleetview.WorkloadScale(v.Workloads, now)
	require.Equal(t, []string{"billing file-mount", "shop sds"}, drawn.Groups, "grouped by namespace and path, sorted")
	require.Len(t, drawn.Bars, len(v.Workloads))
	colours := map[string]string{fleetview.StateValid: "rgb(46, 125, 50)", fleetview.StateRotating: "rgb(249, 168, 37)", fleetview.StateProblem: "rgb(198, 40, 40)"}
	seen := map[string]bool{}
	for _, bar := range drawn.Bars {
		var w *fleet.Workload
		for i := range v.Workloads {
			if bar.Workload == v.Workloads[i].Namespace+"/"+v.Workloads[i].Kind+"/"+v.Workloads[i].Name {
				w = &v.Workloads[i]
			}
		}
		require.NotNil(t, w, "a bar for no workload: %s", bar.Workload)
		seen[bar.Workload] = true
		require.Equal(t, w.NotBefore.Format(time.RFC3339), bar.NotBefore)
		require.Equal(t, w.NotAfter.Format(time.RFC3339), bar.NotAfter)
		require.InDelta(t, scale.X(w.NotBefore), bar.X, 0.1, "%s starts at its notBefore", bar.Workload)
		require.InDelta(t, scale.X(w.NotAfter)-scale.X(w.NotBefore), bar.Width, 0.1, "%s ends at its notAfter", bar.Workload)
		require.Equal(t, fleetview.State(*w, now), bar.State, bar.Workload)
		require.Equal(t, colours[bar.State], bar.Fill, "%s is drawn in its state's colour", bar.Workload)
	}
	require.Len(t, seen, len(v.Workloads))
	// Independently of the scale's arithmetic: the earliest start is at the
	// plot's left edge, and bars are placed in the order of their times.
	minX := drawn.Bars[0].X
	for _, a := range drawn.Bars {
		minX = min(minX, a.X)
		for _, b := range drawn.Bars {
			if a.NotBefore < b.NotBefore {
				require.Less(t, a.X, b.X, "%s starts before %s", a.Workload, b.Workload)
			}
			if a.NotAfter < b.NotAfter {
				require.Less(t, a.X+a.Width, b.X+b.Width, "%s ends before %s", a.Workload, b.Workload)
			}
		}
	}
	require.InDelta(t, float64(fleetview.LabelWidth), minX, 0.1)
	require.Len(t, drawn.NowX, 2, "a now line on each chart")
	for _, x := range drawn.NowX {
		require.InDelta(t, scale.X(now), x, 0.1)
	}
	require.Len(t, drawn.DueX, len(v.Workloads))
	require.Len(t, drawn.Roots, 2)
	require.Equal(t, "signing", drawn.Roots[0].Role)
	require.Equal(t, "next", drawn.Roots[1].Role)
	require.Equal(t, "prepared", drawn.Phase)
	require.Zero(t, drawn.Resources, "the page loads nothing")
	require.Zero(t, drawn.External, "the page refers to nothing outside itself")

	artefacts := filepath.Join("..", "..", "bin", "artefacts")
	require.NoError(t, os.MkdirAll(artefacts, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(artefacts, "fleet.png"), screenshot, 0o644))
	t.Logf("screenshot: %s", filepath.Join(artefacts, "fleet.png"))
	if *update {
		require.NoError(t, os.WriteFile(filepath.Join("testdata", "fleet.png"), screenshot, 0o644))
	}
}

func TestEmptyFleet(t *testing.T) {
	var b strings.Builder
	require.NoError(t, fleetview.Render(&b, fleetview.View{Cluster: "c", Now: now}))
	require.Contains(t, b.String(), "No workload certificates found.")
	require.Contains(t, b.String(), "The CA could not be read")
}
