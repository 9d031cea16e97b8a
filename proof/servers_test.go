package proof

import (
	"context"
	"database/sql"
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
	defer func() { _ = l.Close() }()
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
// persistence and extra arguments, and kills it when t ends. It skips t when redis-server is
// not installed, unless servers are required.
func startRedis(t testing.TB, persistence string, extra ...string) *redisServer {
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
	r.args = append(r.args, extra...)
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
	defer func() { _ = c.Close() }()
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

// myServer is a MariaDB of the test's own, durable as a production server
// is configured (innodb_flush_log_at_trx_commit=1: the redo log is on disk
// before a commit's reply), which it may kill with SIGKILL and start again:
// InnoDB then recovers from its redo log. The shared MariaDB flushes once a
// second, and is never restarted.
type myServer struct {
	bin  string
	port int
	dir  string
	args []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has been waited for
}

// startMariaDB installs a MariaDB data directory in a temporary directory
// (owned by the user mysql when run as root, as mariadbd refuses to run as
// root) and starts mariadbd on a free port of 127.0.0.1, with a database
// proof and a user revguard. It skips t when MariaDB is not installed,
// unless servers are required.
func startMariaDB(t testing.TB) *myServer {
	t.Helper()
	find := func(name string) string {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		if p := filepath.Join("/usr/sbin", name); fileExists(p) {
			return p // mariadbd lives in sbin, which a user's PATH may lack
		}
		testenv.Missing(t, name+" is not installed (the MariaDB restart needs a server of its own)")
		return ""
	}
	bin, install := find("mariadbd"), find("mariadb-install-db")
	var user []string
	root := os.Geteuid() == 0
	if root {
		if err := exec.Command("id", "-u", "mysql").Run(); err != nil {
			testenv.Missing(t, "the user mysql does not exist (mariadbd will not run as root)")
		}
		user = []string{"--user=mysql"}
	}
	// Not t.TempDir: its parent is private to root, and mariadbd runs as
	// mysql.
	dir, err := os.MkdirTemp("", "revguard-proof-my-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	// The init file runs at every start, before the server takes
	// connections: the user exists by the time a ping succeeds.
	initSQL := `CREATE DATABASE IF NOT EXISTS proof;
CREATE USER IF NOT EXISTS 'revguard'@'127.0.0.1' IDENTIFIED BY 'revguard';
GRANT ALL ON proof.* TO 'revguard'@'127.0.0.1';
`
	if err := os.WriteFile(filepath.Join(dir, "init.sql"), []byte(initSQL), 0o644); err != nil {
		t.Fatal(err)
	}
	if root {
		if out, err := exec.Command("chown", "-R", "mysql", dir).CombinedOutput(); err != nil {
			t.Fatalf("chown %s: %v: %s", dir, err, out)
		}
	}
	data := filepath.Join(dir, "data")
	argv := append([]string{"--no-defaults"}, user...)
	argv = append(argv, "--datadir="+data, "--skip-test-db")
	if out, err := exec.Command(install, argv...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", install, strings.Join(argv, " "), err, out)
	}
	m := &myServer{bin: bin, port: freePort(t), dir: dir}
	// --no-defaults first: nothing from /etc/mysql (the system's socket,
	// its port) applies to this server.
	m.args = append(append([]string{"--no-defaults"}, user...),
		"--datadir="+data, "--port="+strconv.Itoa(m.port), "--bind-address=127.0.0.1",
		"--socket="+filepath.Join(dir, "sock"), "--pid-file="+filepath.Join(dir, "pid"),
		"--log-error="+filepath.Join(dir, "error.log"), "--init-file="+filepath.Join(dir, "init.sql"),
		"--innodb-flush-log-at-trx-commit=1", "--innodb-buffer-pool-size=64M", "--max-connections=300")
	t.Cleanup(m.kill)
	if err := m.start(); err != nil {
		t.Fatal(err)
	}
	return m
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func (m *myServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", m.port) }

// dsn returns the DSN of database proof on the server, or through a proxy
// in front of it.
func (m *myServer) dsn(proxy string) string {
	if proxy == "" {
		proxy = m.addr()
	}
	return fmt.Sprintf("revguard:revguard@tcp(%s)/proof", proxy)
}

// start starts mariadbd and waits until it answers a ping as revguard:
// after a SIGKILL that includes InnoDB's crash recovery. It returns an
// error if mariadbd exits or does not answer within a minute (it may run on
// a goroutine of the fault schedule, which must not call t.Fatal).
func (m *myServer) start() error {
	m.mu.Lock()
	cmd := exec.Command(m.bin, m.args...)
	if err := cmd.Start(); err != nil {
		m.mu.Unlock()
		return fmt.Errorf("starting mariadbd: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	m.cmd, m.exited = cmd, exited
	m.mu.Unlock()
	db, err := sql.Open("mysql", m.dsn("")+"?timeout=200ms")
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := db.PingContext(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(m.dir, "error.log"))
			return fmt.Errorf("mariadbd on port %d exited while starting: %v\n%s", m.port, err, log)
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(m.dir, "error.log"))
			return fmt.Errorf("mariadbd on port %d did not answer in a minute: %v\n%s", m.port, err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill ends mariadbd with SIGKILL, as a crash would (no InnoDB shutdown,
// no flush of the buffer pool), and waits for it.
func (m *myServer) kill() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	<-m.exited
	m.cmd = nil
}
