package db

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Cluster is a private PostgreSQL server owned by this process: its data
// directory, a Unix socket inside it and no TCP listener, so it never
// collides with another PostgreSQL on the machine.
type Cluster struct {
	dataDir string
	binDir  string
	// runAs is set when we are root: PostgreSQL refuses to run as root, so
	// the cluster belongs to the "postgres" system user.
	runAs           *user.User
	logger          *slog.Logger
	sharedBuffersMB int

	// endSupervision stops the supervisor and supervised is closed once it
	// has returned. Set by StartCluster, read-only afterwards.
	endSupervision context.CancelFunc
	supervised     chan struct{}
	// restarts counts the supervisor's successful restarts.
	restarts atomic.Int64
}

// The supervisor looks at the postmaster every superviseEvery; a restart that
// fails is retried after restartBackoffMin, doubling up to restartBackoffMax
// (for a moment after a postmaster is killed, its backends still hold its
// shared memory and its PID may be an unreaped zombie; PostgreSQL refuses to
// start until both are gone).
const (
	superviseEvery    = time.Second
	restartBackoffMin = time.Second
	restartBackoffMax = 30 * time.Second
)

// superuser is the role initdb creates; trust authentication is safe because
// the socket lives in a directory only the cluster's owner (and root) can enter.
const superuser = "signet"

// maxSocketPath is the size of sun_path on Linux minus the terminating NUL.
const maxSocketPath = 107

// InstallHint names the packages that provide what StartCluster needs.
const InstallHint = "install the PostgreSQL server (Debian: apt-get install postgresql) or set DATABASE_URL"

// FindBinDir locates initdb and pg_ctl: first on PATH, then in the newest
// Debian-style /usr/lib/postgresql/<version>/bin.
func FindBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
			return dir, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(matches, func(i, j int) bool {
		return pgVersion(matches[i]) > pgVersion(matches[j])
	})
	for _, m := range matches {
		dir := filepath.Dir(m)
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
			return dir, nil
		}
	}
	return "", fmt.Errorf("PostgreSQL server binaries (initdb, pg_ctl) not found: %s", InstallHint)
}

func pgVersion(initdbPath string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdbPath))))
	return v
}

// ClusterOptions tunes a managed cluster.
type ClusterOptions struct {
	// SharedBuffersMB sizes PostgreSQL's buffer cache. 0 means a quarter of
	// the machine's memory (PostgreSQL's own advice), between 128 MB and
	// 4 GB: a log's reads touch index pages all over its tables, and on a
	// million-entry log the 128 MB default leaves them to the kernel's page
	// cache, a system call each.
	SharedBuffersMB int
}

// StartCluster initialises dataDir on first use and starts PostgreSQL on it.
// A server already running on dataDir (left by a process that was killed) is
// adopted rather than started twice. A supervisor restarts the server
// whenever it is found dead, until Stop.
func StartCluster(ctx context.Context, dataDir string, logger *slog.Logger, opts ClusterOptions) (*Cluster, error) {
	binDir, err := FindBinDir()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("resolving PostgreSQL data directory %q: %w", dataDir, err)
	}
	if n := len(filepath.Join(abs, ".s.PGSQL.5432")); n > maxSocketPath {
		return nil, fmt.Errorf("PostgreSQL data directory %q is too deep: its socket path would be %d bytes, the limit is %d; choose a shorter --data-dir", abs, n, maxSocketPath)
	}
	if opts.SharedBuffersMB <= 0 {
		opts.SharedBuffersMB = defaultSharedBuffersMB()
	}
	c := &Cluster{dataDir: abs, binDir: binDir, logger: logger, sharedBuffersMB: opts.SharedBuffersMB}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the system user \"postgres\" to own the managed cluster (Debian: apt-get install postgresql): %w", err)
		}
		c.runAs = u
	}
	if err := c.init(ctx); err != nil {
		return nil, err
	}
	switch {
	case c.running(ctx):
		logger.Info("adopting PostgreSQL already running on the data directory", "dir", abs)
	default:
		if err := c.start(ctx); err != nil {
			// Another process (the supervisor of the server that owns
			// it) may have started it at the same moment.
			if !c.running(ctx) {
				return nil, err
			}
			logger.Info("adopting PostgreSQL started by another process on the data directory", "dir", abs)
		}
	}
	// The supervisor lives until Stop, not until the caller's context
	// (often a start-up deadline) ends.
	superviseCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.endSupervision, c.supervised = cancel, make(chan struct{})
	go c.supervise(superviseCtx)
	return c, nil
}

// Restarts is how many times the supervisor has brought the server back.
func (c *Cluster) Restarts() int64 { return c.restarts.Load() }

// supervise restarts the server whenever the postmaster is gone, until ctx
// ends. Polling the postmaster's PID is the one check that works for every
// way the cluster came to run: pg_ctl daemonises the server, so this process
// is never its parent, and an adopted server was started by someone else.
func (c *Cluster) supervise(ctx context.Context) {
	defer close(c.supervised)
	tick := time.NewTicker(superviseEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !c.postmasterAlive() {
			c.restart(ctx)
		}
	}
}

