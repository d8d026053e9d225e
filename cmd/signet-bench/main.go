// Command signet-bench drives load against a Signet instance and prints one
// JSON object per scenario: throughput, latency percentiles, errors.
//
// Every request body is built before the timed phase (keys generated,
// signatures made), so the numbers measure the server, not the generator.
package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/signet-dev/signet/client"
	"github.com/signet-dev/signet/log/note"
	"github.com/signet-dev/signet/log/tlogpath"
	"github.com/signet-dev/signet/timestamp"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "signet-bench:", err)
		os.Exit(1)
	}
}

type options struct {
	target      string
	scenarios   []string
	concurrency int
	duration    time.Duration
	// appendDuration is the append scenario's timed phase, if not duration.
	appendDuration time.Duration
	rate           int
	warmup         time.Duration
	// kinds are the entry kinds append-kinds times (default entryKinds).
	kinds []string
	// spread are base URLs (replicas of one instance) the timed requests
	// go to in turn; empty, they all go to target.
	spread []string
	// killPID is a process killed with SIGKILL killAfter into each timed
	// phase (a replicas' leader: the failover gap is measured).
	killPID   int
	killAfter time.Duration
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("signet-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var scenarios string
	fs.StringVar(&o.target, "target", "http://127.0.0.1:8080", "base URL of the instance")
	fs.Func("spread", "comma-separated base URLs of replicas of the --target instance: the timed requests go to each in turn (set-up still uses --target)", func(v string) error {
		for _, u := range strings.Split(v, ",") {
			o.spread = append(o.spread, strings.TrimSuffix(u, "/"))
		}
		return nil
	})
	fs.IntVar(&o.killPID, "kill-pid", 0, "kill this process (a replicas' leader) with SIGKILL --kill-after into the timed phase, and report the failover gap: from the kill to the first success of a request sent after it")
	fs.DurationVar(&o.killAfter, "kill-after", 3*time.Second, "with --kill-pid: when to kill it")
	fs.Func("kinds", "with append-kinds: the kinds to time, comma-separated (default: "+strings.Join(entryKinds, ",")+")", func(v string) error {
		for _, k := range strings.Split(v, ",") {
			if !slices.Contains(entryKinds, k) {
				return fmt.Errorf("unknown kind %q", k)
			}
			o.kinds = append(o.kinds, k)
		}
		return nil
	})
	fs.StringVar(&scenarios, "scenarios", "ca,append,read,search", "comma-separated: ca, append (Rekor v1), append-v2 (Rekor v2, log.v2.enabled), append-kinds (appends of every entry kind, one line each), read, search, timestamp, tiles (level-0 hash tiles), bundles (entry bundles)")
	fs.IntVar(&o.concurrency, "concurrency", 64, "concurrent clients (closed loop)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "timed phase of each scenario")
	fs.DurationVar(&o.appendDuration, "append-duration", 0, "timed phase of the append scenario (default: --duration)")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "untimed warm-up before each scenario")
	fs.IntVar(&o.rate, "rate", 0, "offered requests per second (open loop); 0 runs closed loop at --concurrency")
	var fillSize uint64
	var dataDir string
	fs.Uint64Var(&fillSize, "fill", 0, "instead of the scenarios: grow the log of the stopped dev instance in --data-dir to this many entries, in-process")
	fs.StringVar(&dataDir, "data-dir", "", "with --fill: the dev instance's data directory; with --client: the running dev instance's (its trusted_root.json and signing_config.json)")
	var co clientOptions
	fs.IntVar(&co.runs, "client", 0, "instead of the scenarios: time signet's CLI against cosign's, keyless image and blob sign+verify against --target, this many runs each (median reported)")
	fs.StringVar(&co.signet, "signet", "bin/signet", "with --client: the signet binary")
	fs.StringVar(&co.cosign, "cosign", "cosign", "with --client: the cosign binary")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: signet-bench [flags]

Drives load against a running Signet and prints one JSON line per scenario.
With --fill it instead grows a stopped dev instance's log, in-process, to a
given size (for the read and search scenarios on a big log).

Example:
  signet-server dev --data-dir /tmp/bench &
  signet-bench --target http://127.0.0.1:8080 --scenarios ca,append --concurrency 64 --duration 30s
  signet-bench --client 20 --target http://127.0.0.1:8080 --data-dir /tmp/bench --cosign $(go env GOPATH)/bin/cosign
  kill %%1; signet-bench --fill 1000000 --data-dir /tmp/bench

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx := context.Background()
	if fillSize > 0 {
		if dataDir == "" {
			return errors.New("--fill needs --data-dir")
		}
		res, err := fill(ctx, dataDir, fillSize, stderr)
		if err != nil {
			return fmt.Errorf("fill: %w", err)
		}
		line, _ := json.Marshal(res)
		fmt.Fprintln(stdout, string(line))
		return nil
	}
	if co.runs > 0 {
		if dataDir == "" {
			return errors.New("--client needs --data-dir of the running dev instance")
		}
		co.target, co.dataDir = o.target, dataDir
		return clientScenarios(ctx, co, stdout, stderr)
	}
	o.scenarios = strings.Split(scenarios, ",")
	httpClient := &http.Client{Timeout: requestTimeout}
	// The timed requests go through fasthttp's client: the generator shares
	// the machine with the server, and per request it costs about half of
	// net/http's client (its connection goroutines and allocations).
	load := &fasthttp.Client{MaxConnsPerHost: 1 << 16, MaxConnWaitTimeout: requestTimeout, MaxIdleConnDuration: time.Minute}
	st := &state{opts: o, http: httpClient, load: load}
	for _, sc := range o.scenarios {
		var res *result
		var err error
		switch sc {
		case "ca":
			res, err = st.caScenario(ctx, stderr)
		case "append":
			res, err = st.appendScenario(ctx, stderr, 1)
		case "append-v2":
			res, err = st.appendScenario(ctx, stderr, 2)
		case "append-kinds":
			// One line per kind, written as each finishes.
			err = st.kindsScenario(ctx, stderr, func(r *result) {
				line, _ := json.Marshal(r)
				fmt.Fprintln(stdout, string(line))
			})
			if err != nil {
				return fmt.Errorf("scenario %s: %w", sc, err)
			}
			continue
		case "read":
			res, err = st.readScenario(ctx, stderr)
		case "search":
			res, err = st.searchScenario(ctx, stderr)
		case "timestamp":
			res, err = st.timestampScenario()
		case "tiles":
			res, err = st.tilesScenario(ctx, 0)
		case "bundles":
			res, err = st.tilesScenario(ctx, -1)
		default:
			return fmt.Errorf("unknown scenario %q (ca, append, append-v2, append-kinds, read, search, timestamp, tiles, bundles)", sc)
		}
		if err != nil {
			return fmt.Errorf("scenario %s: %w", sc, err)
		}
		line, _ := json.Marshal(res)
		fmt.Fprintln(stdout, string(line))
	}
	return nil
}

// state carries what one scenario leaves for the next (entries to read).
type state struct {
	opts     options
	http     *http.Client     // set-up and sampling
	load     *fasthttp.Client // the timed requests
	mu       sync.Mutex
	entryIDs []string
	hashes   []string
	sampled  bool
}

const requestTimeout = 30 * time.Second

type request struct {
	method string
	path   string
	body   []byte
	header map[string]string
}

type result struct {
	Scenario      string         `json:"scenario"`
	Mode          string         `json:"mode"`
	Concurrency   int            `json:"concurrency,omitempty"`
	OfferedRate   int            `json:"offered_rate_per_s,omitempty"`
	DurationS     float64        `json:"duration_s"`
	Requests      int            `json:"requests"`
	OK            int            `json:"ok"`
	ThroughputPS  float64        `json:"throughput_per_s"`
	LatencyMS     map[string]any `json:"latency_ms"`
	ErrorsByState map[string]int `json:"errors_by_status"`
	// FailoverGapS is, with --kill-pid, the seconds from the kill to the
	// first success of a request sent after it.
	FailoverGapS float64 `json:"failover_gap_s,omitempty"`
	// Targets is how many replicas the requests were spread over.
	Targets int `json:"targets,omitempty"`
	// IntegratedPS is entries integrated per second into the transparency
	// and CT logs during the timed phase; DatabaseBytes the database size
	// after it (both from the server; 0 when it does not say).
	IntegratedPS  float64 `json:"integrated_per_s"`
	DatabaseBytes int64   `json:"database_bytes,omitempty"`
	// GeneratorCPUS is the CPU time this load generator used during the
	// timed phase: on a machine it shares with the server, what it took
	// from the server.
	GeneratorCPUS float64 `json:"generator_cpu_s"`
}

// integrated is the number of entries in the transparency log's active tree
// and the CT log (what the instance serves of them).
func (s *state) integrated(ctx context.Context) int64 {
	var info struct {
		TreeSize int64 `json:"treeSize"`
	}
	var sth struct {
		TreeSize int64 `json:"tree_size"`
	}
	_ = s.getJSON(ctx, "/api/v1/log", &info)
	_ = s.getJSON(ctx, "/ct/v1/get-sth", &sth)
	return info.TreeSize + sth.TreeSize
}

// databaseBytes reads signet_database_bytes from the server's metrics.
func (s *state) databaseBytes(ctx context.Context) int64 {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.opts.target+"/metrics", nil)
	resp, err := s.http.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "signet_database_bytes "); ok {
			var f float64
			if _, err := fmt.Sscanf(v, "%g", &f); err == nil {
				return int64(f)
			}
		}
	}
	return 0
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// drive sends requests from next until the duration is over and reports.
// ok decides which statuses count as success; onOK sees successful bodies.
func (s *state) drive(ctx context.Context, name string, next func(i int) request, ok func(int) bool, onOK func(i int, etag string)) *result {
	var counter atomic.Int64
	type sample struct {
		lat    time.Duration
		status int
	}
	samplesMu := sync.Mutex{}
	var samples []sample
	// killedAt and recovered time a failover (--kill-pid), in Unix nanos.
	var killedAt, recovered atomic.Int64
	send := func(i int, timed bool) {
		r := next(i)
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		base := s.opts.target
		if n := len(s.opts.spread); n > 0 {
			base = s.opts.spread[i%n]
		}
		req.SetRequestURI(base + r.path)
		req.Header.SetMethod(r.method)
		for k, v := range r.header {
			req.Header.Set(k, v)
		}
		req.SetBodyRaw(r.body)
		start := time.Now()
		err := s.load.DoTimeout(req, resp, requestTimeout)
		status := -1
		if err == nil {
			status = resp.StatusCode()
		}
		lat := time.Since(start)
		if err == nil && ok(status) && onOK != nil {
			onOK(i, string(resp.Header.Peek("ETag")))
		}
		if k := killedAt.Load(); k != 0 && err == nil && ok(status) && start.UnixNano() > k {
			recovered.CompareAndSwap(0, time.Now().UnixNano())
		}
		if timed {
			samplesMu.Lock()
			samples = append(samples, sample{lat, status})
			samplesMu.Unlock()
		}
	}
	phase := func(d time.Duration, timed bool) time.Duration {
		deadline := time.Now().Add(d)
		start := time.Now()
		var wg sync.WaitGroup
		if s.opts.rate > 0 {
			interval := time.Second / time.Duration(s.opts.rate)
			for t := start; time.Now().Before(deadline); t = t.Add(interval) {
				time.Sleep(time.Until(t))
				wg.Add(1)
				go func(i int) { defer wg.Done(); send(i, timed) }(int(counter.Add(1) - 1))
			}
		} else {
			for w := 0; w < s.opts.concurrency; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for time.Now().Before(deadline) {
						send(int(counter.Add(1)-1), timed)
					}
				}()
			}
		}
		wg.Wait()
		return time.Since(start)
	}
	phase(s.opts.warmup, false)
	sizeBefore := s.integrated(ctx)
	if s.opts.killPID != 0 {
		kill := time.AfterFunc(s.opts.killAfter, func() {
			killedAt.Store(time.Now().UnixNano())
			syscall.Kill(s.opts.killPID, syscall.SIGKILL) //nolint:errcheck // gone already: no gap to measure
		})
		defer kill.Stop()
	}
	cpuBefore := processCPU()
	elapsed := phase(s.opts.duration, true)
	generatorCPU := processCPU() - cpuBefore
	sizeAfter := s.integrated(ctx)

	res := &result{Scenario: name, DurationS: elapsed.Seconds(), ErrorsByState: map[string]int{}, LatencyMS: map[string]any{}, Targets: len(s.opts.spread)}
	if k, r := killedAt.Load(), recovered.Load(); k != 0 && r != 0 {
		res.FailoverGapS = float64(r-k) / 1e9
	}
	if s.opts.rate > 0 {
		res.Mode, res.OfferedRate = "open", s.opts.rate
	} else {
		res.Mode, res.Concurrency = "closed", s.opts.concurrency
	}
	lats := make([]time.Duration, 0, len(samples))
	for _, sm := range samples {
		res.Requests++
		if ok(sm.status) {
			res.OK++
			lats = append(lats, sm.lat)
		} else {
			res.ErrorsByState[fmt.Sprint(sm.status)]++
		}
	}
	res.ThroughputPS = float64(res.OK) / elapsed.Seconds()
	res.IntegratedPS = float64(sizeAfter-sizeBefore) / elapsed.Seconds()
	res.DatabaseBytes = s.databaseBytes(ctx)
	res.GeneratorCPUS = generatorCPU.Seconds()
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	pct := func(p float64) float64 {
		if len(lats) == 0 {
			return 0
		}
		idx := int(p * float64(len(lats)-1))
		return float64(lats[idx].Microseconds()) / 1000
	}
	res.LatencyMS["p50"], res.LatencyMS["p90"], res.LatencyMS["p99"], res.LatencyMS["max"] = pct(0.5), pct(0.9), pct(0.99), pct(1)
	return res
}

