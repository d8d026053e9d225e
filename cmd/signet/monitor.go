package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/signet-dev/signet/client"
	"github.com/signet-dev/signet/client/monitor"
	"github.com/signet-dev/signet/log/note"
)

func newMonitorCommand() *cobra.Command {
	var watchPath, statePath, reportPath string
	var interval time.Duration
	var once, fromNow bool
	cmd := &cobra.Command{
		Use:   "monitor --watch watch.yaml",
		Short: "Follow the log: check each checkpoint and entry, report entries signed by watched identities",
		Long: `monitor reads the instance's transparency log from where it last stopped (its
state file): it verifies the new checkpoint with the pinned log key, proves it
consistent with the last one seen, checks every new entry against the tree
the checkpoint commits to (read as tlog-tiles, or entry by entry through the
API when the server does not serve tiles), and prints one JSON line for each
entry whose signer matches the watch list:

  emails: [alice@example.com]             # certificate email SANs
  san_regexps: ['^https://github.com/acme/']
  oidc_issuers: [https://token.actions.githubusercontent.com]
  source_repositories: [https://github.com/acme/app]
  key_sha256: [<64 hex digits>]           # PKIX public key fingerprints

A log that shrank, changed key or rewrote its history prints an alert line
and exits 3; other failures exit 1. Without --interval it makes one pass
(--once, for cron or CI); with it, it keeps following until interrupted.`,
		Example: `  signet monitor --watch watch.yaml --once
  signet monitor --watch watch.yaml --interval 1m --report matches.jsonl
  signet monitor --watch watch.yaml --from-now   # start at the current size`,
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
			m := &logMonitor{lc: lc, server: server, statePath: statePath, matcher: matcher, out: json.NewEncoder(out), fromNow: fromNow, cmd: cmd}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			for {
				if err := m.pass(ctx); err != nil {
					var ve *verifyError
					if errors.As(err, &ve) {
						m.out.Encode(map[string]string{"alert": "log_not_consistent", "server": server, "error": err.Error()}) //nolint:errcheck
					}
					return err
				}
				if interval <= 0 {
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
	cmd.Flags().BoolVar(&fromNow, "from-now", false, "on the first run, start at the log's current size instead of its first entry")
	cmd.Flags().String("log-key", "", "PEM public key of the log to pin (default: the key signet init pinned for this server, else fetched from the server and recorded in the state)")
	cmd.MarkFlagRequired("watch") //nolint:errcheck
	return cmd
}

func defaultMonitorStatePath() string {
	return filepath.Join(filepath.Dir(defaultStatePath()), "monitor-state.json")
}

// logMonitor is one instance's log followed from a state file.
type logMonitor struct {
	lc        *client.Log
	server    string
	statePath string
	matcher   monitor.Matcher
	out       *json.Encoder
	fromNow   bool
	cmd       *cobra.Command
}

// pass verifies the log's current checkpoint against the state, reports
// the entries since, and records the checkpoint.
func (m *logMonitor) pass(ctx context.Context) error {
	info, cp, err := m.lc.Info(ctx)
	if err != nil {
		return notVerified(err)
	}
	pub, err := m.lc.PublicKey(ctx)
	if err != nil {
		return notVerified(fmt.Errorf("the log key: %w", err))
	}
	keyID := keyFingerprint(pub)
	name := m.server + " " + info.TreeID
	state := logState{Logs: map[string]stateEntry{}}
	if data, err := os.ReadFile(m.statePath); err == nil {
		if err := json.Unmarshal(data, &state); err != nil {
			return fmt.Errorf("state file %s: %w", m.statePath, err)
		}
	}
	prev, seen := state.Logs[name]
	if !seen && m.fromNow {
		prev = stateEntry{Size: cp.Size, RootHash: hex.EncodeToString(cp.RootHash), KeySHA256: keyID}
	}
	tiles := monitor.Tiles{Base: m.server + "/tiles/rekor"}.WithContext(ctx)
	_, tilesErr := tiles.Checkpoint()
	if tilesErr != nil && !errors.Is(tilesErr, monitor.ErrNoTiles) {
		return fmt.Errorf("reading the log's tiles: %w", tilesErr)
	}
	if seen {
		if err := m.consistent(ctx, tiles, tilesErr == nil, prev, cp, keyID); err != nil {
			return err
		}
	}
	report := func(index uint64, body []byte) error {
		e, err := monitor.Parse(body)
		if err != nil {
			return &verifyError{fmt.Errorf("entry %d: %w", index, err)}
		}
		if matches := m.matcher.Match(e); len(matches) > 0 {
			return m.out.Encode(map[string]any{"log_index": index, "tree_id": info.TreeID, "kind": e.Kind, "matches": matches, "signers": e.Signers})
		}
		return nil
	}
	start, checked := prev.Size, time.Now()
	if tilesErr == nil {
		cur := monitor.Tree{Size: cp.Size}
		copy(cur.Root[:], cp.RootHash)
		err = monitor.Entries(tiles, prev.Size, cur, func(index uint64, body []byte) error {
			m.progress(index, start, cp.Size, checked)
			return report(index, body)
		})
	} else {
		// No tiles: each entry through the API, its inclusion proof and
		// SET checked by the client.
		for index := prev.Size; index < cp.Size && err == nil; index++ {
			var e *client.Entry
			if e, err = m.lc.GetByIndex(ctx, int64(index)); err == nil {
				m.progress(index, start, cp.Size, checked)
				var body []byte
				if body, err = e.RawBody(); err == nil {
					err = report(index, body)
				}
			}
		}
	}
	if err != nil {
		var ve *verifyError
		if errors.As(err, &ve) {
			return err
		}
		return notVerified(err)
	}
	state.Logs[name] = stateEntry{Size: cp.Size, RootHash: hex.EncodeToString(cp.RootHash), KeySHA256: keyID, Seen: time.Now().UTC()}
	return writeState(m.statePath, state)
}

// consistent proves cp extends prev: through the tiles when served, else
// with the API's consistency proof.
func (m *logMonitor) consistent(ctx context.Context, tiles monitor.Tiles, haveTiles bool, prev stateEntry, cp note.Checkpoint, keyID string) error {
	if prev.KeySHA256 != keyID {
		return &verifyError{fmt.Errorf("the log key changed since %s (was %s, now %s)", prev.Seen.Format(time.RFC3339), prev.KeySHA256, keyID)}
	}
	if !haveTiles {
		_, err := proveSince(ctx, m.lc, "", prev, cp, keyID)
		if err != nil {
			return &verifyError{err}
		}
		return nil
	}
	var old, cur monitor.Tree
	old.Size, cur.Size = prev.Size, cp.Size
	root, err := hex.DecodeString(prev.RootHash)
	if err != nil || len(root) != 32 {
		return fmt.Errorf("state file %s: root hash %q", m.statePath, prev.RootHash)
	}
	copy(old.Root[:], root)
	copy(cur.Root[:], cp.RootHash)
	if err := monitor.Consistent(tiles, old, cur); err != nil {
		if strings.Contains(err.Error(), "shrank") || strings.Contains(err.Error(), "rewritten") {
			return &verifyError{err}
		}
		return notVerified(err)
	}
	return nil
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
	// Write then rename: a monitor killed mid-write keeps its last state.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
