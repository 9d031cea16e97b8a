package redisstore

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/revguard/revguard/internal/testenv"
)

// redisProc is a redis-server of the test's own, on a free port, for what
// the shared servers must not go through: being frozen, killed, given a
// replica. It is stopped by its PID when the test ends.
type redisProc struct {
	t      testing.TB
	addr   string
	port   int
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has ended
}

// startRedis starts a redis-server without persistence, with args added to
// its command line, and waits until it answers.
func startRedis(t testing.TB, args ...string) *redisProc {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testenv.Missing(t, "redis-server is not on PATH (the test starts its own servers)")
	}
	// Another process may take the free port before the server does: try
	// a few.
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		p := &redisProc{t: t, addr: fmt.Sprintf("127.0.0.1:%d", port), port: port}
		p.cmd = exec.Command(bin, append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", t.TempDir(), "--daemonize", "no"}, args...)...)
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p.exited = make(chan struct{})
		go func() {
			_ = p.cmd.Wait()
			close(p.exited)
		}()
		t.Cleanup(p.stop)
		if p.up(5 * time.Second) {
			return p
		}
		p.stop()
	}
	t.Fatalf("redis-server %s did not start", strings.Join(args, " "))
	return nil
}

// up waits until the server answers PING, for at most d.
func (p *redisProc) up(d time.Duration) bool {
	c := redis.NewClient(&redis.Options{Addr: p.addr, MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer func() { _ = c.Close() }()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		select {
		case <-p.exited:
			return false
		default:
		}
		if c.Ping(context.Background()).Err() == nil {
			return true
		}
	}
	return false
}

// client returns a client of the server with go-redis's defaults
// (ReadTimeout 5s, MaxRetries 3) and what set changes.
func (p *redisProc) client(set ...func(*redis.Options)) *redis.Client {
	o := &redis.Options{Addr: p.addr}
	for _, f := range set {
		f(o)
	}
	c := redis.NewClient(o)
	p.t.Cleanup(func() { _ = c.Close() })
	return c
}

// freeze stops the process (SIGSTOP): connections stay open, nothing
// answers, as a server stuck in a long command or a paused VM.
func (p *redisProc) freeze() { p.signal(syscall.SIGSTOP) }

// thaw lets a frozen process go on (SIGCONT).
func (p *redisProc) thaw() { p.signal(syscall.SIGCONT) }

func (p *redisProc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := syscall.Kill(p.cmd.Process.Pid, sig); err != nil {
		p.t.Fatalf("signal %s to redis-server %d: %v", sig, p.cmd.Process.Pid, err)
	}
}

// stop kills the process, frozen or not, and waits for it.
func (p *redisProc) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGCONT)
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// startReplicated starts a master and a replica of it, and waits until
// the master counts the replica online.
func startReplicated(t testing.TB) (master, replica *redisProc) {
	t.Helper()
	// Without the delay the master waits 5s for more replicas before it
	// sends the first copy.
	master = startRedis(t, "--repl-diskless-sync-delay", "0")
	replica = startRedis(t, "--replicaof", "127.0.0.1", strconv.Itoa(master.port))
	c := master.client()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := c.Info(context.Background(), "replication").Result()
		if err == nil && onlineReplicas(info) == 1 {
			return master, replica
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replica on %s did not come online: %v\n%s", replica.addr, err, info)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// caughtUp waits until every replica of master has acknowledged all that
// master has sent: after a thaw the replica reads its backlog at its own
// pace, which on a busy machine can outlast a short WAIT.
func caughtUp(t testing.TB, master *redisProc) {
	t.Helper()
	c := master.client()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := c.Info(context.Background(), "replication").Result()
		if err == nil && replicasAt(info) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replicas of %s did not catch up: %v\n%s", master.addr, err, info)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// replicasAt reports whether INFO replication shows at least one replica
// and every one at master_repl_offset.
func replicasAt(info string) bool {
	var master string
	var offsets []string
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "master_repl_offset:"); ok {
			master = v
		}
		if strings.HasPrefix(line, "slave") && strings.Contains(line, "offset=") {
			for _, f := range strings.Split(line, ",") {
				if v, ok := strings.CutPrefix(f, "offset="); ok {
					offsets = append(offsets, v)
				}
			}
		}
	}
	if master == "" || len(offsets) == 0 {
		return false
	}
	for _, o := range offsets {
		if o != master {
			return false
		}
	}
	return true
}
