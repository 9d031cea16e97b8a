package redisstore

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"
)

// ownShard is one master of a cluster of the test's own, and its replica.
type ownShard struct {
	master, replica *redisProc
}

// startCluster starts a Redis Cluster of n masters, each with one replica,
// the slots split evenly, and waits until every master counts its replica
// online and every node sees the cluster ok.
func startCluster(t *testing.T, n int) []ownShard {
	t.Helper()
	ctx := t.Context()
	args := []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--repl-diskless-sync-delay", "0"}
	shards := make([]ownShard, n)
	for i := range shards {
		shards[i] = ownShard{startRedis(t, args...), startRedis(t, args...)}
	}
	first := shards[0].master.client()
	ids := make([]string, n)
	for i, sh := range shards {
		mc := sh.master.client()
		lo, hi := i*slots/n, (i+1)*slots/n-1
		require.NoError(t, mc.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err())
		id, err := mc.Do(ctx, "CLUSTER", "MYID").Text()
		require.NoError(t, err)
		ids[i] = id
		for _, p := range []*redisProc{sh.master, sh.replica} {
			require.NoError(t, first.Do(ctx, "CLUSTER", "MEET", "127.0.0.1", p.port).Err())
		}
	}
	poll := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("own cluster: %s", what)
			}
		}
	}
	for i, sh := range shards {
		rc := sh.replica.client()
		poll("the replica does not know its master", func() bool {
			nodes, _ := rc.Do(ctx, "CLUSTER", "NODES").Text()
			return strings.Contains(nodes, ids[i])
		})
		require.NoError(t, rc.Do(ctx, "CLUSTER", "REPLICATE", ids[i]).Err())
	}
	for _, sh := range shards {
		mc := sh.master.client()
		poll("a replica did not come online", func() bool {
			info, _ := mc.Info(ctx, "replication").Result()
			return onlineReplicas(info) == 1
		})
		for _, p := range []*redisProc{sh.master, sh.replica} {
			c := p.client()
			poll("the cluster is not ok on "+p.addr, func() bool {
				info, _ := c.ClusterInfo(ctx).Result()
				return strings.Contains(info, "cluster_state:ok")
			})
		}
	}
	return shards
}

// readReplica returns a client of a cluster replica that reads its own
// copy (READONLY) instead of redirecting to the master.
func readReplica(p *redisProc) *redis.Client {
	return p.client(func(o *redis.Options) {
		o.OnConnect = func(ctx context.Context, cn *redis.Conn) error { return cn.ReadOnly(ctx).Err() }
	})
}

// On Redis Cluster, WAIT must go to the master that took the write, on the
// connection that took it: the store sends it to each master that holds
// some of a batch's keys, after its scripts.
func TestWithWaitCluster(t *testing.T) {
	shards := startCluster(t, 2)
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{shards[0].master.addr}})
	t.Cleanup(func() { _ = cc.Close() })
	s := testStore(t, cc, WithWait(1, 2*time.Second)) // met by a replica on a loaded machine, missed by a frozen one
	ctx := t.Context()
	require.NoError(t, s.Preflight(ctx))
	replicas := []*redis.Client{readReplica(shards[0].replica), readReplica(shards[1].replica)}
	shardOf := func(key string) int {
		_, slot := s.name("", key)
		return int(slot) * len(shards) / slots
	}

	// Keys on both masters, in many slots.
	var reqs []revguard.Request
	var commits []revguard.Commit
	on := [2]int{}
	for i := range 20 {
		key := fmt.Sprintf("k%d", i)
		on[shardOf(key)]++
		reqs = append(reqs, req(key, revguard.Revision(i+1), tok(1)))
		commits = append(commits, revguard.Commit{Key: key, Token: tok(1)})
	}
	require.NotZero(t, on[0])
	require.NotZero(t, on[1])
	_, err := s.ClaimBatch(ctx, reqs)
	require.NoError(t, err)
	errs, err := s.CommitBatch(ctx, commits)
	require.NoError(t, err)
	for i, r := range reqs {
		require.NoError(t, errs[i])
		assert.Equal(t, r.Rev.String(), replicated(t, replicas[shardOf(r.Key)], s, "", r.Key), r.Key)
	}
	_, err = s.Claim(ctx, adv("single", 3, tok(2)))
	require.NoError(t, err)
	assert.Equal(t, "3", replicated(t, replicas[shardOf("single")], s, "", "single"))

	// One shard's replica frozen: its writes fail, the other's do not.
	shards[1].replica.freeze()
	defer shards[1].replica.thaw()
	var frozenKey, liveKey string
	for i := 0; frozenKey == "" || liveKey == ""; i++ {
		key := fmt.Sprintf("x%d", i)
		if shardOf(key) == 1 {
			frozenKey = key
		} else {
			liveKey = key
		}
	}
	_, err = s.Claim(ctx, adv(liveKey, 1, tok(3)))
	require.NoError(t, err)
	_, err = s.Claim(ctx, adv(frozenKey, 1, tok(3)))
	require.ErrorIs(t, err, ErrNotReplicated)
	assert.Contains(t, err.Error(), shards[1].master.addr, "the error names the master")
	_, err = s.ClaimBatch(ctx, []revguard.Request{adv(liveKey, 2, tok(4)), adv(frozenKey, 2, tok(4))})
	require.ErrorIs(t, err, ErrNotReplicated)
	// A redelivery on the frozen shard is not dropped before its replica
	// has what it rests on; one on the live shard is.
	res, err := s.Claim(ctx, req(liveKey, 2, tok(5)))
	require.NoError(t, err)
	assert.Equal(t, revguard.Dup, res.Verdict)
	_, err = s.Claim(ctx, req(frozenKey, 2, tok(5)))
	require.ErrorIs(t, err, ErrNotReplicated)
}
