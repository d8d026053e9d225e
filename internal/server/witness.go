package server

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	fnote "github.com/transparency-dev/formats/note"

	"github.com/signet-dev/signet/internal/config"
	tlog "github.com/signet-dev/signet/log"
	"github.com/signet-dev/signet/log/note"
	"github.com/signet-dev/signet/log/tilesapi"
	"github.com/signet-dev/signet/log/witness"
)

// verifierKey is the log's key as a witness is told it (note.VerifierKey),
// logged when each log starts so that an operator can register the log
// with its witnesses before turning witnessing on.
func verifierKey(l *tlog.Log) string {
	vkey, err := note.VerifierKey(l.SignerName(), l.PublicKey())
	if err != nil {
		return "none: " + err.Error()
	}
	return vkey
}

// startWitnessing runs the witnessing rounds of log name's active tree
// when cfg (the settings at key) lists witnesses, and returns what its
// tiles then serve as the checkpoint: the newest one the quorum cosigned
// (nil: witnessing is off, the tree's own is served). The witnesses must
// be told the log's origin and verifier key, which start-up logs.
func (s *Server) startWitnessing(ctx context.Context, reg prometheus.Registerer, name, key string, l *tlog.Log, cfg config.Witness) (tilesapi.Published, error) {
	if len(cfg.Witnesses) == 0 {
		return nil, nil
	}
	vkey, err := note.VerifierKey(l.SignerName(), l.PublicKey())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	var ws []witness.Witness
	for _, e := range cfg.Witnesses {
		v, err := fnote.NewVerifierForCosignatureV1(e.Key)
		if err != nil {
			return nil, fmt.Errorf("%s key %q: %w", key, e.Key, err)
		}
		ws = append(ws, witness.Witness{URL: e.URL, Verifier: v})
	}
	if s.witnessMetrics == nil {
		s.witnessMetrics = witness.NewMetrics(reg)
	}
	c, err := witness.New(ctx, witness.Config{
		Log: name, Tree: l.Tree, Witnesses: ws, Quorum: cfg.QuorumOrDefault(),
		Timeout:  time.Duration(cfg.TimeoutSeconds) * time.Second,
		Interval: time.Duration(cfg.IntervalSeconds) * time.Second,
		Logger:   s.logger, Metrics: s.witnessMetrics,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(runCtx)
	}()
	s.stopWitnessing = append(s.stopWitnessing, func() {
		cancel()
		<-done
	})
	s.logger.Info("witnessing a log", "log", name, "origin", l.Origin(), "verifier_key", vkey, "witnesses", len(ws), "quorum", cfg.QuorumOrDefault())
	return c.Published, nil
}
