// Package witness has a log's checkpoints cosigned by witnesses
// (c2sp.org/tlog-witness): each round it sends the tree's newest signed
// checkpoint, with a consistency proof from the size each witness last
// cosigned, to every witness at once, checks the cosignatures that come back
// (c2sp.org/tlog-cosignature) against the witnesses' keys, and publishes
// the checkpoint with them once a quorum has cosigned.
//
// A witness refuses a checkpoint that is not consistent with what it saw
// before, so a published checkpoint is one that the quorum holds the log
// to: a log that forks, or rewrites its history after a restore, stops
// publishing instead of showing two views. A witness that is down costs a
// round its timeout and nothing else: the round goes on with the others.
//
// What is published is stored (the engine's tree) before it is served, and
// only ever grows: a restart serves the last one again.
package witness

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	xnote "golang.org/x/mod/sumdb/note"

	tlog "github.com/signet-dev/signet/log"
	"github.com/signet-dev/signet/log/note"
)

// MaxResponseBytes bounds what a witness may answer to add-checkpoint: a
// few cosignature lines.
const MaxResponseBytes = 16 << 10

// Defaults of Config.
const (
	DefaultTimeout  = 5 * time.Second
	DefaultInterval = time.Second
)

// Witness is one witness the log asks to cosign.
type Witness struct {
	// URL is the witness's tlog-witness prefix: add-checkpoint is POSTed to
	// URL + "/add-checkpoint".
	URL string
	// Verifier checks its cosignatures (formats' cosignature/v1 verifier
	// made from its vkey); its name is the witness's name.
	Verifier xnote.Verifier
}

// Tree is what the witness loop needs of the log's tree (log.Tree).
type Tree interface {
	Latest(ctx context.Context) (tlog.Root, error)
	Checkpoint(root tlog.Root) (string, error)
	ConsistencyProof(ctx context.Context, from, to uint64) ([][]byte, tlog.Root, error)
	// StoreWitnessed keeps cosigned unless a larger one is kept, and says
	// whether it did.
	StoreWitnessed(ctx context.Context, size uint64, cosigned string) (bool, error)
	Witnessed(ctx context.Context) (uint64, string, error)
}

// Config configures a Cosigner.
type Config struct {
	// Log names the log in logs and metrics.
	Log  string
	Tree Tree
	// Witnesses are asked in every round, concurrently.
	Witnesses []Witness
	// Quorum is how many cosignatures a checkpoint needs to be published;
	// 0 publishes each with whatever cosignatures came in time.
	Quorum int
	// Timeout bounds one request to one witness (default 5 s).
	Timeout time.Duration
	// Interval is how often the tree is checked for a new checkpoint
	// (default 1 s).
	Interval time.Duration
	Client   *http.Client
	Logger   *slog.Logger
	Metrics  *Metrics
}

// Cosigner runs the witnessing rounds of one tree and holds what they
// published.
type Cosigner struct {
	cfg       Config
	published atomic.Pointer[published]
	// known is the size each witness last cosigned or said it has, the
	// "old" of the next request; a guess corrected by its 409 answer.
	known []uint64
	mu    sync.Mutex // one round at a time
}

type published struct {
	size     uint64
	hash     []byte
	cosigned string
}

// ErrNotPublished is returned by Published before any checkpoint reached
// the quorum.
var ErrNotPublished = errors.New("no checkpoint has been cosigned by the witness quorum yet")

