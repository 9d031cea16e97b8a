package redisstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/revguard/revguard"

	"github.com/revguard/revguard/internal/testenv"
)

// ownServer is a redis-server this test started, for what the shared ones
// must not go through: restarts, configuration changes.
type ownServer struct {
	t    *testing.T
	bin  string
	addr string
	port int
	dir  string
	cmd  *exec.Cmd
}

func startOwnServer(t *testing.T) *ownServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testenv.Missing(t, "redis-server is not on PATH (the test starts its own server)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	s := &ownServer{t: t, bin: bin, addr: fmt.Sprintf("127.0.0.1:%d", port), port: port, dir: t.TempDir()}
	s.start()
	t.Cleanup(s.kill)
	return s
}

// start runs the server with AOF fsynced on every write, so that a kill
// loses nothing it acknowledged.
func (s *ownServer) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "yes", "--appendfsync", "always", "--dir", s.dir, "--daemonize", "no")
	require.NoError(s.t, s.cmd.Start())
	c := redis.NewClient(&redis.Options{Addr: s.addr, MaxRetries: -1})
	defer func() { _ = c.Close() }()
	deadline := time.Now().Add(5 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		require.True(s.t, time.Now().Before(deadline), "redis-server on %s did not start", s.addr)
		time.Sleep(10 * time.Millisecond)
	}
}

// kill ends the server at once, as a crash would.
func (s *ownServer) kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// TestServerRestart kills the server in the middle of a run: calls fail
// with an error while it is down, none of them passes for a drop, and the
// state is back once it restarts from its AOF.
func TestServerRestart(t *testing.T) {
	srv := startOwnServer(t)
	c := redis.NewClient(&redis.Options{Addr: srv.addr, MaxRetries: 1, DialTimeout: 200 * time.Millisecond, DialerRetries: 1,
		ReadTimeout: 500 * time.Millisecond, MinRetryBackoff: 5 * time.Millisecond, MaxRetryBackoff: 20 * time.Millisecond})
	defer func() { _ = c.Close() }()
	s := New(c)
	ctx := t.Context()

	res, err := s.Claim(ctx, req("applied", 5, tok(1)))
	require.NoError(t, err)
	require.Equal(t, revguard.Granted, res.Verdict)
	require.NoError(t, s.Commit(ctx, "", "applied", tok(1)))
	_, err = s.Claim(ctx, adv("advanced", 7, tok(2)))
	require.NoError(t, err)
	_, err = s.Claim(ctx, req("claimed", 3, tok(3)))
	require.NoError(t, err)

	g := revguard.New(s, func(rev revguard.Revision) (string, revguard.Revision, error) { return "guarded", rev, nil })
	handled := 0
	h := func(context.Context, revguard.Revision) error { handled++; return nil }
	out, err := g.Handle(ctx, 1, h)
	require.NoError(t, err)
	require.Equal(t, revguard.Applied, out)

	srv.kill()
	for _, r := range []revguard.Request{req("applied", 5, tok(9)), req("applied", 4, tok(9)), adv("advanced", 7, tok(9)), req("new", 1, tok(9))} {
		res, err := s.Claim(ctx, r)
		require.Error(t, err, "claim %s rev %d while the server is down", r.Key, r.Rev)
		require.Zero(t, res.Verdict, "no verdict without a server")
	}
	res2, err := s.ClaimBatch(ctx, []revguard.Request{req("applied", 5, tok(9)), req("new", 1, tok(9))})
	require.Error(t, err)
	require.Nil(t, res2)
	require.Error(t, s.Commit(ctx, "", "claimed", tok(3)))
	_, err = s.Peek(ctx, "", "applied")
	require.Error(t, err)
	for _, rev := range []revguard.Revision{0, 1, 2} {
		out, err := g.Handle(ctx, rev, h)
		require.Error(t, err, "Handle(rev %d) while the server is down", rev)
		require.Zero(t, out, "Handle(rev %d) while the server is down", rev)
	}
	require.Equal(t, 1, handled)

	srv.start()
	// After failed dials go-redis redials in the background, once a second.
	require.Eventually(t, func() bool { return c.Ping(ctx).Err() == nil }, 5*time.Second, 20*time.Millisecond)
	for key, want := range map[string]revguard.State{"applied": {Applied: 5, Exists: true}, "advanced": {Applied: 7, Exists: true}, "claimed": {}} {
		st, err := s.Peek(ctx, "", key)
		require.NoError(t, err)
		require.Equal(t, want, st, key)
	}
	// The claim taken before the crash survived it, lease and all.
	require.NoError(t, s.Commit(ctx, "", "claimed", tok(3)))
	st, err := s.Peek(ctx, "", "claimed")
	require.NoError(t, err)
	require.Equal(t, revguard.State{Applied: 3, Exists: true}, st)
	res, err = s.Claim(ctx, req("applied", 5, tok(10)))
	require.NoError(t, err)
	require.Equal(t, revguard.Dup, res.Verdict)
	for _, tc := range []struct {
		rev  revguard.Revision
		want revguard.Outcome
	}{{1, revguard.Duplicate}, {0, revguard.Stale}, {2, revguard.Applied}} {
		out, err := g.Handle(ctx, tc.rev, h)
		require.NoError(t, err)
		require.Equal(t, tc.want, out, "rev %d", tc.rev)
	}
	require.Equal(t, 2, handled)
}