// restart starts the server again, retrying with backoff until it runs or
// ctx ends.
func (c *Cluster) restart(ctx context.Context) {
	c.logger.Warn("managed PostgreSQL is not running; restarting it", "dir", c.dataDir)
	backoff := restartBackoffMin
	for attempt := 1; ; attempt++ {
		// Not cancelled by Stop: killing pg_ctl half-way could leave a
		// postmaster coming up after Stop looked for one. Stop waits for
		// the attempt (pg_ctl gives up after 60 s) and then stops it.
		err := c.start(context.WithoutCancel(ctx))
		if ctx.Err() != nil {
			return
		}
		// A failed pg_ctl with a live postmaster is a server still
		// recovering past pg_ctl's wait, or one another process started:
		// either way there is nothing left to restart.
		if err == nil || c.postmasterAlive() {
			n := c.restarts.Add(1)
			c.logger.Warn("managed PostgreSQL restarted", "dir", c.dataDir, "attempts", attempt, "restarts", n)
			return
		}
		c.logger.Warn("restarting managed PostgreSQL failed; will retry", "dir", c.dataDir, "attempt", attempt, "retry_in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, restartBackoffMax)
	}
}

// postmasterAlive reports whether the cluster's postmaster runs.
func (c *Cluster) postmasterAlive() bool {
	_, ok := RunningPostmaster(c.dataDir)
	return ok
}

// RunningPostmaster is the PID of the postmaster serving dataDir, if one
// runs: the process named in its postmaster.pid exists, is not a zombie
// (the check pg_ctl status makes, without starting a process) and works in
// dataDir, so a PID a dead postmaster left behind and another process took
// since does not count. PostgreSQL removes the file on a clean shutdown; a
// killed postmaster leaves it behind naming a dead PID.
func RunningPostmaster(dataDir string) (int, bool) {
	raw, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	first, _, _ := strings.Cut(string(raw), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return 0, false
	}
	// kill(pid, 0) fails for a PID that is gone and for another user's
	// process (EPERM), and neither is our postmaster; ProcessGone, which
	// counts another user's process as existing, then catches a zombie.
	if syscall.Kill(pid, 0) != nil || ProcessGone(pid) {
		return 0, false
	}
	// The postmaster works in its data directory. Where /proc does not show
	// a process's directory (hidepid), the PID is taken at its word.
	if cwd, err := os.Stat(fmt.Sprintf("/proc/%d/cwd", pid)); err == nil {
		if dir, err := os.Stat(dataDir); err != nil || !os.SameFile(cwd, dir) {
			return 0, false
		}
	}
	return pid, true
}

// ProcessGone says whether process pid has exited: no such process exists
// (another user's counts as existing), or it is a zombie, dead and not yet
// reaped by its parent, which still answers kill(pid, 0).
func ProcessGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return errors.Is(err, fs.ErrNotExist)
	}
	// The state follows the command name, which is in parentheses.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) || (stat[i+2] != 'Z' && stat[i+2] != 'X') {
		return false
	}
	// As PID 1 this process adopts daemonised postmasters, and nobody else
	// will reap them: while a zombie stands, its PID answers kill(pid, 0)
	// and a new postmaster refuses the lock file, restart after restart.
	// Reap it (only our own child can be reaped; elsewhere this does
	// nothing).
	if os.Getpid() == 1 {
		var ws syscall.WaitStatus
		syscall.Wait4(pid, &ws, syscall.WNOHANG, nil) //nolint:errcheck
	}
	return true
}

// URL is the connection string for a database in this cluster.
func (c *Cluster) URL(database string) string {
	q := url.Values{}
	q.Set("host", c.dataDir)
	q.Set("user", superuser)
	q.Set("sslmode", "disable")
	return (&url.URL{Scheme: "postgres", Path: "/" + database, RawQuery: q.Encode()}).String()
}

// Stop ends the supervision and shuts the server down (fast mode: open
// transactions are rolled back, committed ones are already durable).
func (c *Cluster) Stop(ctx context.Context) error {
	// First the supervisor, so it cannot start the server again behind us.
	c.endSupervision()
	<-c.supervised
	if !c.running(ctx) {
		return nil
	}
	if out, err := c.run(ctx, "pg_ctl", "stop", "-D", c.dataDir, "-m", "fast", "-w", "-t", "60"); err != nil {
		return fmt.Errorf("stopping PostgreSQL on %s: %w: %s", c.dataDir, err, out)
	}
	return nil
}

// init makes the cluster on first use and writes its settings.
func (c *Cluster) init(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(c.dataDir, "PG_VERSION")); err == nil {
		return c.configure()
	}
	if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
		return fmt.Errorf("creating PostgreSQL data directory: %w", err)
	}
	if c.runAs != nil {
		if err := c.giveToPostgres(); err != nil {
			return err
		}
	}
	c.logger.Info("initialising managed PostgreSQL", "dir", c.dataDir)
	out, err := c.run(ctx, "initdb", "-D", c.dataDir, "-U", superuser, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
	if err != nil {
		return fmt.Errorf("initdb %s: %w: %s", c.dataDir, err, out)
	}
	return c.configure()
}

