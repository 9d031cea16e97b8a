package redisstore

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/revguard/revguard"
)

// The benchmarks run on the real server (REVGUARD_REDIS_ADDR) and set each
// revguard path beside raw go-redis running the least script that does the
// same job, a compare-and-set, measured in the same run:
//
//	go test -run '^$' -bench . -benchtime 2s ./backends/redisstore/
//
// Every event applies (its revision is one above its key's), the costly path.

// rawCAS is the baseline: a one-key, one-revision set-if-greater. Its
// tonumber is exactly what revguard cannot afford, which only flatters it.
var rawCAS = redis.NewScript(`local c = redis.call('GET', KEYS[1])
if c and tonumber(c) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1]) return 1`)

// runs makes each benchmark run's keys its own, so that -count and the
// growing b.N never meet revisions an earlier run applied.
var runs atomic.Int64

func run() string { return strconv.FormatInt(runs.Add(1), 10) }

type benchEvent struct {
	key string
	rev revguard.Revision
}

func benchClient(b *testing.B) *redis.Client {
	c := serverClient(b)
	// Enough connections that 64 goroutines do not queue for one.
	c = redis.NewClient(&redis.Options{Addr: c.Options().Addr, PoolSize: 64})
	b.Cleanup(func() { _ = c.Close() })
	return c
}

