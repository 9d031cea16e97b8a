package revkgo_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/contrib/revkgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func revs(rs ...revguard.Revision) []revguard.Revision { return rs }

func TestConsumeAppliesEachRevisionOnceInOrder(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	end := c.produce(t,
		// a re-sent copy of a2 at a new offset, then a1 retried late
		event(0, "a", "1"), event(0, "a", "2"), event(0, "a", "2"), event(0, "a", "1"), event(0, "a", "3"),
		// b2 lands after b3: stale
		event(0, "b", "1"), event(0, "b", "3"), event(0, "b", "2"), event(0, "b", "3"),
		event(1, "c", "1"), event(1, "c", "2"), event(1, "c", "1"), event(1, "c", "3"), event(1, "c", "3"),
		event(2, "d", "2026-01-01T00:00:00Z"), event(2, "d", "2026-01-01T00:00:01Z"), event(2, "d", "2026-01-01T00:00:00Z"),
	)
	p, g := newProjection(), newGuard()
	stop := run(t, c.consumer(t, "one"), g, p.apply)
	c.waitCommitted(t, end)
	require.ErrorIs(t, stop(), context.Canceled)

	t0, _ := revguard.ParseRevision("2026-01-01T00:00:00Z")
	t1, _ := revguard.ParseRevision("2026-01-01T00:00:01Z")
	assert.Equal(t, map[string][]revguard.Revision{
		"a": revs(1, 2, 3), "b": revs(1, 3), "c": revs(1, 2, 3), "d": revs(t0, t1),
	}, p.snapshot())
	st := g.Stats()
	assert.Equal(t, uint64(10), st.Applied)
	assert.Equal(t, uint64(3), st.Duplicate)
	assert.Equal(t, uint64(4), st.Stale)
}

func TestHandlerFailureRewindsAndCommitsOnlyAcknowledged(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	end := c.produce(t,
		event(0, "a", "1"), event(0, "a", "2"), event(0, "a", "3"), event(0, "a", "4"),
		event(1, "b", "1"), event(1, "b", "2"),
	)
	var broken atomic.Bool
	broken.Store(true)
	errDown := errors.New("price store down")
	p, g, seen := newProjection(), newGuard(), &outcomes{}
	p.fail = func(key string, rev revguard.Revision) error {
		if key == "a" && rev == 3 && broken.Load() {
			return errDown
		}
		return nil
	}
	stop := run(t, c.consumer(t, "one"), g, p.apply,
		revkgo.WithObserver(seen.observe), revkgo.WithRedeliverDelay(5*time.Millisecond))

	// a3 (offset 2) fails, is fetched again and fails again: the commit
	// stays at it, and a4 behind it waits.
	failures := func() int {
		n := 0
		for _, o := range seen.all() {
			if o.partition == 0 && o.offset == 2 && errors.Is(o.err, errDown) {
				n++
			}
		}
		return n
	}
	require.Eventually(t, func() bool { return failures() >= 3 }, waitFor, 5*time.Millisecond)
	c.waitCommitted(t, map[int32]int64{0: 2, 1: end[1]})
	assert.Equal(t, revs(1, 2), p.revisions("a"))

	broken.Store(false)
	c.waitCommitted(t, end)
	require.ErrorIs(t, stop(), context.Canceled)
	assert.Equal(t, revs(1, 2, 3, 4), p.revisions("a"))
	assert.Equal(t, revs(1, 2), p.revisions("b"))
	// Nothing after a3 was handled before a3 was acknowledged.
	var a3Acked bool
	for _, o := range seen.all() {
		if o.partition != 0 {
			continue
		}
		if o.offset == 2 && o.err == nil {
			a3Acked = true
		}
		if o.offset == 3 {
			assert.True(t, a3Acked, "a4 handled before a3 was acknowledged")
		}
	}
}

func TestRetryLaterPausesOnlyItsPartition(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	// Sequential: x2 must wait for x1, which is in the other partition.
	end := c.produce(t, event(0, "x", "2"))
	p, seen := newProjection(), &outcomes{}
	g := newGuard(revguard.WithOrdering(revguard.Sequential))
	stop := run(t, c.consumer(t, "one"), g, p.apply,
		revkgo.WithObserver(seen.observe), revkgo.WithRetryDelay(2*time.Second))

	gaps := func() int {
		n := 0
		for _, o := range seen.all() {
			if o.partition == 0 && errors.Is(o.err, revguard.ErrGap) {
				n++
			}
		}
		return n
	}
	require.Eventually(t, func() bool { return gaps() == 1 }, waitFor, 5*time.Millisecond)
	// While partition 0 waits, partition 1 goes on.
	c.produce(t, event(1, "y", "1"))
	require.Eventually(t, func() bool { return len(p.revisions("y")) == 1 }, waitFor, 5*time.Millisecond)
	assert.Equal(t, 1, gaps(), "x2 was fetched again before its retry delay")
	assert.Empty(t, p.revisions("x"))

	end[1] = c.produce(t, event(1, "x", "1"))[1]
	c.waitCommitted(t, end)
	require.ErrorIs(t, stop(), context.Canceled)
	assert.Equal(t, revs(1, 2), p.revisions("x"))
}