func TestPreflight(t *testing.T) {
	t.Run("miniredis", func(t *testing.T) {
		// miniredis has no INFO memory: the answer is "cannot tell", not "safe".
		err := New(backends[0].client(t)).Preflight(t.Context())
		require.Error(t, err)
		assert.NotErrorIs(t, err, ErrUnsafeConfig)
		assert.Contains(t, err.Error(), "INFO memory")
	})
	t.Run("shared", func(t *testing.T) {
		for _, b := range backends[1:] {
			t.Run(b.name, func(t *testing.T) {
				c := b.client(t)
				err := New(c).Preflight(t.Context())
				if errors.Is(err, ErrUnsafeConfig) {
					t.Logf("the shared %s is configured unsafely: %v", b.name, err)
					return
				}
				require.NoError(t, err)
			})
		}
	})
	t.Run("policies", func(t *testing.T) {
		srv := startOwnServer(t)
		c := redis.NewClient(&redis.Options{Addr: srv.addr})
		defer func() { _ = c.Close() }()
		ctx := t.Context()
		plain, withTTL := New(c), New(c, WithTTL(time.Hour))
		for _, tc := range []struct {
			policy         string
			plain, withTTL bool // unsafe
		}{
			{"noeviction", false, false},
			{"allkeys-lru", true, true},
			{"allkeys-lfu", true, true},
			{"allkeys-random", true, true},
			{"volatile-lru", false, true},
			{"volatile-ttl", false, true},
		} {
			require.NoError(t, c.ConfigSet(ctx, "maxmemory-policy", tc.policy).Err())
			for _, s := range []struct {
				name   string
				s      *Store
				unsafe bool
			}{{"plain", plain, tc.plain}, {"WithTTL", withTTL, tc.withTTL}} {
				err := s.s.Preflight(ctx)
				if !s.unsafe {
					assert.NoError(t, err, "%s %s", tc.policy, s.name)
					continue
				}
				if assert.ErrorIs(t, err, ErrUnsafeConfig, "%s %s", tc.policy, s.name) {
					assert.Contains(t, err.Error(), tc.policy)
				}
			}
		}
	})
}

// proxy forwards TCP between go-redis and a server, and can swallow the
// next reply the server sends: the client then times out reading, and
// go-redis sends the command again on a new connection.
type proxy struct {
	ln      net.Listener
	target  string
	drop    atomic.Bool
	dropped atomic.Int32
	conns   atomic.Int32
}

func startProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { _ = ln.Close() })
	go p.serve()
	return p
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.conns.Add(1)
		go p.pipe(c)
	}
}