// New makes a Cosigner, serving the last checkpoint stored for the tree
// until a round publishes a newer one.
func New(ctx context.Context, cfg Config) (*Cosigner, error) {
	if len(cfg.Witnesses) == 0 {
		return nil, errors.New("witnessing needs at least one witness")
	}
	if cfg.Quorum < 0 || cfg.Quorum > len(cfg.Witnesses) {
		return nil, fmt.Errorf("witness quorum %d must be between 0 and the %d witnesses", cfg.Quorum, len(cfg.Witnesses))
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	seen := map[string]bool{}
	for _, w := range cfg.Witnesses {
		id := fmt.Sprintf("%s+%08x", w.Verifier.Name(), w.Verifier.KeyHash())
		if seen[id] {
			return nil, fmt.Errorf("witness %s is listed twice: it would count twice towards the quorum", id)
		}
		seen[id] = true
	}
	if cfg.Client == nil {
		// A witness answers where it is asked: a redirect could send the
		// checkpoint elsewhere, or make the timeout cover several hosts.
		cfg.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	c := &Cosigner{cfg: cfg, known: make([]uint64, len(cfg.Witnesses))}
	size, cosigned, err := cfg.Tree.Witnessed(ctx)
	if err != nil {
		return nil, err
	}
	if cosigned != "" {
		cp, err := note.ParseSigned(cosigned)
		if err != nil || cp.Size != size {
			return nil, fmt.Errorf("log %s: the stored cosigned checkpoint does not parse as one of size %d: %v", cfg.Log, size, err)
		}
		// Served again only if today's witnesses and quorum would have
		// published it: a witness removed, or a quorum raised, must not
		// leave an old checkpoint published until the log grows.
		if n := c.cosignedBy(cosigned); n >= cfg.Quorum {
			c.published.Store(&published{size: size, hash: cp.RootHash, cosigned: cosigned})
			cfg.Metrics.publishedSize.WithLabelValues(cfg.Log).Set(float64(size))
		} else {
			cfg.Logger.InfoContext(ctx, "the stored cosigned checkpoint falls short of the configured witnesses' quorum; witnessing it again", "log", cfg.Log, "size", size, "cosigned_by", n, "quorum", cfg.Quorum)
		}
	}
	return c, nil
}

// cosignedBy counts the configured witnesses with a valid cosignature on
// the note cosigned.
func (c *Cosigner) cosignedBy(cosigned string) int {
	_, lines, _ := strings.Cut(cosigned, "\n\n")
	n := 0
	for _, w := range c.cfg.Witnesses {
		if _, err := cosignature(cosigned, []byte(lines), w.Verifier); err == nil {
			n++
		}
	}
	return n
}

// Published is the newest checkpoint the quorum cosigned, as served: the
// log's signed note followed by the cosignature lines.
func (c *Cosigner) Published(context.Context) (string, error) {
	p := c.published.Load()
	if p == nil {
		return "", ErrNotPublished
	}
	return p.cosigned, nil
}

// Run witnesses the tree every Interval until ctx is done.
func (c *Cosigner) Run(ctx context.Context) {
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		if err := c.Round(ctx); err != nil && ctx.Err() == nil {
			c.cfg.Logger.WarnContext(ctx, "witnessing the log's checkpoint", "log", c.cfg.Log, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Round asks every witness to cosign the tree's newest checkpoint, unless
// it is published already, and publishes it if the quorum cosigned.
func (c *Cosigner) Round(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	root, err := c.cfg.Tree.Latest(ctx)
	if err != nil {
		return err
	}
	if p := c.published.Load(); p != nil && p.size == root.Size && bytes.Equal(p.hash, root.Hash) {
		return nil
	}
	if p := c.published.Load(); p != nil && p.size > root.Size {
		return fmt.Errorf("the published checkpoint is of size %d, the tree's only %d", p.size, root.Size)
	}
	signed, err := c.cfg.Tree.Checkpoint(root)
	if err != nil {
		return err
	}
	// Every witness is asked at once; the checkpoint is published as soon
	// as the quorum has cosigned, so a slow witness delays nothing once
	// the others have answered, and again with the late cosignatures when
	// the round ends (each request is bounded by the timeout).
	type answer struct {
		i    int
		line string
		err  error
	}
	answers := make(chan answer, len(c.cfg.Witnesses)) // never blocks a sender
	for i := range c.cfg.Witnesses {
		go func() {
			line, err := c.ask(ctx, i, signed, root)
			answers <- answer{i, line, err}
		}()
	}
	lines := make([]string, len(c.cfg.Witnesses))
	var why []string
	n, publishedWith := 0, -1
	for range c.cfg.Witnesses {
		a := <-answers
		if a.err != nil {
			if ctx.Err() != nil {
				return ctx.Err() // shutting down
			}
			name := c.cfg.Witnesses[a.i].Verifier.Name()
			c.cfg.Logger.WarnContext(ctx, "witness did not cosign", "log", c.cfg.Log, "witness", name, "size", root.Size, "err", a.err)
			why = append(why, name+": "+a.err.Error())
			continue
		}
		lines[a.i] = a.line
		n++
		if c.cfg.Quorum > 0 && n == c.cfg.Quorum {
			if err := c.publish(ctx, root, signed, lines); err != nil {
				return err
			}
			publishedWith = n
		}
	}
	if n < c.cfg.Quorum {
		c.cfg.Metrics.quorumMissed.WithLabelValues(c.cfg.Log).Inc()
		return fmt.Errorf("checkpoint of size %d cosigned by %d of %d witnesses, fewer than the quorum of %d: not published (%s)", root.Size, n, len(lines), c.cfg.Quorum, strings.Join(why, "; "))
	}
	if n != publishedWith {
		return c.publish(ctx, root, signed, lines)
	}
	return nil
}

// publish stores and then serves signed, the checkpoint of root, with the
// cosignature lines (in the witnesses' configured order; "" for those
// that have not cosigned).
func (c *Cosigner) publish(ctx context.Context, root tlog.Root, signed string, lines []string) error {
	cosigned := signed + strings.Join(lines, "")
	stored, err := c.cfg.Tree.StoreWitnessed(ctx, root.Size, cosigned)
	if err != nil {
		return err
	}
	if !stored {
		return fmt.Errorf("a cosigned checkpoint larger than size %d is stored already: another server witnesses this tree", root.Size)
	}
	c.published.Store(&published{size: root.Size, hash: root.Hash, cosigned: cosigned})
	c.cfg.Metrics.publishedSize.WithLabelValues(c.cfg.Log).Set(float64(root.Size))
	return nil
}

// ask has witness i cosign signed, the checkpoint of root, and returns its
// verified cosignature line. A 409 answer says which size the witness
// has: the request is made once more from there.
func (c *Cosigner) ask(ctx context.Context, i int, signed string, root tlog.Root) (string, error) {
	w := c.cfg.Witnesses[i]
	name := w.Verifier.Name()
	for attempt := 0; ; attempt++ {
		old := c.known[i]
		if old > root.Size {
			c.cfg.Metrics.requests.WithLabelValues(c.cfg.Log, name, "diverged").Inc()
			return "", fmt.Errorf("the witness has cosigned size %d, more than the tree's %d: it has seen another view of this log", old, root.Size)
		}
		proof, _, err := c.cfg.Tree.ConsistencyProof(ctx, old, root.Size)
		if err != nil {
			return "", err
		}
		status, body, err := c.post(ctx, w, addCheckpointBody(old, proof, signed))
		switch {
		case err != nil:
			c.cfg.Metrics.requests.WithLabelValues(c.cfg.Log, name, "unreachable").Inc()
			return "", err
		case status == http.StatusOK:
			line, err := cosignature(signed, body, w.Verifier)
			if err != nil {
				c.cfg.Metrics.requests.WithLabelValues(c.cfg.Log, name, "bad_cosignature").Inc()
				return "", err
			}
			c.known[i] = root.Size
			c.cfg.Metrics.requests.WithLabelValues(c.cfg.Log, name, "cosigned").Inc()
			c.cfg.Metrics.cosignedSize.WithLabelValues(c.cfg.Log, name).Set(float64(root.Size))
			return line, nil
		case status == http.StatusConflict:
			c.cfg.Metrics.requests.WithLabelValues(c.cfg.Log, name, "conflict").Inc()
			has, err := strconv.ParseUint(strings.TrimSpace(string(body)), 10, 64)
			if err != nil {
				return "", fmt.Errorf("the witness answered 409 without its tree size: %q", firstLine(body))
			}
			if attempt > 0 || has == old {
				return "", fmt.Errorf("the witness answered 409 for old size %d, saying it has %d", old, has)
			}
			if has > root.Size {
				// Not kept: the size is the witness's word, unsigned, and
				// kept it would stop every later round before it asks.
				c.cfg.Metrics.requests.WithLabelValues(c.cfg.Log, name, "diverged").Inc()
				return "", fmt.Errorf("the witness says it has cosigned size %d, more than the tree's %d: it has seen another view of this log", has, root.Size)
			}
			c.known[i] = has
		default:
			c.cfg.Metrics.requests.WithLabelValues(c.cfg.Log, name, "refused").Inc()
			return "", fmt.Errorf("the witness refused the checkpoint of size %d from old size %d: %d %s", root.Size, old, status, firstLine(body))
		}
	}
}

// addCheckpointBody is a tlog-witness add-checkpoint request: the old
// size, the consistency proof a line per hash, a blank line, the note.
func addCheckpointBody(old uint64, proof [][]byte, signed string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", old)
	for _, h := range proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h) + "\n")
	}
	b.WriteString("\n" + signed)
	return b.Bytes()
}

func (c *Cosigner) post(ctx context.Context, w Witness, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	start := time.Now()
	defer func() {
		c.cfg.Metrics.seconds.WithLabelValues(c.cfg.Log, w.Verifier.Name()).Observe(time.Since(start).Seconds())
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(w.URL, "/")+"/add-checkpoint", bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("asking witness %s: %w", w.URL, err)
	}
	resp, err := c.cfg.Client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("asking witness %s: %w", w.URL, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return 0, nil, fmt.Errorf("reading witness %s's answer: %w", w.URL, err)
	}
	if len(out) > MaxResponseBytes {
		return 0, nil, fmt.Errorf("witness %s answered more than %d bytes", w.URL, MaxResponseBytes)
	}
	return resp.StatusCode, out, nil
}

// cosignature checks a witness's answer, which must be signature lines
// and nothing else, and returns the one by v, verified over signed's text
// itself: an answer that brought a blank line of its own could otherwise
// sign a longer text (the log's line included) and still verify. (A
// stored note's own lines are checked the same way: cosignedBy.)
func cosignature(signed string, answer []byte, v xnote.Verifier) (string, error) {
	text, err := note.Text(signed)
	if err != nil {
		return "", err
	}
	sigs, err := note.ParseSignatures(string(answer))
	if err != nil {
		return "", fmt.Errorf("the witness's answer %q is not signature lines: %w", firstLine(answer), err)
	}
	for _, s := range sigs {
		if s.Name != v.Name() || s.Hint != v.KeyHash() {
			continue
		}
		if !v.Verify([]byte(text), s.Sig) {
			return "", fmt.Errorf("the witness's cosignature does not verify with its key %s", v.Name())
		}
		return s.Line(), nil
	}
	return "", fmt.Errorf("the witness's answer has no cosignature by %s (hint %08x)", v.Name(), v.KeyHash())
}

func firstLine(b []byte) string {
	line, _, _ := strings.Cut(string(b), "\n")
	if len(line) > 200 {
		line = line[:200] + "..."
	}
	return line
}

// Metrics are the witnessing rounds' Prometheus metrics.
type Metrics struct {
	requests      *prometheus.CounterVec
	seconds       *prometheus.HistogramVec
	cosignedSize  *prometheus.GaugeVec
	publishedSize *prometheus.GaugeVec
	quorumMissed  *prometheus.CounterVec
}

// NewMetrics registers the metrics with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_witness_requests_total",
			Help: "add-checkpoint requests to witnesses, by result: cosigned, conflict (the witness has another size; asked again), refused (4xx/5xx), unreachable (network or timeout), bad_cosignature, diverged.",
		}, []string{"log", "witness", "result"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "signet_witness_request_seconds", Help: "Time for a witness to answer add-checkpoint.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"log", "witness"}),
		cosignedSize: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "signet_witness_cosigned_tree_size", Help: "The largest tree size each witness cosigned.",
		}, []string{"log", "witness"}),
		publishedSize: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "signet_witness_published_tree_size", Help: "The tree size of the published (quorum-cosigned) checkpoint.",
		}, []string{"log"}),
		quorumMissed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_witness_quorum_missed_total", Help: "Rounds whose checkpoint fewer witnesses than the quorum cosigned, so it was not published.",
		}, []string{"log"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.seconds, m.cosignedSize, m.publishedSize, m.quorumMissed)
	}
	return m
}
