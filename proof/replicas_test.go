package proof

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The failover storms run on replicated Redis deployments of their own,
// which they may fail over and kill: the shared servers are never touched.
// Both replicate asynchronously, as Redis does, with AOF (fsync every
// second) on every node, as a production deployment would run.

// failoverTimeouts are the client timeouts of a consumer that fails fast.
const failoverTimeouts = 250 * time.Millisecond

// poll calls fn every 20ms until it returns nil or d has passed, and fails t
// with fn's last error then.
func poll(t testing.TB, d time.Duration, what string, fn func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := fn(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// direct runs fn with a client of addr alone (no retries, no discovery).
func direct(ctx context.Context, addr string, fn func(c *redis.Client) error) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond, ReadTimeout: time.Second})
	defer func() { _ = c.Close() }()
	return fn(c)
}

// linkUp reports an error unless addr is a replica whose link to its master
// is up, or a master with at least one replica online.
func linkUp(ctx context.Context, addr string) error {
	return direct(ctx, addr, func(c *redis.Client) error {
		info, err := c.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if strings.Contains(info, "role:master") {
			if strings.Contains(info, "connected_slaves:0") || !strings.Contains(info, "state=online") {
				return fmt.Errorf("%s: a master without a replica online", addr)
			}
			return nil
		}
		if !strings.Contains(info, "master_link_status:up") {
			return fmt.Errorf("%s: replica link not up", addr)
		}
		return nil
	})
}

// isMaster reports an error unless addr says it is a master.
func isMaster(ctx context.Context, addr string) error {
	return direct(ctx, addr, func(c *redis.Client) error {
		info, err := c.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "role:master") {
			return fmt.Errorf("%s is not a master yet", addr)
		}
		return nil
	})
}

// sentinelGroup is a master, a replica and three Sentinels watching them.
type sentinelGroup struct {
	t         testing.TB
	name      string
	nodes     map[string]*redisServer // by address
	sentinels []string
}

func startSentinelGroup(t testing.TB) *sentinelGroup {
	t.Helper()
	g := &sentinelGroup{t: t, name: "proof", nodes: map[string]*redisServer{}}
	master := startRedis(t, aofEverysec)
	replica := startRedis(t, aofEverysec, "--replicaof", "127.0.0.1", strconv.Itoa(master.port))
	g.nodes[master.addr()], g.nodes[replica.addr()] = master, replica
	poll(t, 20*time.Second, "the replica's link", func(ctx context.Context) error { return linkUp(ctx, replica.addr()) })
	for range 3 {
		s := &redisServer{t: t, bin: master.bin, port: freePort(t), dir: t.TempDir()}
		conf := filepath.Join(s.dir, "sentinel.conf")
		body := fmt.Sprintf(`port %d
bind 127.0.0.1
dir %s
logfile %s
sentinel resolve-hostnames no
sentinel monitor %s 127.0.0.1 %d 2
sentinel down-after-milliseconds %[4]s 1000
sentinel failover-timeout %[4]s 5000
sentinel parallel-syncs %[4]s 1
`, s.port, s.dir, filepath.Join(s.dir, "log"), g.name, master.port)
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		s.args = []string{conf, "--sentinel"}
		s.start()
		t.Cleanup(s.kill)
		g.sentinels = append(g.sentinels, s.addr())
	}
	// A Sentinel fails over only once it knows the replica and enough other
	// Sentinels to elect a leader.
	for _, addr := range g.sentinels {
		poll(t, 30*time.Second, "Sentinel "+addr+" knowing the group", func(ctx context.Context) error {
			return direct(ctx, addr, func(c *redis.Client) error {
				if err := c.Do(ctx, "SENTINEL", "CKQUORUM", g.name).Err(); err != nil {
					return err
				}
				others, err := c.Do(ctx, "SENTINEL", "SENTINELS", g.name).Slice()
				if err != nil || len(others) < 2 {
					return fmt.Errorf("knows %d other Sentinels (%v)", len(others), err)
				}
				replicas, err := c.Do(ctx, "SENTINEL", "REPLICAS", g.name).Slice()
				if err != nil || len(replicas) < 1 {
					return fmt.Errorf("knows %d replicas (%v)", len(replicas), err)
				}
				return nil
			})
		})
	}
	return g
}

