package proof

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/revguard/revguard/internal/testenv"
)

// freePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// redisServer is a redis-server of the test's own, which it may kill and
// start again: the shared servers are never restarted.
type redisServer struct {
	t    testing.TB
	bin  string
	port int
	dir  string
	args []string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Persistence settings a redisServer can run with.
const (
	aofAlways   = "appendfsync always"   // every write on disk before its reply
	aofEverysec = "appendfsync everysec" // Redis's default: up to a second lost on a crash
	noPersist   = "no persistence"       // neither AOF nor RDB
)

// startRedis starts a redis-server on a free port with the given
// persistence, and kills it when t ends. It skips t when redis-server is
// not installed, unless servers are required.
func startRedis(t testing.TB, persistence string) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testenv.Missing(t, "redis-server is not installed (the restart needs one of its own)")
	}
	r := &redisServer{t: t, bin: bin, port: freePort(t), dir: t.TempDir()}
	r.args = []string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--dir", r.dir,
		"--save", "", "--daemonize", "no", "--logfile", filepath.Join(r.dir, "log")}
	switch persistence {
	case aofAlways:
		r.args = append(r.args, "--appendonly", "yes", "--appendfsync", "always")
	case aofEverysec:
		r.args = append(r.args, "--appendonly", "yes", "--appendfsync", "everysec")
	default:
		r.args = append(r.args, "--appendonly", "no")
	}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *redisServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", r.port) }

// start starts the server and waits until it answers PING (not LOADING).
func (r *redisServer) start() {
	r.mu.Lock()
	cmd := exec.Command(r.bin, r.args...)
	if err := cmd.Start(); err != nil {
		r.mu.Unlock()
		r.t.Fatalf("starting redis-server: %v", err)
	}
	r.cmd = cmd
	r.mu.Unlock()
	c := redis.NewClient(&redis.Options{Addr: r.addr(), MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(r.dir, "log"))
			r.t.Fatalf("redis-server on port %d did not come up: %v\n%s", r.port, err, log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kill ends the server with SIGKILL, as a crash would, and waits for it.
func (r *redisServer) kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// pgServer is a PostgreSQL of the test's own, run as the unprivileged user
// revguard with pg_ctl, which it may stop with -m immediate (a crash: no
// checkpoint, recovery from the WAL on start) and start again.
type pgServer struct {
	t    testing.TB
	bin  string
	port int
	dir  string
	as   []string // the command prefix that runs a program as that user
}

const pgBin = "/usr/lib/postgresql/15/bin"

// startPostgres initdbs and starts a PostgreSQL in a temporary directory.
// It skips t when PostgreSQL is not installed, or the user revguard does
// not exist, unless servers are required.
func startPostgres(t testing.TB) *pgServer {
	t.Helper()
	skip := func(why string) {
		testenv.Missing(t, why+" (the PostgreSQL restart needs it)")
	}
	if _, err := os.Stat(filepath.Join(pgBin, "initdb")); err != nil {
		skip("PostgreSQL 15 is not installed")
	}
	var as []string
	if os.Geteuid() == 0 {
		if _, err := exec.LookPath("runuser"); err != nil {
			skip("runuser is missing")
		}
		if err := exec.Command("id", "-u", "revguard").Run(); err != nil {
			skip("the user revguard does not exist")
		}
		as = []string{"runuser", "-u", "revguard", "--"}
	}
	dir, err := os.MkdirTemp("", "revguard-proof-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if len(as) > 0 {
		if out, err := exec.Command("chown", "revguard", dir).CombinedOutput(); err != nil {
			t.Fatalf("chown %s: %v: %s", dir, err, out)
		}
	}
	p := &pgServer{t: t, bin: pgBin, port: freePort(t), dir: dir, as: as}
	p.run("initdb", "-D", p.data(), "-U", "revguard", "--auth=trust", "-E", "UTF8", "--no-sync")
	p.start()
	t.Cleanup(func() { p.stop("fast") })
	p.run("createdb", "-h", "127.0.0.1", "-p", strconv.Itoa(p.port), "-U", "revguard", "proof")
	return p
}

func (p *pgServer) data() string { return filepath.Join(p.dir, "data") }

// dsn returns the server's DSN, or the DSN of a proxy in front of it.
func (p *pgServer) dsn(proxy string) string {
	if proxy == "" {
		proxy = fmt.Sprintf("127.0.0.1:%d", p.port)
	}
	return fmt.Sprintf("postgres://revguard@%s/proof?sslmode=disable&connect_timeout=2", proxy)
}

func (p *pgServer) run(prog string, args ...string) {
	argv := append(append([]string{}, p.as...), append([]string{filepath.Join(p.bin, prog)}, args...)...)
	cmd := exec.Command(argv[0], argv[1:]...)
	if out, err := cmd.CombinedOutput(); err != nil {
		p.t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
}

// start starts the server (fsync on, as a durable one runs) and waits.
func (p *pgServer) start() {
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c max_connections=100", p.port, p.dir)
	p.run("pg_ctl", "-D", p.data(), "-l", filepath.Join(p.dir, "log"), "-w", "-t", "60", "-o", opts, "start")
}

// stop stops the server: "immediate" is a crash, "fast" a clean shutdown.
func (p *pgServer) stop(mode string) {
	argv := append(append([]string{}, p.as...), filepath.Join(p.bin, "pg_ctl"), "-D", p.data(), "-m", mode, "-w", "stop")
	_ = exec.Command(argv[0], argv[1:]...).Run()
}
