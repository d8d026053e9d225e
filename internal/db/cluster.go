package db

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
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
}

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

// StartCluster initialises dataDir on first use and starts PostgreSQL on it.
// A server already running on dataDir (left by a process that was killed) is
// adopted rather than started twice.
// ClusterOptions tunes a managed cluster.
type ClusterOptions struct {
	// SharedBuffersMB sizes PostgreSQL's buffer cache. 0 means a quarter of
	// the machine's memory (PostgreSQL's own advice), between 128 MB and
	// 4 GB: a log's reads touch index pages all over its tables, and on a
	// million-entry log the 128 MB default leaves them to the kernel's page
	// cache, a system call each.
	SharedBuffersMB int
}

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
	if c.running(ctx) {
		logger.Info("adopting PostgreSQL already running on the data directory", "dir", abs)
		return c, nil
	}
	if err := c.start(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// URL is the connection string for a database in this cluster.
func (c *Cluster) URL(database string) string {
	q := url.Values{}
	q.Set("host", c.dataDir)
	q.Set("user", superuser)
	q.Set("sslmode", "disable")
	return (&url.URL{Scheme: "postgres", Path: "/" + database, RawQuery: q.Encode()}).String()
}

// Stop shuts the server down (fast mode: open transactions are rolled back,
// committed ones are already durable).
func (c *Cluster) Stop(ctx context.Context) error {
	if !c.running(ctx) {
		return nil
	}
	if out, err := c.run(ctx, "pg_ctl", "stop", "-D", c.dataDir, "-m", "fast", "-w", "-t", "60"); err != nil {
		return fmt.Errorf("stopping PostgreSQL on %s: %w: %s", c.dataDir, err, out)
	}
	return nil
}

func (c *Cluster) init(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(c.dataDir, "PG_VERSION")); err == nil {
		return nil
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
	// Only the Unix socket in the data directory: no TCP port to collide on.
	conf := "\n# managed by signet\nlisten_addresses = ''\nunix_socket_directories = '" + c.dataDir + "'\nmax_connections = 200\n"
	f, err := os.OpenFile(filepath.Join(c.dataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("configuring managed PostgreSQL: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(conf); err != nil {
		return fmt.Errorf("configuring managed PostgreSQL: %w", err)
	}
	return nil
}

// giveToPostgres hands the data directory to the postgres user and makes sure
// that user can reach it through every parent directory.
func (c *Cluster) giveToPostgres() error {
	uid, _ := strconv.Atoi(c.runAs.Uid)
	gid, _ := strconv.Atoi(c.runAs.Gid)
	if err := os.Chown(c.dataDir, uid, gid); err != nil {
		return fmt.Errorf("giving %s to the postgres user: %w", c.dataDir, err)
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