// client is a consumer's client: it finds the master through the Sentinels.
func (g *sentinelGroup) client() *redis.Client {
	return redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName: g.name, SentinelAddrs: g.sentinels, PoolSize: 16,
		DialTimeout: failoverTimeouts, ReadTimeout: failoverTimeouts, WriteTimeout: failoverTimeouts,
	})
}

// master returns the address the first Sentinel names as master.
func (g *sentinelGroup) master(ctx context.Context) (string, error) {
	var addr string
	err := direct(ctx, g.sentinels[0], func(c *redis.Client) error {
		hp, err := c.Do(ctx, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", g.name).StringSlice()
		if err != nil || len(hp) != 2 {
			return fmt.Errorf("no master address: %v %v", hp, err)
		}
		addr = hp[0] + ":" + hp[1]
		return nil
	})
	return addr, err
}

// ready waits until every Sentinel agrees on a master that is one and has
// its replica online: the state a failover starts from.
func (g *sentinelGroup) ready() {
	g.t.Helper()
	poll(g.t, 60*time.Second, "the Sentinel group settling", func(ctx context.Context) error {
		m, err := g.master(ctx)
		if err != nil {
			return err
		}
		for _, s := range g.sentinels[1:] {
			err := direct(ctx, s, func(c *redis.Client) error {
				hp, err := c.Do(ctx, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", g.name).StringSlice()
				if err == nil && hp[0]+":"+hp[1] != m {
					err = fmt.Errorf("Sentinel %s names %v, not %s", s, hp, m)
				}
				return err
			})
			if err != nil {
				return err
			}
		}
		if err := isMaster(ctx, m); err != nil {
			return err
		}
		return linkUp(ctx, m)
	})
}

// failover runs kind and returns when a new master was promoted. "graceful"
// is SENTINEL FAILOVER; "kill" is SIGKILL of the master, which Sentinel
// notices after down-after-milliseconds; the killed process is started
// again (from its AOF) once the replica was promoted, and Sentinel turns
// it into a replica of the new master.
func (g *sentinelGroup) failover(kind string) (promoted time.Time) {
	g.t.Helper()
	ctx := context.Background()
	old, err := g.master(ctx)
	if err != nil {
		g.t.Fatal(err)
	}
	switch kind {
	case failGraceful:
		if err := direct(ctx, g.sentinels[0], func(c *redis.Client) error {
			return c.Do(ctx, "SENTINEL", "FAILOVER", g.name).Err()
		}); err != nil {
			g.t.Fatalf("SENTINEL FAILOVER: %v", err)
		}
	case failKill:
		g.nodes[old].kill()
	}
	poll(g.t, 30*time.Second, "a new master", func(ctx context.Context) error {
		m, err := g.master(ctx)
		if err == nil && m == old {
			err = fmt.Errorf("still %s", old)
		}
		if err == nil {
			err = isMaster(ctx, m)
		}
		return err
	})
	promoted = time.Now()
	if kind == failKill {
		g.nodes[old].start()
	}
	return promoted
}

// clusterGroup is a Redis Cluster of three masters, each with a replica.
type clusterGroup struct {
	t     testing.TB
	nodes map[string]*redisServer
	addrs []string
}

func startClusterGroup(t testing.TB) *clusterGroup {
	t.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli is not installed: %v", err)
	}
	g := &clusterGroup{t: t, nodes: map[string]*redisServer{}}
	for range 6 {
		n := startRedis(t, aofEverysec, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000")
		g.nodes[n.addr()] = n
		g.addrs = append(g.addrs, n.addr())
	}
	args := append(append([]string{"--cluster", "create"}, g.addrs...), "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	return g
}

func (g *clusterGroup) client() *redis.ClusterClient {
	return redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: g.addrs, PoolSize: 16,
		DialTimeout: failoverTimeouts, ReadTimeout: failoverTimeouts, WriteTimeout: failoverTimeouts,
	})
}

// shards returns each master's address and its replica's, from CLUSTER
// NODES as addr says it.
func (g *clusterGroup) shards(ctx context.Context, addr string) (map[string]string, error) {
	var text string
	err := direct(ctx, addr, func(c *redis.Client) (err error) {
		text, err = c.ClusterNodes(ctx).Result()
		return err
	})
	if err != nil {
		return nil, err
	}
	byID := map[string]string{}
	type node struct{ addr, flags, master string }
	var nodes []node
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 8 {
			continue
		}
		a, _, _ := strings.Cut(f[1], "@")
		byID[f[0]] = a
		nodes = append(nodes, node{a, f[2], f[3]})
	}
	out := map[string]string{}
	for _, n := range nodes {
		if strings.Contains(n.flags, "fail") {
			return nil, fmt.Errorf("node %s is %s", n.addr, n.flags)
		}
		if strings.Contains(n.flags, "master") {
			if _, ok := out[n.addr]; !ok {
				out[n.addr] = ""
			}
		}
	}
	for _, n := range nodes {
		if strings.Contains(n.flags, "slave") {
			out[byID[n.master]] = n.addr
		}
	}
	return out, nil
}