// managedConf is the file of settings this package keeps for its cluster,
// included at the end of postgresql.conf (so its settings win) and
// rewritten whenever StartCluster runs: a data directory that was moved or copied
// (a backup restored elsewhere) puts its socket where the server now looks
// for it instead of under the old path.
const managedConf = "signet.conf"

func (c *Cluster) configure() error {
	// Only the Unix socket in the data directory: no TCP port to collide on.
	settings := "# Written by signet-server before every start of this cluster; edits are lost.\n" +
		"listen_addresses = ''\n" +
		"unix_socket_directories = '" + strings.ReplaceAll(c.dataDir, "'", "''") + "'\n" +
		"max_connections = 200\n"
	path := filepath.Join(c.dataDir, managedConf)
	if err := os.WriteFile(path, []byte(settings), 0o600); err != nil {
		return fmt.Errorf("configuring managed PostgreSQL: %w", err)
	}
	if c.runAs != nil {
		if err := c.chownToPostgres(path); err != nil {
			return err
		}
	}
	conf := filepath.Join(c.dataDir, "postgresql.conf")
	current, err := os.ReadFile(conf)
	if err != nil {
		return fmt.Errorf("configuring managed PostgreSQL: %w", err)
	}
	include := "include_if_exists = '" + managedConf + "'"
	if bytes.Contains(current, []byte("\n"+include+"\n")) {
		return nil
	}
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("configuring managed PostgreSQL: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString("\n# managed by signet\n" + include + "\n"); err != nil {
		return fmt.Errorf("configuring managed PostgreSQL: %w", err)
	}
	return nil
}

// chownToPostgres gives path to the postgres user (c.runAs).
func (c *Cluster) chownToPostgres(path string) error {
	uid, _ := strconv.Atoi(c.runAs.Uid)
	gid, _ := strconv.Atoi(c.runAs.Gid)
	if err := os.Chown(path, uid, gid); err != nil {
		return fmt.Errorf("giving %s to the postgres user: %w", path, err)
	}
	return nil
}

// giveToPostgres hands the data directory to the postgres user and makes sure
// that user can reach it through every parent directory.
func (c *Cluster) giveToPostgres() error {
	if err := c.chownToPostgres(c.dataDir); err != nil {
		return err
	}
	for dir := filepath.Dir(c.dataDir); dir != "/"; dir = filepath.Dir(dir) {
		st, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("checking %s: %w", dir, err)
		}
		if st.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(dir, st.Mode().Perm()|0o001); err != nil {
				return fmt.Errorf("letting the postgres user traverse %s: %w", dir, err)
			}
		}
	}
	return nil
}

func (c *Cluster) running(ctx context.Context) bool {
	_, err := c.run(ctx, "pg_ctl", "status", "-D", c.dataDir)
	return err == nil
}

func (c *Cluster) start(ctx context.Context) error {
	logFile := filepath.Join(c.dataDir, "server.log")
	// On the command line, so it also applies to clusters made before.
	out, err := c.run(ctx, "pg_ctl", "start", "-D", c.dataDir, "-l", logFile, "-w", "-t", "60",
		"-o", fmt.Sprintf("-c shared_buffers=%dMB", c.sharedBuffersMB))
	if err != nil {
		tail, _ := os.ReadFile(logFile)
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		return fmt.Errorf("starting PostgreSQL on %s: %w: %s\n%s", c.dataDir, err, out, tail)
	}
	c.logger.Info("managed PostgreSQL started", "dir", c.dataDir, "shared_buffers_mb", c.sharedBuffersMB)
	return nil
}

func (c *Cluster) run(ctx context.Context, tool string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	path := filepath.Join(c.binDir, tool)
	var cmd *exec.Cmd
	if c.runAs != nil {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", c.runAs.Username, "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	// pg_ctl daemonises the server; keep it out of our process group so a
	// Ctrl-C at the terminal reaches us first and we stop it in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Dir = "/"
	var buf bytes.Buffer
	cmd.Stdout = &buf
	cmd.Stderr = &buf
	err := cmd.Run()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return strings.TrimSpace(buf.String()), fmt.Errorf("%s exited with %d", tool, exitErr.ExitCode())
	}
	return strings.TrimSpace(buf.String()), err
}

// defaultSharedBuffersMB is a quarter of the machine's memory, between 128
// MB and 4 GB.
func defaultSharedBuffersMB() int {
	const minMB, maxMB = 128, 4096
	raw, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return minMB
	}
	for _, line := range strings.Split(string(raw), "\n") {
		var kb int
		if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kb); err == nil {
			return min(max(kb/1024/4, minMB), maxMB)
		}
	}
	return minMB
}
