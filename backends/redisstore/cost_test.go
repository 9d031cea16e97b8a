package redisstore

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/revguard/revguard"
)

// BenchmarkScriptCost measures what the scripts cost the server, not the
// client: the microseconds Redis reports spending in EVALSHA (INFO
// commandstats), per key, inside calls of 100 keys on entities that exist.
// The client's time is noise on a shared machine; the server's is what
// bounds throughput, since Redis runs scripts on one thread.
//
//	go test -run '^$' -bench ScriptCost -benchtime 2000x ./backends/redisstore/
//
// It reads the counters before and after each call, so that another client
// of the same server only adds to a call's figure while they overlap.
func BenchmarkScriptCost(b *testing.B) {
	const n = 100
	c := serverClient(b)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		opts []Option
	}{{"noTTL", nil}, {"TTL", []Option{WithTTL(time.Hour)}}} {
		b.Run(tc.name, func(b *testing.B) {
			s := testStore(b, c, tc.opts...)
			reqs, advances := make([]revguard.Request, n), make([]revguard.Request, n)
			commits := make([]revguard.Commit, n)
			for i := range reqs {
				reqs[i] = revguard.Request{Key: "cost:" + strconv.Itoa(i), Lease: time.Minute}
				commits[i].Key = reqs[i].Key
				// AtMostOnce keys of their own, as a guard in that mode has.
				advances[i] = revguard.Request{Key: "advance:" + strconv.Itoa(i), Advance: true}
			}
			var claim, commit, advance, drop float64
			for rev := revguard.Revision(1); rev <= revguard.Revision(b.N); rev++ {
				for i := range reqs {
					reqs[i].Rev = rev
					reqs[i].Token[0], reqs[i].Token[1] = byte(rev), byte(rev>>8)
					commits[i].Token = reqs[i].Token
					advances[i].Rev, advances[i].Token = rev, reqs[i].Token
				}
				claim += serverTime(b, c, func() error { return wantVerdict(s.ClaimBatch(ctx, reqs)) })
				commit += serverTime(b, c, func() error {
					errs, err := s.CommitBatch(ctx, commits)
					if err == nil && errs[0] != nil {
						err = errs[0]
					}
					return err
				})
				drop += serverTime(b, c, func() error {
					_, err := s.ClaimBatch(ctx, reqs) // every request a duplicate
					return err
				})
				advance += serverTime(b, c, func() error { return wantVerdict(s.ClaimBatch(ctx, advances)) })
			}
			per := float64(b.N * n)
			b.ReportMetric(claim/per, "claim-µs/key")
			b.ReportMetric(commit/per, "commit-µs/key")
			b.ReportMetric(drop/per, "dup-µs/key")
			b.ReportMetric(advance/per, "advance-µs/key")
		})
	}
}

func wantVerdict(out []revguard.Reply, err error) error {
	if err == nil && out[0].Verdict != revguard.Granted {
		err = &unexpected{out[0].Verdict}
	}
	return err
}

type unexpected struct{ v revguard.Verdict }

func (u *unexpected) Error() string { return "verdict " + u.v.String() }

// serverTime runs call and returns the microseconds the server spent in
// EVALSHA meanwhile.
func serverTime(b *testing.B, c *redis.Client, call func() error) float64 {
	before := evalUsec(b, c)
	if err := call(); err != nil {
		b.Fatal(err)
	}
	return evalUsec(b, c) - before
}

func evalUsec(b *testing.B, c *redis.Client) float64 {
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(line, "cmdstat_evalsha:"); ok {
			for _, f := range strings.Split(rest, ",") {
				if v, ok := strings.CutPrefix(f, "usec="); ok {
					n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
					if err != nil {
						b.Fatal(err)
					}
					return n
				}
			}
		}
	}
	return 0
}