// ready waits until the cluster is up, every node agrees, and each of three
// masters has a replica whose link is up.
func (g *clusterGroup) ready() map[string]string {
	g.t.Helper()
	var shards map[string]string
	poll(g.t, 60*time.Second, "the cluster settling", func(ctx context.Context) error {
		for _, a := range g.addrs {
			err := direct(ctx, a, func(c *redis.Client) error {
				info, err := c.ClusterInfo(ctx).Result()
				if err == nil && !strings.Contains(info, "cluster_state:ok") {
					err = fmt.Errorf("%s: cluster state not ok", a)
				}
				return err
			})
			if err != nil {
				return err
			}
		}
		s, err := g.shards(ctx, g.addrs[0])
		if err != nil {
			return err
		}
		if len(s) != 3 {
			return fmt.Errorf("%d masters", len(s))
		}
		for m, r := range s {
			if r == "" {
				return fmt.Errorf("master %s has no replica", m)
			}
			if err := linkUp(ctx, r); err != nil {
				return err
			}
		}
		shards = s
		return nil
	})
	return shards
}

// failover fails one shard over and returns when its replica is master.
// "graceful" is CLUSTER FAILOVER on the replica (the master pauses its
// clients until the replica has caught up, then they swap); "kill" is
// SIGKILL of the master, which the cluster notices after its node timeout;
// the killed node is started again once its replica was promoted and
// rejoins as that one's replica.
func (g *clusterGroup) failover(kind string, shards map[string]string) (promoted time.Time) {
	g.t.Helper()
	ctx := context.Background()
	var master, replica string
	for m, r := range shards {
		if master == "" || m < master {
			master, replica = m, r
		}
	}
	switch kind {
	case failGraceful:
		if err := direct(ctx, replica, func(c *redis.Client) error { return c.ClusterFailover(ctx).Err() }); err != nil {
			g.t.Fatalf("CLUSTER FAILOVER on %s: %v", replica, err)
		}
	case failKill:
		g.nodes[master].kill()
	}
	poll(g.t, 30*time.Second, "the replica's promotion", func(ctx context.Context) error { return isMaster(ctx, replica) })
	promoted = time.Now()
	if kind == failKill {
		g.nodes[master].start()
	}
	return promoted
}
