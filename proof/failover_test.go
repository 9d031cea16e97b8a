package proof

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/redisstore"
)

// The failover storms run the delivery storm on replicated Redis while a
// replica is promoted: Sentinel and Cluster, each failed over gracefully
// (SENTINEL FAILOVER, CLUSTER FAILOVER) and by killing the master
// (SIGKILL), in Claim and AtMostOnce, without and with redisstore.WithWait.
// Redis replicates asynchronously: a master killed before its replica got
// a write loses it, and the promoted replica answers from an older state.
// The figures say what that costs; WithWait is checked to remove it.

// The failover kinds.
const (
	failGraceful = "graceful"
	failKill     = "kill"
)

// waitTimeout is WithWait's timeout in the storms: far above a healthy
// replica's lag (well under a millisecond here), far below the lease.
const waitTimeout = 300 * time.Millisecond

var failoverTable = newTable(4, "Failover: the delivery storm on replicated Redis (AOF everysec on every node, asynchronous replication) while a replica is promoted; 4 consumers, 10% of handlers fail, lease 3s; seconds to recover: from the failover's start to the last failed store call",
	"deployment", "failover", "mode", "durability", "events", "delivered", "handler runs", "applied", "lost", "applied twice", "of them after a failed commit", "out of order", "misreported drops", "errors", "seconds to recover")

// failoverDeployment is one replicated deployment the storms fail over.
// start starts it and returns a consumer's client, settle, which waits
// until it is ready to fail over (every node agreeing, every replica
// online), and failover, which fails it over and returns when a replica
// was promoted.
type failoverDeployment struct {
	name  string
	start func(t *testing.T) (client func() redis.UniversalClient, settle func(), failover func(kind string) (promoted time.Time))
}

var failoverDeployments = []failoverDeployment{
	{"sentinel", func(t *testing.T) (func() redis.UniversalClient, func(), func(string) time.Time) {
		g := startSentinelGroup(t)
		return func() redis.UniversalClient { return g.client() }, g.ready, g.failover
	}},
	{"cluster", func(t *testing.T) (func() redis.UniversalClient, func(), func(string) time.Time) {
		g := startClusterGroup(t)
		var shards map[string]string
		return func() redis.UniversalClient { return g.client() },
			func() { shards = g.ready() },
			func(kind string) time.Time { return g.failover(kind, shards) }
	}},
}

func TestProofFailover(t *testing.T) {
	kinds := []string{failGraceful, failKill}
	modes := []revguard.Mode{revguard.Claim}
	if long() {
		modes = append(modes, revguard.AtMostOnce)
	}
	for _, dep := range failoverDeployments {
		t.Run(dep.name, func(t *testing.T) {
			client, settle, failover := dep.start(t)
			for _, kind := range kinds {
				for _, mode := range modes {
					for _, wait := range []bool{false, true} {
						durability := "none"
						if wait {
							durability = fmt.Sprintf("WithWait(1, %s)", waitTimeout)
						}
						t.Run(fmt.Sprintf("%s/%s/wait=%t", kind, mode, wait), func(t *testing.T) {
							settle()
							failoverStorm(t, dep.name, kind, mode, durability, wait, client, failover)
						})
					}
				}
			}
		})
	}
}

func failoverStorm(t *testing.T, dep, kind string, mode revguard.Mode, durability string, wait bool,
	client func() redis.UniversalClient, failover func(string) time.Time) {
	c := client()
	defer func() { _ = c.Close() }()
	opts := []redisstore.Option{redisstore.WithPrefix(unique("proof-failover:") + ":")}
	if wait {
		opts = append(opts, redisstore.WithWait(1, waitTimeout))
	}
	store := redisstore.New(c, opts...)

	cfg := defaultStorm()
	// The lease outlasts the failover (Sentinel notices a dead master after
	// a second, then elects and promotes), so that a claim the failover kept
	// is still live when its commit gets through: what the storm measures is
	// what the failover lost, not leases that ran out meanwhile.
	cfg.lease = 3 * time.Second
	cfg.deaths = 0
	cfg.calm = true
	// Long enough to run through the failover: a round trip's worth of
	// latency on every call, and more events than the plain storm.
	cfg.entities, cfg.events = scale(120, 400), scale(15, 25)
	cfg.latency = time.Millisecond
	var started, promoted time.Time
	fired := make(chan struct{})
	r, log := runStorm(t, store, mode, cfg, nil, func(ctx context.Context) {
		defer close(fired)
		select {
		case <-ctx.Done():
			return
		case <-time.After(300 * time.Millisecond):
		}
		started = time.Now()
		promoted = failover(kind)
	})
	<-fired
	if started.IsZero() {
		t.Fatal("the storm ended before the failover began")
	}

	// Recovery: the last store call that failed, other than a dead
	// consumer's, measured from the failover's start.
	var lastFailed time.Time
	failedAfter, succeededAfter := 0, 0
	log.mu.Lock()
	for _, cl := range log.calls {
		if cl.end.Before(started) {
			continue
		}
		if cl.err != nil && !errors.Is(cl.err, errDead) {
			failedAfter++
			if cl.end.After(lastFailed) {
				lastFailed = cl.end
			}
		} else if cl.err == nil && cl.start.After(promoted) {
			succeededAfter++
		}
	}
	log.mu.Unlock()
	recovery := 0.0
	if !lastFailed.IsZero() {
		recovery = lastFailed.Sub(started).Seconds()
	}
	if succeededAfter == 0 {
		t.Errorf("no store call succeeded after the promotion: the storm did not run through the failover")
	}
	t.Logf("%s %s: failover started %s, promoted after %s; %d store calls failed after its start",
		dep, kind, started.Format("15:04:05.000"), promoted.Sub(started).Round(time.Millisecond), failedAfter)
	failoverTable.add(t, dep, kind, mode, durability, r.events, r.delivered, r.handled, r.applied, r.lost, r.twice, r.twiceKnown, r.outOfOrder, r.misrep, r.errs, fmt.Sprintf("%.2f", recovery))
	for _, n := range r.notes {
		t.Log(n)
	}

	// What holds whatever the failover lost: no drop without a revision at
	// least as high granted before it.
	if r.misrep != 0 {
		t.Errorf("%d drops misreported", r.misrep)
	}
	if mode == revguard.AtMostOnce && r.lost != r.amoByDesign && wait {
		t.Errorf("%d events lost that were never advanced", r.lost-r.amoByDesign)
	}
	// With WithWait a commit is acknowledged only once a replica has it, so
	// a promotion cannot take back what a consumer acknowledged.
	if wait && mode == revguard.Claim {
		if r.lost != 0 {
			t.Errorf("WithWait: %d events lost", r.lost)
		}
		if r.twice != r.twiceKnown {
			t.Errorf("WithWait: %d revisions applied twice", r.twice-r.twiceKnown)
		}
		if r.outOfOrder != r.orderKnown {
			t.Errorf("WithWait: %d completions out of order", r.outOfOrder-r.orderKnown)
		}
		if r.finalWrong != 0 {
			t.Errorf("WithWait: %d entities end below their highest revision", r.finalWrong)
		}
	}
}
