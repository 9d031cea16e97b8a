package main

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// The labels of revguard_decisions_total: contrib/revotel's attributes as
// the OpenTelemetry Prometheus exporter names them.
var decisionLabels = [...]string{"revguard_outcome", "error_type", "revguard_namespace", "revguard_mode", "revguard_cached"}

// series is one row of the decisions table: a combination of label values,
// summed over any other label (job, instance, otel_scope_name, ...).
type series [len(decisionLabels)]string

// metricsView reads a consumer's decision counters from its Prometheus
// endpoint and shows them with their rates since the previous poll.
type metricsView struct {
	url      string
	metric   string
	ns       string
	filterNS bool
	client   *http.Client

	prev   map[series]float64 // nil before the first poll
	prevAt time.Time
}

func newMetricsView(o *options) (*metricsView, error) {
	u, err := url.Parse(o.metrics)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("-metrics %q: want an http:// or https:// URL, such as http://consumer:9464/metrics", o.metrics)
	}
	return &metricsView{
		url: o.metrics, metric: o.metric, ns: o.store.namespace, filterNS: o.given["namespace"],
		client: &http.Client{Timeout: o.store.timeout},
	}, nil
}

func (v *metricsView) source() string { return v.url }

// fetch reads the counters, summed by series.
func (v *metricsView) fetch(ctx context.Context) (map[series]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.url, nil)
	if err != nil {
		return nil, err
	}
	// The text format, not the protobuf one a Prometheus server would ask for.
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", v.url, resp.Status)
	}
	samples, err := parseSamples(resp.Body, v.metric)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", v.url, err)
	}
	totals := map[series]float64{}
	for _, s := range samples {
		if v.filterNS && s.labels["revguard_namespace"] != v.ns {
			continue
		}
		var k series
		for i, l := range decisionLabels {
			k[i] = s.labels[l]
		}
		totals[k] += s.value
	}
	return totals, nil
}

func (v *metricsView) poll(ctx context.Context) (frame, error) {
	totals, err := v.fetch(ctx)
	if err != nil {
		return frame{}, err
	}
	now := time.Now()
	prev, first, dt := v.prev, v.prev == nil, now.Sub(v.prevAt).Seconds()
	// rateOf is the increase since the last poll per second. A series that
	// appeared since then started from 0; one that went down was reset (the
	// consumer restarted) and counts from 0 too.
	rateOf := func(k series, cur float64) (float64, bool) {
		if first || dt <= 0 {
			return 0, false
		}
		was := prev[k]
		if cur < was {
			was = 0
		}
		return (cur - was) / dt, true
	}
	v.prev, v.prevAt = totals, now

	if len(totals) == 0 {
		msg := fmt.Sprintf("no %s samples at %s", v.metric, v.url)
		if v.filterNS {
			msg += fmt.Sprintf(" for namespace %q", v.ns)
		}
		return frame{line: msg, screen: msg + "\n"}, nil
	}
	keys := make([]series, 0, len(totals))
	for k := range totals {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b series) int {
		for i := range a {
			if c := cmp.Compare(a[i], b[i]); c != 0 {
				return c
			}
		}
		return 0
	})

	// The log line sums by outcome (and error type): what changed, briefly.
	type group struct {
		name        string
		total, rate float64
	}
	var groups []*group
	byName := map[string]*group{}
	var sum, sumRate float64
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "OUTCOME\tERROR\tNAMESPACE\tMODE\tCACHED\tTOTAL\tRATE")
	for _, k := range keys {
		cur := totals[k]
		r, ok := rateOf(k, cur)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.0f\t%s\n", dash(k[0]), dash(k[1]), dash(k[2]), dash(k[3]), dash(k[4]), cur, rate(r, ok))
		name := dash(k[0])
		if k[1] != "" {
			name += "/" + k[1]
		}
		g := byName[name]
		if g == nil {
			g = &group{name: name}
			byName[name] = g
			groups = append(groups, g)
		}
		g.total += cur
		g.rate += r
		sum += cur
		sumRate += r
	}
	fmt.Fprintf(tw, "all\t\t\t\t\t%.0f\t%s\n", sum, rate(sumRate, !first))
	_ = tw.Flush()

	fields := []string{fmt.Sprintf("decisions=%.0f", sum), "rate=" + rate(sumRate, !first)}
	for _, g := range groups {
		fields = append(fields, fmt.Sprintf("%s=%.0f(%s)", g.name, g.total, rate(g.rate, !first)))
	}
	return frame{line: joinFields(fields...), screen: b.String()}, nil
}
