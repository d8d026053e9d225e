package log

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/signet-dev/signet/log/note"
	"github.com/signet-dev/signet/log/pgstore"
)

// ErrFollower is an append to a log opened by Follow: a replica that does
// not lead hands appends to the one that does.
var ErrFollower = errors.New("this replica does not lead the log: appends go to the leader")

// Follow opens the named log for reading only, as a replica that does not
// lead sees it: its trees as the leader stores them. It writes nothing and
// runs no append pipeline (Append, EnqueueIdentified and Import answer
// ErrFollower).
//
// The current tree's root is the checkpoint the leader stores with each
// batch's records (Batch.Checkpoint), so every leaf under it has its
// records (search keys, SETs), as on the leader. Latest reads it again,
// waiting for a refresh that began after it was called (reads arriving
// together share one); a read of a leaf does so only if the leaf is beyond
// the root it has (Tree.atLeast). So an entry any replica acknowledged
// before a read began is found and proven by that read, at a root that may
// be older than the leader's newest but is never older than the entry.
// Only a log with a Hook (the personality that stores those checkpoints)
// can be followed.
//
// cfg.Signer must be the current tree's key (a rotation the leader made
// since is a KeyChangedError): checkpoints of roots no longer among the
// stored ones it remembers are signed with it, as the leader would.
func Follow(ctx context.Context, store *pgstore.Store, cfg Config) (*Log, error) {
	if cfg.Hook == nil {
		return nil, fmt.Errorf("log %s: only a log whose personality stores its checkpoints (a Hook) can be followed", cfg.Name)
	}
	cfg, signer, err := withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	st, storedKey, err := store.CurrentTree(ctx, cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("log %s: %w", cfg.Name, err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(cfg.Signer.Public())
	if err != nil {
		return nil, fmt.Errorf("log %s: encoding its public key: %w", cfg.Name, err)
	}
	if !bytes.Equal(storedKey, pubDER) {
		return nil, &KeyChangedError{Log: cfg.Name, Tree: st.ID(), OldKeyID: keyID(storedKey), NewKeyID: keyID(pubDER)}
	}
	l := &Log{name: cfg.Name, store: store, stop: make(chan struct{})}
	if err := l.openTrees(ctx, cfg, st, signer); err != nil {
		return nil, err
	}
	l.Tree.follower = &follower{}
	if err := l.Tree.follower.refresh(ctx, l.Tree); err != nil {
		return nil, err
	}
	if cp := l.Tree.stored(); cp != "" {
		if c, err := note.ParseSigned(cp); err == nil && c.Origin != l.Tree.origin {
			return nil, &OriginError{Log: cfg.Name, Stored: c.Origin, Configured: l.Tree.origin}
		}
	}
	l.Tree.gatherReads(l.stop)
	return l, nil
}

// OriginError is a follower whose configuration would name the tree's
// checkpoints otherwise than the leader does (another hostname).
type OriginError struct {
	Log, Stored, Configured string
}

func (e *OriginError) Error() string {
	return fmt.Sprintf("log %s: the leader signs checkpoints as %q, this server's configuration as %q: give every replica the same hostname", e.Log, e.Stored, e.Configured)
}

// stored is the newest checkpoint remembered, "" if none.
func (t *Tree) stored() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n := len(t.checkpoints); n > 0 {
		return t.checkpoints[n-1].note
	}
	return ""
}

// follower keeps a followed tree's root current.
type follower struct {
	mu sync.Mutex // held while refreshing
	// began is when the last successful refresh began.
	began time.Time
}

// refresh publishes the tree's stored checkpoint, unless a refresh that
// began after this call completed meanwhile. Roots only grow.
func (f *follower) refresh(ctx context.Context, t *Tree) error {
	asked := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.began.After(asked) {
		return nil
	}
	began := time.Now()
	_, signed, err := t.store.Watermark(ctx)
	if err != nil {
		return fmt.Errorf("log %s: reading the stored checkpoint: %w", t.name, err)
	}
	root := Root{Hash: rfc6962.DefaultHasher.EmptyRoot()}
	if signed != "" {
		c, err := note.ParseSigned(signed)
		if err != nil {
			return fmt.Errorf("log %s: the stored checkpoint: %w", t.name, err)
		}
		root = Root{Size: c.Size, Hash: c.RootHash}
		t.remember(root, signed)
	}
	if p := t.published(); p == nil || root.Size > p.Size {
		t.publish(root)
	}
	f.began = began
	return nil
}
