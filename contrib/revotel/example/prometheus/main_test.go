package main

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scope is the labels the exporter adds to every series of revotel's.
const scope = `otel_scope_name="github.com/revguard/revguard/contrib/revotel",otel_scope_schema_url="",otel_scope_version="",`

func TestMetricsPage(t *testing.T) {
	h, g, err := setup()
	require.NoError(t, err)
	for _, e := range deliveries {
		_, _ = g.Handle(context.Background(), e, ship)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var decisions []string
	names := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if name, _, ok := strings.Cut(line, "{"); ok && strings.HasPrefix(name, "revguard_") {
			names[name] = true
		}
		if strings.HasPrefix(line, "revguard_decisions_total{") {
			decisions = append(decisions, line)
		}
	}
	require.NoError(t, sc.Err())

	assert.ElementsMatch(t, []string{
		`revguard_decisions_total{` + scope + `revguard_mode="claim",revguard_namespace="shipping",revguard_outcome="applied"} 3`,
		`revguard_decisions_total{` + scope + `revguard_cached="true",revguard_mode="claim",revguard_namespace="shipping",revguard_outcome="duplicate"} 1`,
		`revguard_decisions_total{` + scope + `revguard_cached="true",revguard_mode="claim",revguard_namespace="shipping",revguard_outcome="stale"} 1`,
		`revguard_decisions_total{error_type="handler",` + scope + `revguard_mode="claim",revguard_namespace="shipping"} 1`,
		`revguard_decisions_total{error_type="invalid",` + scope + `revguard_mode="claim",revguard_namespace="shipping"} 1`,
	}, decisions)
	assert.Equal(t, map[string]bool{
		"revguard_decisions_total":                  true,
		"revguard_decision_duration_seconds_bucket": true,
		"revguard_decision_duration_seconds_sum":    true,
		"revguard_decision_duration_seconds_count":  true,
		"revguard_handler_duration_seconds_bucket":  true,
		"revguard_handler_duration_seconds_sum":     true,
		"revguard_handler_duration_seconds_count":   true,
	}, names)
}

func TestSelftest(t *testing.T) {
	var out strings.Builder
	require.NoError(t, run("127.0.0.1:0", true, &out))
	assert.Contains(t, out.String(), `revguard_decisions_total{`+scope+`revguard_mode="claim",revguard_namespace="shipping",revguard_outcome="applied"} 3`)
	assert.Contains(t, out.String(), "revguard_handler_duration_seconds_count{")
	assert.NotContains(t, out.String(), "_bucket{")
}
