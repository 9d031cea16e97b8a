package main

import (
	"strings"
	"testing"
)

func TestSummarize(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"start","Package":"p"}`,
		`{"Action":"run","Package":"p","Test":"TestRedis"}`,
		`{"Action":"output","Package":"p","Test":"TestRedis","Output":"=== RUN   TestRedis\n"}`,
		`{"Action":"output","Package":"p","Test":"TestRedis","Output":"    x_test.go:12: REVGUARD_REDIS_ADDR is not set (the address of a redis-server): skipping (scripts/servers.sh start provides it)\n"}`,
		`{"Action":"skip","Package":"p","Test":"TestRedis"}`,
		`{"Action":"output","Package":"p","Test":"TestShort","Output":"    y_test.go:3: skipped in -short\n"}`,
		`{"Action":"skip","Package":"p","Test":"TestShort"}`,
		`{"Action":"output","Package":"p","Test":"TestBroken","Output":"    z_test.go:9: want 1, got 2\n"}`,
		`{"Action":"fail","Package":"p","Test":"TestBroken"}`,
		`{"Action":"output","Package":"p","Output":"FAIL\n"}`,
		`{"Action":"fail","Package":"p","Elapsed":1.5}`,
		`{"Action":"pass","Package":"q","Elapsed":0.25}`,
	}, "\n")
	var out strings.Builder
	failed, err := summarize(strings.NewReader(in), &out)
	if err != nil {
		t.Fatal(err)
	}
	if !failed {
		t.Error("a failed test was not reported as a failure")
	}
	got := out.String()
	for _, want := range []string{
		"z_test.go:9: want 1, got 2",
		"FAIL\tp\t1.500s",
		"ok  \tq\t0.250s",
		"1 tests skipped because a server was not running (REVGUARD_REDIS_ADDR)",
		"scripts/servers.sh start",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the summary lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "=== RUN") || strings.Contains(got, "skipped in -short") {
		t.Errorf("the summary shows what passed or skipped for another reason:\n%s", got)
	}
}
