// Copyright 2026 The kubectl-meshcert Authors.
// SPDX-License-Identifier: Apache-2.0

package inspect

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/client-go/kubernetes"

	"github.com/meshcert/kubectl-meshcert/core/kubeapi"
)

// EventReport is one recent Event about an object. Field names are stable.
type EventReport struct {
	Object   string    `json:"object"`
	Type     string    `json:"type"`
	Reason   string    `json:"reason"`
	Message  string    `json:"message"`
	Count    int32     `json:"count"`
	LastSeen time.Time `json:"lastSeen"`
	From     string    `json:"from,omitempty"`
}

// recentEventLimit is how many Events inspect shows, newest first.
const recentEventLimit = 10

// objectRef names an object Events may be about.
type objectRef struct{ kind, name string }

// recentEvents lists the newest Events about objects in namespace. A
// failure to list them leaves them out: they only explain.
func recentEvents(ctx context.Context, client kubernetes.Interface, namespace string, objects ...objectRef) []EventReport {
	out := []EventReport{}
	for _, o := range objects {
		events, err := kubeapi.EventsAbout(ctx, client, namespace, o.kind, o.name)
		if err != nil {
			continue
		}
		for _, e := range events {
			out = append(out, EventReport{Object: o.kind + "/" + o.name, Type: e.Type, Reason: e.Reason, Message: e.Message,
				Count: max(e.Count, 1), LastSeen: lastSeen(e).UTC(), From: e.Source.Component})
		}
	}
	slices.SortStableFunc(out, func(a, b EventReport) int { return b.LastSeen.Compare(a.LastSeen) })
	return out[:min(len(out), recentEventLimit)]
}

func lastSeen(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

// printEvents writes events as kubectl describe does, after a table.
func printEvents(w io.Writer, events []EventReport, now time.Time) error {
	if len(events) == 0 {
		_, err := fmt.Fprintln(w, "\nEvents: <none>")
		return err
	}
	fmt.Fprintln(w, "\nEvents:")
	fmt.Fprintf(w, "  %-8s %-24s %-6s %-28s %s\n", "TYPE", "REASON", "AGE", "OBJECT", "MESSAGE")
	for _, e := range events {
		age := duration.HumanDuration(now.Sub(e.LastSeen))
		if e.Count > 1 {
			age += fmt.Sprintf(" (x%d)", e.Count)
		}
		if _, err := fmt.Fprintf(w, "  %-8s %-24s %-6s %-28s %s\n", e.Type, e.Reason, age, e.Object, e.Message); err != nil {
			return err
		}
	}
	return nil
}