// parallel runs body in g goroutines, each with a number of its own.
func parallel(b *testing.B, g int, body func(id int, pb *testing.PB)) {
	var ids atomic.Int32
	b.SetParallelism((g + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.RunParallel(func(pb *testing.PB) { body(int(ids.Add(1)), pb) })
}

func eventsPerSec(b *testing.B, perOp int) {
	b.ReportMetric(float64(b.N*perOp)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkHandle(b *testing.B) {
	c := benchClient(b)
	prefix := uniquePrefix()
	b.Cleanup(func() { deleteKeys(c, prefix) })
	ctx := context.Background()
	h := func(context.Context, benchEvent) error { return nil }
	extract := func(e benchEvent) (string, revguard.Revision, error) { return e.key, e.rev, nil }

	for _, g := range []int{1, 64} {
		b.Run(fmt.Sprintf("raw-evalsha/g=%d", g), func(b *testing.B) {
			r := run()
			b.ReportAllocs()
			parallel(b, g, func(id int, pb *testing.PB) {
				key := prefix + "raw:" + r + ":" + strconv.Itoa(id)
				for rev := 1; pb.Next(); rev++ {
					if err := rawCAS.Run(ctx, c, []string{key}, rev).Err(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			eventsPerSec(b, 1)
		})
		for _, mode := range []revguard.Mode{revguard.AtMostOnce, revguard.Claim} {
			b.Run(fmt.Sprintf("%s/g=%d", mode, g), func(b *testing.B) {
				guard := revguard.New(New(c, WithPrefix(prefix)), extract, revguard.WithMode(mode))
				r := run()
				b.ReportAllocs()
				parallel(b, g, func(id int, pb *testing.PB) {
					key := mode.String() + ":" + r + ":" + strconv.Itoa(id)
					for rev := revguard.Revision(1); pb.Next(); rev++ {
						out, err := guard.Handle(ctx, benchEvent{key, rev}, h)
						if err != nil || out != revguard.Applied {
							b.Errorf("Handle = %s, %v", out, err)
							return
						}
					}
				})
				eventsPerSec(b, 1)
			})
		}
	}
}

func BenchmarkBatch(b *testing.B) {
	const n = 100
	c := benchClient(b)
	prefix := uniquePrefix()
	b.Cleanup(func() { deleteKeys(c, prefix) })
	ctx := context.Background()

	b.Run("raw-pipelined-evalsha", func(b *testing.B) {
		keys := make([]string, n)
		r := run()
		for i := range keys {
			keys[i] = prefix + "raw:" + r + ":" + strconv.Itoa(i)
		}
		if err := rawCAS.Load(ctx, c).Err(); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for rev := 1; rev <= b.N; rev++ {
			cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, k := range keys {
					rawCAS.EvalSha(ctx, p, []string{k}, rev)
				}
				return nil
			})
			if err != nil || len(cmds) != n {
				b.Fatal(err)
			}
		}
		eventsPerSec(b, n)
	})
	b.Run("HandleBatch/Claim", func(b *testing.B) {
		guard := revguard.New(New(c, WithPrefix(prefix)), func(e benchEvent) (string, revguard.Revision, error) { return e.key, e.rev, nil })
		h := func(context.Context, benchEvent) error { return nil }
		events := make([]benchEvent, n)
		r := run()
		for i := range events {
			events[i].key = "batch:" + r + ":" + strconv.Itoa(i)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for rev := revguard.Revision(1); rev <= revguard.Revision(b.N); rev++ {
			for i := range events {
				events[i].rev = rev
			}
			for i, r := range guard.HandleBatch(ctx, events, h) {
				if r.Err != nil || r.Outcome != revguard.Applied {
					b.Fatalf("event %d: %s, %v", i, r.Outcome, r.Err)
				}
			}
		}
		eventsPerSec(b, n)
	})
	// The store alone, without the guard's bookkeeping around it.
	b.Run("ClaimBatch+CommitBatch", func(b *testing.B) {
		s := New(c, WithPrefix(prefix))
		reqs := make([]revguard.Request, n)
		commits := make([]revguard.Commit, n)
		r := run()
		for i := range reqs {
			reqs[i] = revguard.Request{Key: "store:" + r + ":" + strconv.Itoa(i), Lease: time.Minute}
			commits[i].Key = reqs[i].Key
		}
		b.ReportAllocs()
		b.ResetTimer()
		for rev := revguard.Revision(1); rev <= revguard.Revision(b.N); rev++ {
			for i := range reqs {
				reqs[i].Rev, reqs[i].Token[0], reqs[i].Token[1] = rev, byte(rev), byte(rev>>8)
				commits[i].Token = reqs[i].Token
			}
			res, err := s.ClaimBatch(ctx, reqs)
			if err != nil || res[0].Verdict != revguard.Granted {
				b.Fatal(res[0], err)
			}
			errs, err := s.CommitBatch(ctx, commits)
			if err != nil || errs[0] != nil {
				b.Fatal(errs[0], err)
			}
		}
		eventsPerSec(b, n)
	})
}

// interleaved runs b.N operations in g goroutines, each alternating
// between op(false, ...) and op(true, ...), and reports the mean time of
// each kind and their ratio. On a shared machine the load drifts from one
// second to the next; two kinds measured in alternation drift together, so
// their ratio holds where two benchmarks run apart would not.
func interleaved(b *testing.B, g int, names [2]string, op func(second bool, id int, i int) error) {
	var (
		ids   atomic.Int32
		total [2]atomic.Int64 // nanoseconds
		count [2]atomic.Int64
	)
	body := func(next func() bool) {
		id := int(ids.Add(1))
		for i := 0; next(); i++ {
			k := i % 2
			start := time.Now()
			if err := op(k == 1, id, i/2); err != nil {
				b.Error(err)
				return
			}
			total[k].Add(int64(time.Since(start)))
			count[k].Add(1)
		}
	}
	b.ReportAllocs()
	if g == 1 { // RunParallel runs at least GOMAXPROCS goroutines
		n := 0
		body(func() bool { n++; return n <= b.N })
	} else {
		b.SetParallelism((g + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
		b.RunParallel(func(pb *testing.PB) { body(pb.Next) })
	}
	var mean [2]float64
	for k := range mean {
		mean[k] = float64(total[k].Load()) / float64(max(count[k].Load(), 1))
		b.ReportMetric(mean[k], "ns/"+names[k])
	}
	b.ReportMetric(mean[1]/mean[0], names[1]+"/"+names[0])
}

// BenchmarkDeadline measures what ending every call with its context
// costs: Handle in Claim mode, alternating a context that never ends, which
// the store passes to go-redis as it is, with one that can: with a
// deadline, or cancellable only. The store runs each call of the second
// kind on a goroutine of its own, to return when the context ends, except
// with a deadline on a client with ContextTimeoutEnabled, which ends the
// call at the deadline itself.
//
//	go test -run '^$' -bench Deadline -count 5 ./backends/redisstore/
func BenchmarkDeadline(b *testing.B) {
	addr := serverClient(b).Options().Addr
	prefix := uniquePrefix()
	extract := func(e benchEvent) (string, revguard.Revision, error) { return e.key, e.rev, nil }
	h := func(context.Context, benchEvent) error { return nil }
	for _, enabled := range []bool{false, true} {
		c := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 64, ContextTimeoutEnabled: enabled})
		b.Cleanup(func() { _ = c.Close() })
		b.Cleanup(func() { deleteKeys(c, prefix) })
		for _, kind := range []string{"cancellable", "deadline"} {
			for _, g := range []int{1, 64} {
				b.Run(fmt.Sprintf("ContextTimeoutEnabled=%t/%s/g=%d", enabled, kind, g), func(b *testing.B) {
					guard := revguard.New(New(c, WithPrefix(prefix)), extract)
					ending, cancel := context.WithCancel(context.Background())
					if kind == "deadline" {
						ending, cancel = context.WithTimeout(context.Background(), time.Hour)
					}
					defer cancel()
					r := run()
					interleaved(b, g, [2]string{"background", kind}, func(second bool, id, i int) error {
						ctx, k := context.Background(), "b"
						if second {
							ctx, k = ending, "e"
						}
						key := "deadline:" + r + ":" + k + strconv.Itoa(id)
						out, err := guard.Handle(ctx, benchEvent{key, revguard.Revision(i + 1)}, h)
						if err == nil && out != revguard.Applied {
							err = fmt.Errorf("Handle = %s", out)
						}
						return err
					})
				})
			}
		}
	}
}

// BenchmarkWait measures what WithWait(1, ...) costs a decision: Handle,
// alternating a guard on a store without it and one on a store with it,
// against a master and a replica of the benchmark's own.
//
//	go test -run '^$' -bench Wait -count 5 ./backends/redisstore/
func BenchmarkWait(b *testing.B) {
	master, _ := startReplicated(b)
	c := master.client(func(o *redis.Options) { o.PoolSize = 64 })
	extract := func(e benchEvent) (string, revguard.Revision, error) { return e.key, e.rev, nil }
	h := func(context.Context, benchEvent) error { return nil }
	ctx := context.Background()
	for _, mode := range []revguard.Mode{revguard.Claim, revguard.AtMostOnce} {
		for _, g := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/g=%d", mode, g), func(b *testing.B) {
				guards := [2]*revguard.Guard[benchEvent]{
					revguard.New(New(c), extract, revguard.WithMode(mode)),
					revguard.New(New(c, WithWait(1, time.Second)), extract, revguard.WithMode(mode)),
				}
				r := run()
				interleaved(b, g, [2]string{"handle", "handle-wait"}, func(second bool, id, i int) error {
					k := 0
					if second {
						k = 1
					}
					key := "wait:" + r + ":" + strconv.Itoa(k) + ":" + strconv.Itoa(id)
					out, err := guards[k].Handle(ctx, benchEvent{key, revguard.Revision(i + 1)}, h)
					if err == nil && out != revguard.Applied {
						err = fmt.Errorf("Handle = %s", out)
					}
					return err
				})
			})
		}
	}
}