// commitLog records every offset commit the cluster receives.
type commitLog struct {
	mu      sync.Mutex
	offsets map[int32][]int64
}

func (l *commitLog) watch(c *cluster) {
	l.offsets = map[int32][]int64{}
	c.ControlKey(int16(kmsg.OffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, tp := range req.(*kmsg.OffsetCommitRequest).Topics {
			for _, p := range tp.Partitions {
				l.offsets[p.Partition] = append(l.offsets[p.Partition], p.Offset)
			}
		}
		return nil, nil, false
	})
}

// regressions returns the partitions whose commits went backwards.
func (l *commitLog) regressions() map[int32][]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	bad := map[int32][]int64{}
	for p, offs := range l.offsets {
		for i := 1; i < len(offs); i++ {
			if offs[i] < offs[i-1] {
				bad[p] = offs
				break
			}
		}
	}
	return bad
}

func TestRebalanceAppliesEachRevisionOnce(t *testing.T) {
	t.Parallel()
	const partitions, keys, half = 4, 8, 6
	c := newCluster(t, partitions)
	var commits commitLog
	commits.watch(c)
	batch := func(from, to int) map[int32]int64 {
		var recs []*kgo.Record
		for r := from; r <= to; r++ {
			for k := range keys {
				rec := event(int32(k%partitions), string(rune('a'+k)), revguard.Revision(r).String())
				recs = append(recs, rec)
				if (k+r)%3 == 0 { // a re-sent copy
					recs = append(recs, event(rec.Partition, string(rec.Key), revguard.Revision(r).String()))
				}
			}
		}
		return c.produce(t, recs...)
	}
	batch(1, half)

	store := memstore.New()
	p := newProjection()
	slow := func(ctx context.Context, r *kgo.Record) error {
		time.Sleep(time.Millisecond) // so that the second member joins mid-run
		return p.apply(ctx, r)
	}
	g1 := revguard.New(store, extract, revguard.WithNamespace(group))
	g2 := revguard.New(store, extract, revguard.WithNamespace(group))
	stop1 := run(t, c.consumer(t, "one"), g1, slow, revkgo.WithPollRecords(10))
	require.Eventually(t, func() bool { return len(p.snapshot()) > 0 }, waitFor, 5*time.Millisecond)

	var second outcomes
	stop2 := run(t, c.consumer(t, "two"), g2, slow, revkgo.WithPollRecords(10), revkgo.WithObserver(second.observe))
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	_, err := c.WaitGroupStable(ctx, group, 2)
	require.NoError(t, err)
	end := batch(half+1, 2*half)
	c.waitCommitted(t, end)
	require.ErrorIs(t, stop1(), context.Canceled)
	require.ErrorIs(t, stop2(), context.Canceled)

	want := revs(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)
	for k, applied := range p.snapshot() {
		assert.Equal(t, want, applied, "entity %s", k)
	}
	assert.Len(t, p.snapshot(), keys)
	assert.NotEmpty(t, second.all(), "the second member handled nothing")
	assert.Empty(t, commits.regressions(), "a commit went backwards: a member committed a partition it no longer owned")
}

func TestRestartResumesWithoutLossOrRepeat(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	batch := func(from, to int) map[int32]int64 {
		var recs []*kgo.Record
		for r := from; r <= to; r++ {
			recs = append(recs, event(0, "a", revguard.Revision(r).String()), event(1, "b", revguard.Revision(r).String()))
		}
		return c.produce(t, recs...)
	}
	first := batch(1, 4)

	store := memstore.New()
	p := newProjection()
	g1 := revguard.New(store, extract, revguard.WithNamespace(group))
	cl1 := c.consumer(t, "one")
	stop1 := run(t, cl1, g1, p.apply, revkgo.WithErrorHandler(func(error) {}))
	c.waitCommitted(t, first)

	// From now on the first consumer's commits are lost, as if it died
	// between handling a poll and committing it.
	var dead atomic.Bool
	failed := make(chan struct{}, 1)
	dead.Store(true)
	c.ControlKey(int16(kmsg.OffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if !dead.Load() {
			return nil, nil, false
		}
		c.KeepControl()
		resp := failCommit(req.(*kmsg.OffsetCommitRequest))
		select {
		case failed <- struct{}{}:
		default:
		}
		return resp, nil, true
	})
	end := batch(5, 8)
	select {
	case <-failed:
	case <-time.After(waitFor):
		t.Fatal("the first consumer never committed its second batch")
	}
	require.ErrorIs(t, stop1(), context.Canceled)
	cl1.CloseAllowingRebalance()
	assert.Equal(t, first, c.committed())
	handledByFirst := len(p.revisions("a")) + len(p.revisions("b"))
	require.Greater(t, handledByFirst, 8, "the first consumer applied nothing of its uncommitted poll")
	dead.Store(false)

	// A new consumer resumes from the committed offsets: the records the
	// first one applied come again and are dropped.
	var seen outcomes
	g2 := revguard.New(store, extract, revguard.WithNamespace(group))
	stop2 := run(t, c.consumer(t, "two"), g2, p.apply, revkgo.WithObserver(seen.observe))
	c.waitCommitted(t, end)
	require.ErrorIs(t, stop2(), context.Canceled)

	want := revs(1, 2, 3, 4, 5, 6, 7, 8)
	assert.Equal(t, want, p.revisions("a"))
	assert.Equal(t, want, p.revisions("b"))
	var dropped int
	for _, o := range seen.all() {
		if o.out == revguard.Duplicate || o.out == revguard.Stale {
			dropped++
		}
	}
	assert.Equal(t, handledByFirst-8, dropped, "the records applied but not committed come again and are dropped")
}