func (p *proxy) pipe(client net.Conn) {
	defer func() { _ = client.Close() }()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer func() { _ = server.Close() }()
	go func() {
		_, _ = io.Copy(server, client)
		_ = server.Close()
	}()
	buf := make([]byte, 64<<10)
	// Once a reply is swallowed the connection stays silent: go-redis
	// abandons it after the read timeout.
	silent := false
	for {
		n, err := server.Read(buf)
		if n > 0 && !silent && p.drop.CompareAndSwap(true, false) {
			silent = true
			p.dropped.Add(1)
		}
		if n > 0 && !silent {
			if _, err := client.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestLostReply loses the reply of a call that the server executed: go-redis
// retries it after its read timeout, and the store must answer the retry as
// it would have answered the first call.
func TestLostReply(t *testing.T) {
	c := serverClient(t)
	p := startProxy(t, c.Options().Addr)
	pc := redis.NewClient(&redis.Options{Addr: p.ln.Addr().String(), PoolSize: 1, ReadTimeout: 200 * time.Millisecond,
		MaxRetries: 3, MinRetryBackoff: time.Millisecond, MaxRetryBackoff: 5 * time.Millisecond})
	defer func() { _ = pc.Close() }()
	s := testStore(t, pc)
	ctx := t.Context()

	// Every script is loaded, so the swallowed reply is that of a script
	// that ran, not a NOSCRIPT.
	_, err := s.ClaimBatch(ctx, []revguard.Request{req("warm", 1, tok(1)), req("warm2", 1, tok(1))})
	require.NoError(t, err)
	_, err = s.CommitBatch(ctx, []revguard.Commit{{Key: "warm", Token: tok(1)}, {Key: "warm2", Token: tok(1)}})
	require.NoError(t, err)

	lose := func(what string, call func() error) {
		t.Helper()
		require.NoError(t, pc.Ping(ctx).Err())
		conns := p.conns.Load()
		p.drop.Store(true)
		require.NoError(t, call(), what)
		require.Equal(t, int32(1), p.dropped.Swap(0), "%s: one reply swallowed", what)
		require.Greater(t, p.conns.Load(), conns, "%s: go-redis retried on a new connection", what)
	}
	var res revguard.Reply
	lose("claim", func() (err error) { res, err = s.Claim(ctx, req("k", 1, tok(2))); return err })
	require.Equal(t, revguard.Granted, res.Verdict, "a retried claim is granted again")
	lose("commit", func() error { return s.Commit(ctx, "", "k", tok(2)) })
	st, err := s.Peek(ctx, "", "k")
	require.NoError(t, err)
	require.Equal(t, revguard.State{Applied: 1, Exists: true}, st)

	lose("advance", func() (err error) { res, err = s.Claim(ctx, adv("k", 2, tok(3))); return err })
	require.Equal(t, revguard.Granted, res.Verdict, "a retried advance is granted again")
	// The retry saw what the first run left.
	require.Equal(t, revguard.State{Applied: 2, Exists: true}, res.State)

	var batch []revguard.Reply
	reqs := []revguard.Request{req("k", 3, tok(4)), req("b", 1, tok(4)), adv("a", 1, tok(4))}
	lose("claim batch", func() (err error) { batch, err = s.ClaimBatch(ctx, reqs); return err })
	for i, r := range batch {
		require.Equal(t, revguard.Granted, r.Verdict, "request %d", i)
	}
	var errs []error
	lose("commit batch", func() (err error) {
		errs, err = s.CommitBatch(ctx, []revguard.Commit{{Key: "k", Token: tok(4)}, {Key: "b", Token: tok(4)}})
		return err
	})
	require.NoError(t, errors.Join(errs...))
	for key, want := range map[string]revguard.Revision{"k": 3, "b": 1, "a": 1} {
		st, err := s.Peek(ctx, "", key)
		require.NoError(t, err)
		require.Equal(t, revguard.State{Applied: want, Exists: true}, st, key)
	}
}

// countHook counts the commands a client sends, pipelined or not.
type countHook struct{ cmds, pipelines atomic.Int32 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.cmds.Add(1)
		return next(ctx, cmd)
	}
}
func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.pipelines.Add(1)
		h.cmds.Add(int32(len(cmds)))
		return next(ctx, cmds)
	}
}