// poolSize is how many distinct request bodies a scenario prepares: enough
// that the timed phase rarely repeats one (appends never may).
func (s *state) poolSize(perSecond int) int {
	total := s.opts.duration + s.opts.warmup
	n := int(total.Seconds()*float64(perSecond)) + 1000
	if s.opts.rate > 0 {
		n = int(total.Seconds()*float64(s.opts.rate)*1.1) + 1000
	}
	return n
}

func devToken(ctx context.Context, h *http.Client, target, email string) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target+"/dev/oidc/token?email="+email, nil)
	resp, err := h.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		IDToken string `json:"id_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.IDToken == "" {
		return "", errors.New("no dev token: is the target in dev mode?")
	}
	return out.IDToken, nil
}

func (s *state) caScenario(ctx context.Context, log io.Writer) (*result, error) {
	const email = "bench@example.com"
	token, err := devToken(ctx, s.http, s.opts.target, email)
	if err != nil {
		return nil, err
	}
	n := min(s.poolSize(6000), 50000)
	fmt.Fprintf(log, "ca: preparing %d keys and proofs of possession\n", n)
	bodies := make([][]byte, n)
	parallel(n, func(i int) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, _ := x509.MarshalPKIXPublicKey(k.Public())
		proof, _ := client.SignChallenge(k, email)
		bodies[i], _ = json.Marshal(map[string]any{"publicKeyRequest": map[string]any{
			"publicKey":         map[string]any{"algorithm": "ECDSA", "content": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))},
			"proofOfPossession": proof,
		}})
	})
	hdr := map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/json"}
	return s.drive(ctx, "ca", func(i int) request {
		return request{http.MethodPost, "/api/v2/signingCert", bodies[i%n], hdr}
	}, func(st int) bool { return st == 200 }, nil), nil
}

// appendScenario appends freshly signed hashedrekord entries through the
// Rekor v1 API, or the v2 one (version 2: 0.0.2 requests, no SET).
func (s *state) appendScenario(ctx context.Context, log io.Writer, version int) (*result, error) {
	if s.opts.appendDuration > 0 {
		saved := s.opts.duration
		s.opts.duration = s.opts.appendDuration
		defer func() { s.opts.duration = saved }()
	}
	n := s.poolSize(7000)
	name, path, sign := "append", "/api/v1/log/entries", signedEntry
	if version == 2 {
		name, path, sign = "append-v2", "/api/v2/log/entries", signedEntryV2
	}
	fmt.Fprintf(log, "%s: pre-signing %d hashedrekord entries, each with its own P-256 key\n", name, n)
	bodies := make([][]byte, n)
	hashes := make([]string, n)
	nonce := time.Now().UnixNano()
	parallel(n, func(i int) {
		bodies[i], hashes[i], _ = sign(fmt.Sprintf("signet-bench %d %d", nonce, i))
	})
	hdr := map[string]string{"Content-Type": "application/json"}
	onOK := func(i int, etag string) {
		s.mu.Lock()
		s.entryIDs = append(s.entryIDs, etag)
		s.hashes = append(s.hashes, hashes[i%n])
		s.mu.Unlock()
	}
	if version == 2 {
		onOK = nil // v2 entries are not read through the v1 API
	}
	res := s.drive(ctx, name, func(i int) request {
		if i >= n {
			i = i % n // only if the pool ran out; those become 409s
		}
		return request{http.MethodPost, path, bodies[i], hdr}
	}, func(st int) bool { return st == 201 }, onOK)
	return res, nil
}

// ensureEntries gives the read and search scenarios entries to look for:
// on a log much bigger than what this run appended, a random sample of the
// whole log (fetched by index before the timed phase), else this run's own
// entries (appending some first if there are none).
func (s *state) ensureEntries(ctx context.Context, log io.Writer) error {
	if s.sampled {
		return nil
	}
	s.sampled = true
	var info struct {
		TreeSize int64 `json:"treeSize"`
	}
	if err := s.getJSON(ctx, "/api/v1/log", &info); err != nil {
		return err
	}
	s.mu.Lock()
	have := len(s.entryIDs)
	s.mu.Unlock()
	if info.TreeSize > 10*int64(max(have, 1000)) {
		return s.sampleLog(ctx, info.TreeSize, log)
	}
	if have > 0 {
		return nil
	}
	saved := s.opts
	s.opts.duration, s.opts.appendDuration, s.opts.warmup, s.opts.rate = 3*time.Second, 0, 0, 0
	_, err := s.appendScenario(ctx, log, 1)
	s.opts = saved
	return err
}

// sampleLog replaces the entries to look for with a uniform sample of the
// log's treeSize entries: their UUIDs and artifact hashes.
func (s *state) sampleLog(ctx context.Context, treeSize int64, log io.Writer) error {
	const n = 20000
	fmt.Fprintf(log, "sampling %d random entries of the %d in the log\n", n, treeSize)
	ids, hashes := make([]string, n), make([]string, n)
	var failed atomic.Int64
	parallel(n, func(i int) {
		idx, _ := rand.Int(rand.Reader, big.NewInt(treeSize))
		var le map[string]struct {
			Body string `json:"body"`
		}
		if err := s.getJSON(ctx, "/api/v1/log/entries?logIndex="+idx.String(), &le); err != nil {
			failed.Add(1)
			return
		}
		for id, e := range le {
			ids[i] = id
			var body struct {
				Spec struct {
					Data struct {
						Hash struct{ Algorithm, Value string } `json:"hash"`
					} `json:"data"`
				} `json:"spec"`
			}
			raw, _ := base64.StdEncoding.DecodeString(e.Body)
			if json.Unmarshal(raw, &body) == nil && body.Spec.Data.Hash.Value != "" {
				hashes[i] = body.Spec.Data.Hash.Algorithm + ":" + body.Spec.Data.Hash.Value
			}
		}
	})
	if f := failed.Load(); f > 0 {
		return fmt.Errorf("sampling the log: %d of %d reads failed", f, n)
	}
	s.mu.Lock()
	s.entryIDs, s.hashes = ids, hashes
	s.mu.Unlock()
	return nil
}

func (s *state) getJSON(ctx context.Context, path string, out any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.opts.target+path, nil)
	resp, err := s.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (s *state) readScenario(ctx context.Context, log io.Writer) (*result, error) {
	if err := s.ensureEntries(ctx, log); err != nil {
		return nil, err
	}
	ids := s.entryIDs
	return s.drive(ctx, "read", func(i int) request {
		return request{http.MethodGet, "/api/v1/log/entries/" + ids[i%len(ids)], nil, nil}
	}, func(st int) bool { return st == 200 }, nil), nil
}

func (s *state) searchScenario(ctx context.Context, log io.Writer) (*result, error) {
	if err := s.ensureEntries(ctx, log); err != nil {
		return nil, err
	}
	hashes := s.hashes
	hdr := map[string]string{"Content-Type": "application/json"}
	return s.drive(ctx, "search", func(i int) request {
		return request{http.MethodPost, "/api/v1/index/retrieve", []byte(`{"hash":"` + hashes[i%len(hashes)] + `"}`), hdr}
	}, func(st int) bool { return st == 200 }, nil), nil
}

// tilesScenario reads the Rekor log as tlog-tiles, as a cache in front of
// it would on misses: full tiles of level (0: leaf hashes, -1: entry
// bundles) at random over the whole log (at least 256 entries).
func (s *state) tilesScenario(ctx context.Context, level int) (*result, error) {
	get := func(path string) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.opts.target+path, nil)
		if err != nil {
			return nil, err
		}
		resp, err := s.http.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		return io.ReadAll(resp.Body)
	}
	body, err := get("/api/v1/log")
	if err != nil {
		return nil, err
	}
	var info struct {
		TreeID string `json:"treeID"`
	}
	if err := json.Unmarshal(body, &info); err != nil {
		return nil, fmt.Errorf("the log's info: %w", err)
	}
	prefix := "/tiles/rekor/" + info.TreeID + "/"
	if body, err = get(prefix + "checkpoint"); err != nil {
		return nil, err
	}
	cp, err := note.Parse(string(body))
	if err != nil {
		return nil, fmt.Errorf("the tiles checkpoint: %w", err)
	}
	full := int64(cp.Size / 256)
	if full == 0 {
		return nil, fmt.Errorf("the log has %d entries: fewer than one full tile", cp.Size)
	}
	paths := make([]string, 4096)
	for i := range paths {
		paths[i] = prefix + tlogpath.Path(tlog.Tile{H: 8, L: level, N: mrand.Int64N(full), W: 256})
	}
	name := map[int]string{0: "tiles", -1: "bundles"}[level]
	return s.drive(ctx, name, func(i int) request {
		return request{http.MethodGet, paths[i%len(paths)], nil, nil}
	}, func(st int) bool { return st == 200 }, nil), nil
}

func (s *state) timestampScenario() (*result, error) {
	n := 20000
	bodies := make([][]byte, n)
	parallel(n, func(i int) {
		d := sha256.Sum256([]byte(fmt.Sprintf("ts %d", i)))
		bodies[i], _ = timestamp.MarshalRequest(crypto.SHA256, d[:], nil, big.NewInt(int64(i)), i%2 == 0)
	})
	hdr := map[string]string{"Content-Type": "application/timestamp-query"}
	return s.drive(context.Background(), "timestamp", func(i int) request {
		return request{http.MethodPost, "/api/v1/timestamp", bodies[i%n], hdr}
	}, func(st int) bool { return st == 200 }, nil), nil
}

// parallel runs f(0..n-1) on every core.
func parallel(n int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}
