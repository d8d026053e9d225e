package main

import (
	"bytes"
	"context"
	"crypto"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	fnote "github.com/transparency-dev/formats/note"
	xnote "golang.org/x/mod/sumdb/note"
	"gopkg.in/yaml.v3"

	"github.com/signet-dev/signet/client"
	"github.com/signet-dev/signet/client/monitor"
	"github.com/signet-dev/signet/log/note"
)

func newMonitorCommand() *cobra.Command {
	var watchPath, statePath, reportPath, webhook, metricsListen, logName string
	var interval time.Duration
	var saveEvery uint64
	var once, fromNow bool
	var witnessKeys []string
	var witnessQuorum int
	cmd := &cobra.Command{
		Use:   "monitor --watch watch.yaml",
		Short: "Follow the log: check each checkpoint and entry, report entries signed by watched identities",
		Long: `monitor reads the instance's transparency log from where it last stopped (its
state file): it verifies the new checkpoint with the pinned log key, proves it
consistent with the last one seen, checks every new entry against the tree
the checkpoint commits to (read as tlog-tiles), and prints one JSON line for each
entry whose signer matches the watch list:

  emails: [alice@example.com]             # certificate email SANs
  san_regexps: ['^https://github.com/acme/']
  oidc_issuers: [https://token.actions.githubusercontent.com]
  source_repositories: [https://github.com/acme/app]
  key_sha256: [<64 hex digits>]           # PKIX public key fingerprints

A log that shrank, changed key, rewrote its history or served an entry that
is not its tree's leaf prints an alert line and exits 3; a server that cannot
be reached or answers an error exits 1 (with --interval: tried again at the
next pass). An entry the monitor cannot read is reported as "unreadable".
Without --interval it makes one pass (--once, for cron or CI); with it, it
keeps following until interrupted. After a key rotation the frozen tree's
remaining entries are reported before the new tree's. The server must serve
its log as tlog-tiles (Signet does); an entry too long for a bundle is read
through the API and checked against the tiles' leaf hash.`,
		Example: `  signet monitor --watch watch.yaml --once
  signet monitor --watch watch.yaml --interval 1m --report matches.jsonl
  signet monitor --watch watch.yaml --from-now   # start at the current size
  signet monitor --watch watch.yaml --log rekor-v2 --witness-key 'witness.example+5a3e5ba2+BH0M...'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if once && interval > 0 {
				return errors.New("--once and --interval exclude each other")
			}
			raw, err := os.ReadFile(watchPath)
			if err != nil {
				return fmt.Errorf("--watch: %w", err)
			}
			var w monitor.Watch
			dec := yaml.NewDecoder(strings.NewReader(string(raw)))
			dec.KnownFields(true)
			if err := dec.Decode(&w); err != nil {
				return fmt.Errorf("--watch %s: %w", watchPath, err)
			}
			matcher, err := w.Compile()
			if err != nil {
				return fmt.Errorf("--watch %s: %w", watchPath, err)
			}
			lc, err := logClient(cmd)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if reportPath != "" {
				f, err := os.OpenFile(reportPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
				if err != nil {
					return fmt.Errorf("--report: %w", err)
				}
				defer f.Close()
				out = io.MultiWriter(out, f)
			}
			server, _ := cmd.Flags().GetString("server")
			server = strings.TrimRight(server, "/")
			// Every request bounded: a stalled server must not hang a cron run.
			if saveEvery == 0 {
				return errors.New("--save-every must be at least 1")
			}
			if metricsListen != "" && interval <= 0 {
				return errors.New("--metrics-listen needs --interval: a single pass has nothing to scrape")
			}
			// One or more logs, followed one after the other in each pass,
			// each under its own names in the one state file.
			names := strings.Split(logName, ",")
			if key, _ := cmd.Flags().GetString("log-key"); key != "" && len(names) > 1 {
				return errors.New("--log-key pins one log's key: follow one log with it, or let the pinned trusted root give each log's keys")
			}
			witnesses, err := witnessVerifiers(witnessKeys, witnessQuorum, names)
			if err != nil {
				return err
			}
			encoder := json.NewEncoder(out)
			var monitors []*logMonitor
			for _, name := range names {
				var tileKeys []crypto.PublicKey
				switch name = strings.TrimSpace(name); name {
				case "rekor":
				case "ct", "rekor-v2":
					if tileKeys, err = tileLogKeys(cmd, name); err != nil {
						return err
					}
				default:
					return fmt.Errorf("--log %q: want rekor, rekor-v2 or ct (or several, comma-separated)", name)
				}
				var ws []xnote.Verifier
				if name == "rekor-v2" || name == "ct" {
					ws = witnesses
				}
				monitors = append(monitors, &logMonitor{log: name, tileKeys: tileKeys, witnesses: ws, witnessQuorum: witnessQuorum, lc: lc, server: server, http: &http.Client{Timeout: time.Minute}, statePath: statePath, matcher: matcher,
					out: encoder, webhook: webhook, fromNow: fromNow, cmd: cmd, saveEvery: saveEvery})
			}
			m := monitors[0]
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if metricsListen != "" {
				reg := prometheus.NewRegistry()
				metrics := newMonitorMetrics(reg)
				for _, lm := range monitors {
					lm.metrics = metrics
				}
				ln, err := net.Listen("tcp", metricsListen)
				if err != nil {
					return fmt.Errorf("--metrics-listen: %w", err)
				}
				srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 10 * time.Second}
				go srv.Serve(ln) //nolint:errcheck // closed below
				defer srv.Close()
				fmt.Fprintf(cmd.ErrOrStderr(), "monitor: metrics at http://%s/metrics\n", ln.Addr())
			}
			for {
				var err error
				for _, lm := range monitors {
					if err = lm.pass(ctx); err != nil {
						if len(monitors) > 1 {
							err = fmt.Errorf("log %s: %w", lm.log, err)
						}
						break
					}
				}
				m.metrics.passed(err)
				var ve *verifyError
				switch {
				case errors.As(err, &ve):
					alert := "log_not_consistent"
					if errors.Is(err, errNotWitnessed) {
						alert = "checkpoint_not_witnessed"
					}
					if rerr := m.report(ctx, "alert", map[string]string{"alert": alert, "server": server, "error": err.Error()}); rerr != nil {
						fmt.Fprintf(cmd.ErrOrStderr(), "monitor: reporting the alert: %v\n", rerr)
					}
					return err
				case err != nil && interval <= 0:
					return err
				case err != nil:
					// Following: the server may be back at the next pass.
					fmt.Fprintf(cmd.ErrOrStderr(), "monitor: %v (trying again in %s)\n", err, interval)
				case interval <= 0:
					return nil
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(interval):
				}
			}
		},
	}
	cmd.Flags().StringVar(&watchPath, "watch", "", "YAML file of the identities and keys to report (required)")
	cmd.Flags().StringVar(&statePath, "state", defaultMonitorStatePath(), "where the monitor keeps the last checkpoint it verified")
	cmd.Flags().StringVar(&reportPath, "report", "", "also append the JSON lines to this file")
	cmd.Flags().DurationVar(&interval, "interval", 0, "keep following, one pass per interval (default: one pass)")
	cmd.Flags().BoolVar(&once, "once", false, "one pass, then exit (the default without --interval)")
	cmd.Flags().StringVar(&webhook, "webhook", "", "also POST each JSON line (matches, unreadable entries, alerts) to this URL; a pass whose POSTs fail is made again from its last saved progress")
	cmd.Flags().StringVar(&metricsListen, "metrics-listen", "", "with --interval: serve Prometheus metrics (signet_monitor_*) on this host:port")
	cmd.Flags().BoolVar(&fromNow, "from-now", false, "on the first run, start at the log's current size instead of its first entry")
	cmd.Flags().StringVar(&logName, "log", "rekor", "the logs to follow, comma-separated: rekor (the transparency log), rekor-v2 (its Rekor v2 log, log.v2.enabled), ct (the CT log of the CA's certificates)")
	cmd.Flags().String("log-key", "", "PEM public key of the log to pin (default: the key signet init pinned for this server, else, for --log rekor only, fetched from the server and recorded in the state)")
	cmd.Flags().StringArrayVar(&witnessKeys, "witness-key", nil, "with --log rekor-v2 and/or ct (not rekor): a witness's verifier key (<name>+<hash>+<base64>), repeatable; every checkpoint of those logs must carry cosignatures by --witness-quorum of them, else the pass alerts (logs with other witnesses: one run each)")
	cmd.Flags().IntVar(&witnessQuorum, "witness-quorum", 0, "how many of the --witness-key witnesses must have cosigned (default: all of them)")
	cmd.Flags().Uint64Var(&saveEvery, "save-every", 65536, "during a catch-up, record progress in the state file every this many entries")
	cmd.MarkFlagRequired("watch") //nolint:errcheck
	return cmd
}

// ctLogKeys are the CT log's keys: --log-key, else those of the trusted
// root signet init pinned.
func tileLogKeys(cmd *cobra.Command, log string) ([]crypto.PublicKey, error) {
	what := map[string]string{"ct": "the CT log", "rekor-v2": "the Rekor v2 log"}[log]
	if path, _ := cmd.Flags().GetString("log-key"); path != "" {
		pub, err := readPublicKey(path)
		return []crypto.PublicKey{pub}, err
	}
	tr, err := pinnedForCommand(cmd)
	if err != nil {
		return nil, fmt.Errorf("following %s needs its key: pin the instance with signet init, or give --log-key: %w", what, err)
	}
	var keys []crypto.PublicKey
	if log == "ct" {
		for _, l := range tr.CTLogs() {
			keys = append(keys, l.PublicKey)
		}
	} else {
		// Each tree of the v2 log is listed with its tiles as baseUrl.
		for _, l := range tr.RekorLogs() {
			if strings.Contains(l.BaseURL, "/tiles/rekor-v2/") {
				keys = append(keys, l.PublicKey)
			}
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("the pinned trusted root lists no key of %s", what)
	}
	return keys, nil
}

func defaultMonitorStatePath() string {
	return filepath.Join(filepath.Dir(defaultStatePath()), "monitor-state.json")
}

// logMonitor is one instance's log followed from a state file.
type logMonitor struct {
	// log is the log followed: "rekor", "rekor-v2" or "ct".
	log      string
	tileKeys []crypto.PublicKey // the keys of a log read only as tiles (ct, rekor-v2)
	// witnesses must have cosigned each checkpoint, witnessQuorum of them
	// (rekor-v2 and ct with --witness-key).
	witnesses     []xnote.Verifier
	witnessQuorum int
	lc            *client.Log
	http          *http.Client
	server        string
	statePath     string
	matcher       monitor.Matcher
	out           *json.Encoder
	webhook       string
	metrics       *monitorMetrics // nil: none
	// saveEvery is how many entries a catch-up checks between saves of its
	// progress.
	saveEvery uint64
	fromNow   bool
	cmd       *cobra.Command
}

// pass verifies the log's current checkpoint against the state, reports
// the entries since, and records the checkpoint. Trees a key rotation froze
// since the last pass are finished first: their final checkpoint must
// extend what was seen of them, and their remaining entries are reported.
func (m *logMonitor) pass(ctx context.Context) error {
	if m.log != "rekor" {
		return m.passTiles(ctx)
	}
	info, cp, err := m.lc.Info(ctx)
	if err != nil {
		return notVerified(err)
	}
	// The tree ID names the state's entry; only the signed origin vouches
	// for it ("<hostname> - <treeID>").
	if !strings.HasSuffix(cp.Origin, " - "+info.TreeID) {
		return &verifyError{fmt.Errorf("the log says its tree is %s but its signed checkpoint's origin is %q", info.TreeID, cp.Origin)}
	}
	pub, err := m.lc.PublicKey(ctx)
	if err != nil {
		return notVerified(fmt.Errorf("the log key: %w", err))
	}
	state, err := readState(m.statePath)
	if err != nil {
		return err
	}
	known := false
	for name := range state.Logs {
		known = known || strings.HasPrefix(name, m.server+" ")
	}
	var offset uint64 // of each tree's first entry in the log's index space
	for _, sh := range info.InactiveShards {
		name := m.server + " " + sh.TreeID
		if prev, ok := state.Logs[name]; ok && !prev.Frozen {
			scp, spub, err := m.lc.VerifyShard(ctx, sh)
			if err != nil {
				return notVerified(fmt.Errorf("tree %s, seen before and now frozen by a key rotation: %w", sh.TreeID, err))
			}
			if err := m.follow(ctx, sh.TreeID, offset, prev, scp, keyFingerprint(spub), true, m.saver(state, name, prev.KeySHA256)); err != nil {
				return err
			}
			state.Logs[name] = stateEntry{Size: scp.Size, RootHash: hex.EncodeToString(scp.RootHash), KeySHA256: prev.KeySHA256, Seen: time.Now().UTC(), Frozen: true}
		}
		offset += uint64(sh.TreeSize)
	}
	name := m.server + " " + info.TreeID
	prev, seen := state.Logs[name]
	if !seen && m.fromNow && !known {
		prev = stateEntry{Size: cp.Size, RootHash: hex.EncodeToString(cp.RootHash), KeySHA256: keyFingerprint(pub)}
	}
	progress := m.saver(state, name, keyFingerprint(pub))
	if err := m.follow(ctx, info.TreeID, offset, prev, cp, keyFingerprint(pub), seen, progress); err != nil {
		return err
	}
	m.metrics.treeSize(cp.Size)
	return progress(cp.Size, [32]byte(cp.RootHash))
}

// readState reads the state file; none yet is an empty state.
func readState(path string) (logState, error) {
	state := logState{Logs: map[string]stateEntry{}}
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &state); err != nil {
			return state, fmt.Errorf("state file %s: %w", path, err)
		}
		if state.Logs == nil {
			state.Logs = map[string]stateEntry{}
		}
	case !errors.Is(err, fs.ErrNotExist):
		return state, fmt.Errorf("state file: %w", err)
	}
	return state, nil
}

// saver records in the state file that the tree name has been checked up
// to a size with its root.
func (m *logMonitor) saver(state logState, name, keyID string) func(uint64, [32]byte) error {
	return func(size uint64, root [32]byte) error {
		state.Logs[name] = stateEntry{Size: size, RootHash: hex.EncodeToString(root[:]), KeySHA256: keyID, Seen: time.Now().UTC()}
		return writeState(m.statePath, state)
	}
}

// passTiles follows a log read only as tiles: the CT log (its entries'
// certificates and precertificates matched) or the Rekor v2 log (its
// hashedrekord 0.0.2 entries' signers matched). Each tree's checkpoint is
// verified with one of the log's keys (pinned trusted root, or --log-key),
// its signed origin naming the tree (CT) or the instance's hostname (v2).
func (m *logMonitor) passTiles(ctx context.Context) error {
	var index struct {
		Active string   `json:"active"`
		Frozen []string `json:"frozen"`
	}
	if err := m.getJSON(ctx, m.server+"/tiles/"+m.log, &index); err != nil {
		return fmt.Errorf("the %s log's trees: %w", m.log, err)
	}
	if index.Active == "" {
		return fmt.Errorf("%s names no active %s tree", m.server, m.log)
	}
	state, err := readState(m.statePath)
	if err != nil {
		return err
	}
	known := false
	for name := range state.Logs {
		known = known || strings.HasPrefix(name, m.log+" "+m.server+" ")
	}
	// Trees a CT key rotation froze since the last pass: finished from
	// their final checkpoint (signed by a key the trusted root keeps).
	for _, tree := range index.Frozen {
		name := m.log + " " + m.server + " " + tree
		prev, ok := state.Logs[name]
		if !ok || prev.Frozen {
			continue
		}
		cp, keyID, err := m.tilesCheckpoint(ctx, tree, false)
		if err != nil {
			return err
		}
		if err := m.follow(ctx, tree, 0, prev, cp, keyID, true, m.saver(state, name, prev.KeySHA256)); err != nil {
			return err
		}
		state.Logs[name] = stateEntry{Size: cp.Size, RootHash: hex.EncodeToString(cp.RootHash), KeySHA256: prev.KeySHA256, Seen: time.Now().UTC(), Frozen: true}
	}
	cp, keyID, err := m.tilesCheckpoint(ctx, index.Active, true)
	if err != nil {
		return err
	}
	name := m.log + " " + m.server + " " + index.Active
	prev, seen := state.Logs[name]
	if !seen && m.fromNow && !known {
		prev = stateEntry{Size: cp.Size, RootHash: hex.EncodeToString(cp.RootHash), KeySHA256: keyID}
	}
	progress := m.saver(state, name, keyID)
	if err := m.follow(ctx, index.Active, 0, prev, cp, keyID, seen, progress); err != nil {
		return err
	}
	m.metrics.treeSize(cp.Size)
	return progress(cp.Size, [32]byte(cp.RootHash))
}

// tilesCheckpoint is a tree's checkpoint from its tiles, verified with one
// of the log's keys, its signed origin what the log signs as: the tree
// (CT), or the hostname clients check a v2 checkpoint against. active
// checks the witnesses' cosignatures too (--witness-key): a frozen tree's
// final checkpoint is the log's alone.
func (m *logMonitor) tilesCheckpoint(ctx context.Context, tree string, active bool) (note.Checkpoint, string, error) {
	tiles := monitor.Tiles{Base: m.server + "/tiles/" + m.log + "/" + tree, HTTP: m.http}.WithContext(ctx)
	raw, err := tiles.Checkpoint()
	if err != nil {
		return note.Checkpoint{}, "", err
	}
	origin := tree
	if m.log == "rekor-v2" {
		u, perr := url.Parse(m.server)
		if perr != nil {
			return note.Checkpoint{}, "", perr
		}
		origin = u.Hostname()
	}
	for _, pub := range m.tileKeys {
		// Open: a witnessed log's checkpoint also carries its witnesses'
		// cosignatures.
		cp, _, verr := note.Open(string(raw), "", pub)
		if verr != nil {
			err = verr
			continue
		}
		if cp.Origin != origin {
			return note.Checkpoint{}, "", &verifyError{fmt.Errorf("%s tree %s's signed checkpoint names %q, not %q", m.log, tree, cp.Origin, origin)}
		}
		if !active {
			return cp, keyFingerprint(pub), nil
		}
		if err := checkCosigned(raw, m.witnesses, m.witnessQuorum); err != nil {
			return note.Checkpoint{}, "", &verifyError{fmt.Errorf("%s tree %s's checkpoint of size %d: %w", m.log, tree, cp.Size, err)}
		}
		return cp, keyFingerprint(pub), nil
	}
	return note.Checkpoint{}, "", &verifyError{fmt.Errorf("%s tree %s's checkpoint does not verify with the log's keys: %w", m.log, tree, err)}
}

func (m *logMonitor) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := m.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &monitor.HTTPError{Path: u, Status: resp.StatusCode}
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v)
}

// follow proves tree (read as tiles) went from prev to cp, when prev was
// seen, and reports the entries in between; offset is the tree's first
// index in the log.
//
// Every SaveEvery entries of a long catch-up, save records the progress (a
// size and its root from the checked tiles), so an interrupted monitor
// resumes there instead of reading the tree again.
func (m *logMonitor) follow(ctx context.Context, treeID string, offset uint64, prev stateEntry, cp note.Checkpoint, keyID string, seen bool, save func(uint64, [32]byte) error) error {
	tiles := monitor.Tiles{Base: m.server + "/tiles/" + m.log + "/" + treeID, HTTP: m.http}.WithContext(ctx)
	if _, err := tiles.Checkpoint(); err != nil {
		if errors.Is(err, monitor.ErrNoTiles) {
			return fmt.Errorf("%s serves no tiles for tree %s: signet monitor reads a log as tlog-tiles", m.server, treeID)
		}
		return err
	}
	var cur monitor.Tree
	cur.Size = cp.Size
	copy(cur.Root[:], cp.RootHash)
	if seen {
		if prev.KeySHA256 != keyID {
			return &verifyError{fmt.Errorf("the key of tree %s changed since %s (was %s, now %s)", treeID, prev.Seen.Format(time.RFC3339), prev.KeySHA256, keyID)}
		}
		old := monitor.Tree{Size: prev.Size}
		root, err := hex.DecodeString(prev.RootHash)
		if err != nil || len(root) != len(old.Root) {
			return fmt.Errorf("state file %s: root hash %q", m.statePath, prev.RootHash)
		}
		copy(old.Root[:], root)
		if err := monitor.Consistent(tiles, old, cur); err != nil {
			return classify(err)
		}
	}
	// Entries a bundle cannot carry come from the API, checked against the
	// same authenticated leaf hashes (the Rekor log's; a CT log has none).
	var fetch func(uint64) ([]byte, error)
	parse := monitor.ParseCTLeaf
	if m.log == "rekor-v2" {
		parse = monitor.Parse
	}
	if m.log == "rekor" {
		parse = monitor.Parse
		fetch = func(index uint64) ([]byte, error) {
			e, err := m.lc.GetByIndex(ctx, int64(offset+index))
			if err != nil {
				return nil, err
			}
			return e.RawBody()
		}
	}
	start, began := prev.Size, time.Now()
	err := monitor.Entries(tiles, prev.Size, cur, fetch, func(index uint64, body []byte) error {
		m.progress(index, start, cp.Size, began)
		m.metrics.checked()
		e, err := parse(body)
		if err != nil {
			// The log accepted it; the monitor cannot read it: said, not fatal.
			if err := m.report(ctx, "unreadable", map[string]any{"log_index": offset + index, "tree_id": treeID, "unreadable": err.Error()}); err != nil {
				return err
			}
		} else if matches := m.matcher.Match(e); len(matches) > 0 {
			if err := m.report(ctx, "match", map[string]any{"log_index": offset + index, "tree_id": treeID, "tree_index": index, "kind": e.Kind, "matches": matches, "signers": e.Signers}); err != nil {
				return err
			}
		}
		if done := index + 1; done%m.saveEvery == 0 && done < cur.Size {
			root, err := monitor.Root(tiles, done, cur)
			if err != nil {
				return err
			}
			return save(done, root)
		}
		return nil
	})
	if err != nil {
		return classify(err)
	}
	return nil
}

// classify makes a failure that proves the log misbehaved a verifyError
// (alert, exit 3): a shrunk or rewritten history, an entry that is not its
// tree's leaf, a tile that does not fit the signed checkpoint. Anything
// else (the network, HTTP, the webhook, the state file, stdout) is exit 1:
// a false alert pages someone for nothing.
func classify(err error) error {
	for _, proof := range []error{monitor.ErrShrank, monitor.ErrRewritten, monitor.ErrNotLeaf, monitor.ErrTileNotVerified} {
		if errors.Is(err, proof) {
			return &verifyError{err}
		}
	}
	return err
}

// report prints one JSON line and, with --webhook, POSTs it; a POST that
// fails fails the pass, which is then made again (its state not recorded):
// the webhook gets every line at least once.
func (m *logMonitor) report(ctx context.Context, kind string, v any) error {
	if err := m.out.Encode(v); err != nil {
		return err
	}
	m.metrics.reported(kind)
	if m.webhook == "" {
		return nil
	}
	body, _ := json.Marshal(v)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.webhook, bytes.NewReader(body))
	if err != nil {
		return &webhookError{err}
	}
	req.Header.Set("Content-Type", "application/json")
	// Errors name the webhook by scheme and host only: chat webhooks carry
	// their secret in the path.
	where := m.webhook
	if u, err := url.Parse(m.webhook); err == nil {
		where = u.Scheme + "://" + u.Host
	}
	resp, err := m.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return &webhookError{fmt.Errorf("%s: %w", where, err)}
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) //nolint:errcheck
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return &webhookError{fmt.Errorf("%s answered %s", where, resp.Status)}
	}
	return nil
}

// webhookError is a line the webhook did not take: a failure to deliver,
// nothing against the log (exit 1, the pass made again).
type webhookError struct{ err error }

func (e *webhookError) Error() string { return "--webhook: " + e.err.Error() }
func (e *webhookError) Unwrap() error { return e.err }

// monitorMetrics are what --metrics-listen serves; its methods do nothing
// on a nil receiver (no --metrics-listen).
type monitorMetrics struct {
	size     prometheus.Gauge
	lastPass prometheus.Gauge
	entries  prometheus.Counter
	reports  *prometheus.CounterVec
	errors   prometheus.Counter
}

func newMonitorMetrics(reg prometheus.Registerer) *monitorMetrics {
	m := &monitorMetrics{
		size:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "signet_monitor_tree_size", Help: "Size of the active tree at the last checkpoint verified."}),
		lastPass: prometheus.NewGauge(prometheus.GaugeOpts{Name: "signet_monitor_last_pass_timestamp_seconds", Help: "When the last pass that verified everything ended (Unix time)."}),
		entries:  prometheus.NewCounter(prometheus.CounterOpts{Name: "signet_monitor_entries_checked_total", Help: "Entries checked against their tree and matched against the watch list."}),
		reports:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "signet_monitor_reports_total", Help: "JSON lines reported, by kind: match, unreadable, alert."}, []string{"kind"}),
		errors:   prometheus.NewCounter(prometheus.CounterOpts{Name: "signet_monitor_pass_errors_total", Help: "Passes that failed for a reason other than a proof: the server, the webhook, the state file (tried again at the next interval)."}),
	}
	reg.MustRegister(m.size, m.lastPass, m.entries, m.reports, m.errors)
	return m
}

func (m *monitorMetrics) treeSize(n uint64) {
	if m != nil {
		m.size.Set(float64(n))
	}
}

func (m *monitorMetrics) checked() {
	if m != nil {
		m.entries.Inc()
	}
}

func (m *monitorMetrics) reported(kind string) {
	if m != nil {
		m.reports.WithLabelValues(kind).Inc()
	}
}

func (m *monitorMetrics) passed(err error) {
	switch {
	case m == nil:
	case err == nil:
		m.lastPass.SetToCurrentTime()
	default:
		var ve *verifyError
		if !errors.As(err, &ve) && !errors.Is(err, context.Canceled) {
			m.errors.Inc()
		}
	}
}

// progress prints how far a long catch-up got, on a terminal only.
func (m *logMonitor) progress(index, start, end uint64, since time.Time) {
	if (index-start)%65536 != 0 || index == start || !progressOn(m.cmd) {
		return
	}
	rate := float64(index-start) / time.Since(since).Seconds()
	fmt.Fprintf(m.cmd.ErrOrStderr(), "monitor: entry %d of %d (%.0f entries/s)\n", index, end, rate)
}

func writeState(path string, state logState) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	data, _ := json.MarshalIndent(state, "", "  ")
	// A new file synced, then renamed over the old: a process killed at
	// any point leaves the last state or the new one, never a torn file.
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) //nolint:errcheck // gone after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// witnessVerifiers reads --witness-key and checks --witness-quorum.
func witnessVerifiers(keys []string, quorum int, logs []string) ([]xnote.Verifier, error) {
	if len(keys) == 0 {
		if quorum != 0 {
			return nil, errors.New("--witness-quorum needs --witness-key")
		}
		return nil, nil
	}
	if slices.Contains(logs, "rekor") {
		return nil, errors.New("--witness-key: the v1 log (--log rekor) is followed through its API, whose signed tree head carries no cosignatures; follow it in a run of its own")
	}
	if !slices.Contains(logs, "rekor-v2") && !slices.Contains(logs, "ct") {
		return nil, errors.New("--witness-key checks the cosignatures of the logs the monitor reads as tiles: add --log rekor-v2 or --log ct")
	}
	var out []xnote.Verifier
	seen := map[string]bool{}
	for _, k := range keys {
		v, err := fnote.NewVerifierForCosignatureV1(k)
		if err != nil {
			return nil, fmt.Errorf("--witness-key %q is not a witness verifier key (<name>+<hash>+<base64 of an Ed25519 key>): %w", k, err)
		}
		// One witness counts once, however often its key is given.
		if id := fmt.Sprintf("%s+%08x", v.Name(), v.KeyHash()); !seen[id] {
			seen[id] = true
			out = append(out, v)
		}
	}
	if quorum < 0 || quorum > len(out) {
		return nil, fmt.Errorf("--witness-quorum %d must be between 1 and the %d witnesses given with --witness-key (0: all of them)", quorum, len(out))
	}
	return out, nil
}

// errNotWitnessed is a checkpoint without the cosignatures asked for:
// alert checkpoint_not_witnessed.
var errNotWitnessed = errors.New("not cosigned by the witnesses")

// checkCosigned checks that quorum of witnesses (0: all) cosigned the
// signed note raw.
func checkCosigned(raw []byte, witnesses []xnote.Verifier, quorum int) error {
	if len(witnesses) == 0 {
		return nil
	}
	if quorum == 0 {
		quorum = len(witnesses)
	}
	var by, missing []string
	for _, v := range witnesses {
		if _, err := xnote.Open(raw, xnote.VerifierList(v)); err == nil {
			by = append(by, v.Name())
		} else {
			missing = append(missing, v.Name())
		}
	}
	if len(by) < quorum {
		return fmt.Errorf("%w: cosigned by %d of them (%s), fewer than %d; no valid cosignature by %s", errNotWitnessed, len(by), strings.Join(by, ", "), quorum, strings.Join(missing, ", "))
	}
	return nil
}