// TestBatchCalls checks a batch costs one script call per slot group: one
// on a single server, one per slot on a cluster, all in one pipeline.
func TestBatchCalls(t *testing.T) {
	forBackends(t, func(t *testing.T, c redis.UniversalClient) {
		ctx := t.Context()
		s := testStore(t, c)
		reqs := make([]revguard.Request, 100)
		commits := make([]revguard.Commit, 100)
		slotsUsed := map[uint16]bool{}
		for i := range reqs {
			reqs[i] = req(fmt.Sprint("entity:", i), 1, tok(1))
			commits[i] = revguard.Commit{Key: reqs[i].Key, Token: tok(1)}
			_, slot := s.name("", reqs[i].Key)
			slotsUsed[slot] = true
		}
		_, err := s.ClaimBatch(ctx, reqs[:1])
		require.NoError(t, err)
		_, err = s.CommitBatch(ctx, commits[:1])
		require.NoError(t, err)
		loadScripts(t, c) // so that no NOSCRIPT fallback adds calls

		h := &countHook{}
		c.AddHook(h)
		res, err := s.ClaimBatch(ctx, reqs)
		require.NoError(t, err)
		for i, r := range res {
			want := revguard.Granted
			if i == 0 {
				want = revguard.Dup
			}
			require.Equal(t, want, r.Verdict, "request %d", i)
		}
		calls, pipelines := h.cmds.Swap(0), h.pipelines.Swap(0)
		errs, err := s.CommitBatch(ctx, commits)
		require.NoError(t, err)
		require.NoError(t, errors.Join(errs[1:]...))
		require.Equal(t, calls, h.cmds.Load(), "a commit batch costs what a claim batch does")
		if _, ok := c.(*redis.ClusterClient); ok {
			t.Logf("100 keys in %d slots: %d script calls in %d pipeline", len(slotsUsed), calls, pipelines)
			require.LessOrEqual(t, int(calls), len(slotsUsed))
			require.Equal(t, int32(1), pipelines)
		} else {
			require.Equal(t, int32(1), calls)
			require.Zero(t, pipelines)
		}
	})
}

func TestBatchChunks(t *testing.T) {
	c := backends[0].client(t)
	s := testStore(t, c)
	loadScripts(t, c)
	h := &countHook{}
	c.AddHook(h)
	reqs := make([]revguard.Request, 2*maxPerCall+1)
	for i := range reqs {
		reqs[i] = adv(fmt.Sprint("e", i), revguard.Revision(i), tok(1))
	}
	res, err := s.ClaimBatch(t.Context(), reqs)
	require.NoError(t, err)
	for i, r := range res {
		require.Equal(t, revguard.Granted, r.Verdict, "request %d", i)
	}
	require.Equal(t, int32(1), h.pipelines.Load())
	require.Equal(t, int32(3), h.cmds.Load())
	st, err := s.Peek(t.Context(), "", "e512")
	require.NoError(t, err)
	require.Equal(t, revguard.Revision(512), st.Applied)
}

// loadScripts loads every script on every master, and opens a connection to
// each, so that hooks count only the calls a test makes.
func loadScripts(t *testing.T, c redis.UniversalClient) {
	t.Helper()
	load := func(ctx context.Context, c *redis.Client) error {
		for _, sc := range []script{claimScript, commitScript, renewScript, releaseScript, peekScript, setScript, forgetScript} {
			if err := sc.Load(ctx, c).Err(); err != nil {
				return err
			}
		}
		return nil
	}
	switch c := c.(type) {
	case *redis.ClusterClient:
		require.NoError(t, c.ForEachMaster(t.Context(), load))
	case *redis.Client:
		require.NoError(t, load(t.Context(), c))
	}
}