// failCommit answers a commit with an error for every partition, and
// commits nothing.
func failCommit(req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

func TestBadInputGoesToDeadLetter(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	noRev := event(0, "k3", "1")
	noRev.Headers = nil
	end := c.produce(t,
		&kgo.Record{Headers: []kgo.RecordHeader{{Key: revHdr, Value: []byte("1")}}}, // no key
		event(0, "k2", "soon"), // unparsable revision
		noRev,
		event(0, "ok", "1"),
	)
	type letter struct {
		offset int64
		err    error
	}
	var (
		mu      sync.Mutex
		letters []letter
	)
	dlq := func(_ context.Context, r *kgo.Record, err error) error {
		mu.Lock()
		defer mu.Unlock()
		letters = append(letters, letter{r.Offset, err})
		return nil
	}
	p, g, seen := newProjection(), newGuard(), &outcomes{}
	stop := run(t, c.consumer(t, "one"), g, p.apply, revkgo.WithDeadLetter(dlq), revkgo.WithObserver(seen.observe))
	c.waitCommitted(t, end)
	require.ErrorIs(t, stop(), context.Canceled)

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, letters, 3)
	assert.ErrorIs(t, letters[0].err, revguard.ErrInvalidKey)
	assert.ErrorIs(t, letters[1].err, revguard.ErrInvalidRevision)
	assert.ErrorContains(t, letters[1].err, `"soon"`)
	assert.ErrorIs(t, letters[2].err, revguard.ErrInvalidRevision)
	assert.ErrorContains(t, letters[2].err, `header "revision"`)
	assert.Equal(t, map[string][]revguard.Revision{"ok": revs(1)}, p.snapshot(), "the handler ran for bad input")
	for _, key := range []string{"k2", "k3"} {
		_, ok, err := g.Applied(t.Context(), key)
		require.NoError(t, err)
		assert.False(t, ok, "%s has a stored revision", key)
	}
	for _, o := range seen.all()[:3] {
		assert.Equal(t, revguard.DeadLettered, o.out)
		assert.NoError(t, o.err)
	}
}

func TestBadInputWithoutDeadLetterStopsThePartition(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	c.produce(t, event(0, "a", "1"), event(0, "k", "x"), event(0, "after", "1"), event(1, "b", "1"))
	stopped := make(chan error, 1)
	onError := func(err error) {
		if errors.Is(err, revkgo.ErrPartitionStopped) {
			stopped <- err
		}
	}
	p, g, seen := newProjection(), newGuard(), &outcomes{}
	stop := run(t, c.consumer(t, "one"), g, p.apply, revkgo.WithErrorHandler(onError), revkgo.WithObserver(seen.observe))
	select {
	case err := <-stopped:
		assert.ErrorIs(t, err, revguard.ErrInvalidRevision)
		assert.ErrorContains(t, err, topic+"/0@1")
	case <-time.After(waitFor):
		t.Fatal("no ErrPartitionStopped")
	}
	// Partition 1 goes on; partition 0 stays at the bad record.
	end := c.produce(t, event(1, "b", "2"))
	c.waitCommitted(t, map[int32]int64{0: 1, 1: end[1]})
	require.ErrorIs(t, stop(), context.Canceled)

	assert.Equal(t, map[string][]revguard.Revision{"a": revs(1), "b": revs(1, 2)}, p.snapshot())
	_, ok, err := g.Applied(t.Context(), "k")
	require.NoError(t, err)
	assert.False(t, ok)
	n := 0
	for _, o := range seen.all() {
		if o.partition == 0 && o.offset == 1 {
			n++
		}
	}
	assert.Equal(t, 1, n, "the bad record was fetched again")
}

func TestConsumeRefusesAClientItCannotCommitWith(t *testing.T) {
	t.Parallel()
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"), kgo.ConsumeTopics(topic))
	require.NoError(t, err)
	defer cl.Close()
	p, g := newProjection(), newGuard()
	err = revkgo.Consume(t.Context(), cl, g, p.apply)
	require.Error(t, err)
	for _, opt := range []string{"kgo.ConsumerGroup", "kgo.DisableAutoCommit", "kgo.BlockRebalanceOnPoll"} {
		assert.ErrorContains(t, err, opt)
	}
	assert.ErrorContains(t, revkgo.HandleFetches(t.Context(), cl, nil, p.apply, nil), "nil guard")
}
