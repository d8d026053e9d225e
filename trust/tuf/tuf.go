// Package tuf publishes the trust material as a TUF repository (go-tuf/v2
// metadata): root, targets, snapshot and timestamp with consistent
// snapshots and hash-prefixed targets, kept in PostgreSQL so replicas serve
// the same versions. Root and targets change only when their content does;
// snapshot and timestamp are re-signed online before they expire.
package tuf

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-dev/signet/internal/requestid"
)

// Lifetimes of each role's metadata.
const (
	RootLifetime      = 365 * 24 * time.Hour
	TargetsLifetime   = 180 * 24 * time.Hour
	SnapshotLifetime  = 7 * 24 * time.Hour
	TimestampLifetime = 24 * time.Hour
)

// Keys sign the four roles. Root may be nil once root.json exists (an
// offline root key); the others must be present.
type Keys struct {
	Root, Targets, Snapshot, Timestamp crypto.Signer
}

// Repository is the TUF repository of one instance.
type Repository struct {
	pool   *pgxpool.Pool
	keys   Keys
	logger *slog.Logger
	now    func() time.Time
}

// New returns a repository over pool.
func New(pool *pgxpool.Pool, keys Keys, logger *slog.Logger) *Repository {
	return &Repository{pool: pool, keys: keys, logger: logger, now: time.Now}
}

// loadSigner adapts a role key. sigstore's LoadSigner wants concrete key
// types, so an ECDSA key behind any crypto.Signer (a PKCS#11 token) signs
// through tokenSigner; other key types must be in memory.
func loadSigner(k crypto.Signer) (signature.Signer, error) {
	if pub, ok := k.Public().(*ecdsa.PublicKey); ok {
		if pub.Curve != elliptic.P256() {
			return nil, fmt.Errorf("TUF keys must be P-256 (ecdsa-sha2-nistp256) or Ed25519, not ECDSA %s", pub.Curve.Params().Name)
		}
		return tokenSigner{k}, nil
	}
	return signature.LoadSigner(k, crypto.SHA256)
}

// tokenSigner signs the SHA-256 of the message as ecdsa-sha2-nistp256
// (ASN.1 DER signature, which go-tuf verifies).
type tokenSigner struct{ crypto.Signer }

func (t tokenSigner) PublicKey(...signature.PublicKeyOption) (crypto.PublicKey, error) {
	return t.Public(), nil
}

func (t tokenSigner) SignMessage(message io.Reader, _ ...signature.SignOption) ([]byte, error) {
	h := sha256.New()
	if _, err := io.Copy(h, message); err != nil {
		return nil, err
	}
	return t.Sign(rand.Reader, h.Sum(nil), crypto.SHA256)
}

// querier is the pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// publishLock serialises publishing across replicas sharing the database.
const publishLock = 0x7475660a

func latest(ctx context.Context, q querier, role string) (int64, []byte, error) {
	var v int64
	var body []byte
	err := q.QueryRow(ctx, "SELECT version, body FROM tuf_metadata WHERE role = $1 ORDER BY version DESC LIMIT 1", role).Scan(&v, &body)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil, nil
	}
	return v, body, err
}

func put(ctx context.Context, q querier, role string, version int64, body []byte) error {
	_, err := q.Exec(ctx, "INSERT INTO tuf_metadata (role, version, body) VALUES ($1, $2, $3)", role, version, body)
	return err
}

// newRoot is root.json version v (unsigned, a full lifetime from now) with
// rootKey and the repository's online keys.
func (r *Repository) newRoot(v int64, rootKey crypto.Signer) (*metadata.Metadata[metadata.RootType], error) {
	root := metadata.Root(r.now().UTC().Add(RootLifetime))
	root.Signed.Version = v
	for role, k := range map[string]crypto.Signer{metadata.ROOT: rootKey, metadata.TARGETS: r.keys.Targets, metadata.SNAPSHOT: r.keys.Snapshot, metadata.TIMESTAMP: r.keys.Timestamp} {
		key, err := metadata.KeyFromPublicKey(k.Public())
		if err != nil {
			return nil, fmt.Errorf("%s key: %w", role, err)
		}
		if err := root.Signed.AddKey(key, role); err != nil {
			return nil, err
		}
	}
	return root, nil
}

// sign replaces md's signatures with one by each key and encodes it.
func sign[T metadata.Roles](md *metadata.Metadata[T], keys ...crypto.Signer) ([]byte, error) {
	md.Signatures = nil
	for _, key := range keys {
		s, err := loadSigner(key)
		if err != nil {
			return nil, err
		}
		if _, err := md.Sign(s); err != nil {
			return nil, err
		}
	}
	return md.ToBytes(true)
}

// Publish brings the repository up to date with the target files (name ->
// content): a first root, new targets/snapshot/timestamp versions when the
// content changed, and fresh snapshot/timestamp signatures before expiry.
func (r *Repository) Publish(ctx context.Context, files map[string][]byte) error {
	return r.inLock(ctx, func(tx pgx.Tx) error { return r.publish(ctx, tx, files) })
}

// inLock runs fn in a transaction holding the publish lock, so a failure
// leaves no half-published version and replicas never race on versions.
func (r *Repository) inLock(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", publishLock); err != nil {
			return fmt.Errorf("locking the TUF repository: %w", err)
		}
		return fn(tx)
	})
}

func (r *Repository) publish(ctx context.Context, tx pgx.Tx, files map[string][]byte) error {
	now := r.now().UTC()
	// Root.
	rootVersion, rootBody, err := latest(ctx, tx, metadata.ROOT)
	if err != nil {
		return fmt.Errorf("reading root.json: %w", err)
	}
	if rootBody == nil {
		if r.keys.Root == nil {
			return errors.New("no root.json yet and no root key to sign one")
		}
		root, err := r.newRoot(1, r.keys.Root)
		if err != nil {
			return err
		}
		if rootBody, err = sign(root, r.keys.Root); err != nil {
			return fmt.Errorf("signing root.json: %w", err)
		}
		if err := put(ctx, tx, metadata.ROOT, 1, rootBody); err != nil {
			return err
		}
		rootVersion = 1
		r.logger.Info("created TUF root", "version", rootVersion)
	}
	root, err := metadata.Root().FromBytes(rootBody)
	if err != nil {
		return fmt.Errorf("parsing root.json: %w", err)
	}
	for role, k := range map[string]crypto.Signer{metadata.TARGETS: r.keys.Targets, metadata.SNAPSHOT: r.keys.Snapshot, metadata.TIMESTAMP: r.keys.Timestamp} {
		id, err := keyID(k.Public())
		if err != nil {
			return fmt.Errorf("the configured %s key: %w", role, err)
		}
		if !contains(root.Signed.Roles[role].KeyIDs, id) {
			return fmt.Errorf("the configured %s key is not a %s key of root.json version %d", role, role, rootVersion)
		}
	}

	// Targets: a new version when the set of files changed.
	targetsVersion, targetsBody, err := latest(ctx, tx, metadata.TARGETS)
	if err != nil {
		return err
	}
	want := metadata.Targets(now.Add(TargetsLifetime))
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		tf, err := metadata.TargetFile().FromBytes(name, files[name], "sha256")
		if err != nil {
			return err
		}
		want.Signed.Targets[name] = tf
	}
	changed := targetsBody == nil
	if !changed {
		cur, err := metadata.Targets().FromBytes(targetsBody)
		if err != nil {
			return err
		}
		changed = !sameTargets(cur.Signed.Targets, want.Signed.Targets)
	}
	if changed {
		targetsVersion++
		want.Signed.Version = targetsVersion
		if targetsBody, err = sign(want, r.keys.Targets); err != nil {
			return fmt.Errorf("signing targets.json: %w", err)
		}
		for _, name := range names {
			sum := sha256.Sum256(files[name])
			if _, err := tx.Exec(ctx, "INSERT INTO tuf_targets (sha256, name, body) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", hex.EncodeToString(sum[:]), name, files[name]); err != nil {
				return err
			}
		}
		if err := put(ctx, tx, metadata.TARGETS, targetsVersion, targetsBody); err != nil {
			return err
		}
		r.logger.Info("published TUF targets", "version", targetsVersion)
	}
	return r.refreshOnline(ctx, tx, targetsVersion, changed)
}

// refreshOnline re-signs snapshot and timestamp when targets changed or
// when less than half of their lifetime is left.
func (r *Repository) refreshOnline(ctx context.Context, tx pgx.Tx, targetsVersion int64, force bool) error {
	now := r.now().UTC()
	snapVersion, snapBody, err := latest(ctx, tx, metadata.SNAPSHOT)
	if err != nil {
		return err
	}
	if force || snapBody == nil || expiresSoon(snapBody, now, SnapshotLifetime, func(b []byte) (time.Time, error) {
		s, err := metadata.Snapshot().FromBytes(b)
		if err != nil {
			return time.Time{}, err
		}
		return s.Signed.Expires, nil
	}) {
		snap := metadata.Snapshot(now.Add(SnapshotLifetime))
		snapVersion++
		snap.Signed.Version = snapVersion
		snap.Signed.Meta["targets.json"] = metadata.MetaFile(targetsVersion)
		if snapBody, err = sign(snap, r.keys.Snapshot); err != nil {
			return fmt.Errorf("signing snapshot.json: %w", err)
		}
		if err := put(ctx, tx, metadata.SNAPSHOT, snapVersion, snapBody); err != nil {
			return err
		}
		force = true
	}
	tsVersion, tsBody, err := latest(ctx, tx, metadata.TIMESTAMP)
	if err != nil {
		return err
	}
	if force || tsBody == nil || expiresSoon(tsBody, now, TimestampLifetime, func(b []byte) (time.Time, error) {
		t, err := metadata.Timestamp().FromBytes(b)
		if err != nil {
			return time.Time{}, err
		}
		return t.Signed.Expires, nil
	}) {
		ts := metadata.Timestamp(now.Add(TimestampLifetime))
		tsVersion++
		ts.Signed.Version = tsVersion
		mf := metadata.MetaFile(snapVersion)
		sum := sha256.Sum256(snapBody)
		mf.Length = int64(len(snapBody))
		mf.Hashes = metadata.Hashes{"sha256": sum[:]}
		ts.Signed.Meta["snapshot.json"] = mf
		if tsBody, err = sign(ts, r.keys.Timestamp); err != nil {
			return fmt.Errorf("signing timestamp.json: %w", err)
		}
		if err := put(ctx, tx, metadata.TIMESTAMP, tsVersion, tsBody); err != nil {
			return err
		}
	}
	return nil
}

// Expiries are when the latest metadata of each role (root, targets,
// snapshot, timestamp) expires, as stored (another replica may have
// re-signed it).
func (r *Repository) Expiries(ctx context.Context) (map[string]time.Time, error) {
	rows, err := r.pool.Query(ctx, "SELECT DISTINCT ON (role) role, body FROM tuf_metadata ORDER BY role, version DESC")
	if err != nil {
		return nil, fmt.Errorf("reading the TUF metadata: %w", err)
	}
	out := map[string]time.Time{}
	var role string
	var body []byte
	if _, err := pgx.ForEachRow(rows, []any{&role, &body}, func() error {
		var md struct {
			Signed struct {
				Expires time.Time `json:"expires"`
			} `json:"signed"`
		}
		if err := json.Unmarshal(body, &md); err != nil {
			return fmt.Errorf("TUF %s.json: %w", role, err)
		}
		out[role] = md.Signed.Expires
		return nil
	}); err != nil {
		return nil, fmt.Errorf("reading the TUF metadata: %w", err)
	}
	return out, nil
}

func expiresSoon(body []byte, now time.Time, lifetime time.Duration, expiry func([]byte) (time.Time, error)) bool {
	exp, err := expiry(body)
	return err != nil || exp.Sub(now) < lifetime/2
}

// KeepFresh re-signs snapshot and timestamp before they expire until ctx ends.
func (r *Repository) KeepFresh(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.Refresh(ctx); err != nil {
				r.logger.Warn("refreshing TUF timestamp", "err", err)
			}
		}
	}
}

// Refresh re-signs targets, snapshot and timestamp when they are near
// expiry, and warns when root.json is: renewing root needs the offline key.
func (r *Repository) Refresh(ctx context.Context) error {
	return r.inLock(ctx, func(tx pgx.Tx) error {
		now := r.now().UTC()
		if _, rootBody, err := latest(ctx, tx, metadata.ROOT); err == nil && rootBody != nil {
			if root, err := metadata.Root().FromBytes(rootBody); err == nil && root.Signed.Expires.Sub(now) < 30*24*time.Hour {
				r.logger.WarnContext(ctx, "TUF root.json expires soon: run signet-server admin rotate tuf-root with the root key", "expires", root.Signed.Expires)
			}
		}
		return r.resign(ctx, tx, false)
	})
}

// resign re-signs targets (same files) when forced or near expiry, then
// snapshot and timestamp as needed.
func (r *Repository) resign(ctx context.Context, tx pgx.Tx, force bool) error {
	now := r.now().UTC()
	v, body, err := latest(ctx, tx, metadata.TARGETS)
	if err != nil {
		return err
	}
	if v == 0 {
		return errors.New("nothing published yet")
	}
	targets, err := metadata.Targets().FromBytes(body)
	if err != nil {
		return fmt.Errorf("parsing targets.json: %w", err)
	}
	renew := force || targets.Signed.Expires.Sub(now) < TargetsLifetime/2
	if renew {
		v++
		targets.Signed.Version = v
		targets.Signed.Expires = now.Add(TargetsLifetime)
		if body, err = sign(targets, r.keys.Targets); err != nil {
			return fmt.Errorf("signing targets.json: %w", err)
		}
		if err := put(ctx, tx, metadata.TARGETS, v, body); err != nil {
			return err
		}
	}
	return r.refreshOnline(ctx, tx, v, renew)
}

// RotateRoot signs the next root.json version, with a fresh expiry, listing
// next as the root key and the repository's configured online keys (so a
// rotated targets, snapshot or timestamp key is published this way too). It
// is signed by both the current and the next root key, as clients holding
// the previous root require, and the online roles are re-signed under it.
// next may be current: that renews root.json before it expires.
func (r *Repository) RotateRoot(ctx context.Context, current, next crypto.Signer) (int64, error) {
	var version int64
	err := r.inLock(ctx, func(tx pgx.Tx) error {
		v, body, err := latest(ctx, tx, metadata.ROOT)
		if err != nil {
			return err
		}
		if body == nil {
			return errors.New("there is no root.json to rotate yet: start the server once")
		}
		old, err := metadata.Root().FromBytes(body)
		if err != nil {
			return fmt.Errorf("parsing root.json: %w", err)
		}
		curID, err := keyID(current.Public())
		if err != nil {
			return fmt.Errorf("the given root key: %w", err)
		}
		if !contains(old.Signed.Roles[metadata.ROOT].KeyIDs, curID) {
			return fmt.Errorf("the given root key is not a root key of root.json version %d", v)
		}
		root, err := r.newRoot(v+1, next)
		if err != nil {
			return err
		}
		signers := []crypto.Signer{current}
		nextID, err := keyID(next.Public())
		if err != nil {
			return fmt.Errorf("the new root key: %w", err)
		}
		if nextID != curID {
			signers = append(signers, next)
		}
		if body, err = sign(root, signers...); err != nil {
			return fmt.Errorf("signing root.json: %w", err)
		}
		if err := put(ctx, tx, metadata.ROOT, v+1, body); err != nil {
			return err
		}
		version = v + 1
		return r.resign(ctx, tx, true)
	})
	return version, err
}

func sameTargets(a, b map[string]*metadata.TargetFiles) bool {
	if len(a) != len(b) {
		return false
	}
	for name, x := range a {
		y, ok := b[name]
		if !ok || x.Length != y.Length || !bytes.Equal(x.Hashes["sha256"], y.Hashes["sha256"]) {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// keyID is the TUF key ID of pub.
func keyID(pub crypto.PublicKey) (string, error) {
	k, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		return "", err
	}
	return k.ID()
}

var (
	versioned = regexp.MustCompile(`^([0-9]{1,18})\.(root|snapshot|targets)\.json$`)
	targetRe  = regexp.MustCompile(`^([0-9a-f]{64})\.([A-Za-z0-9._-]{1,100})$`)
)

// Routes serves the repository under /tuf/.
func (r *Repository) Routes(router chi.Router) {
	router.Get("/tuf/{file}", r.serveMetadata)
	router.Get("/tuf/targets/{file}", r.serveTarget)
}

func (r *Repository) serveMetadata(w http.ResponseWriter, req *http.Request) {
	file := chi.URLParam(req, "file")
	ctx := req.Context()
	var body []byte
	var err error
	switch {
	case file == "timestamp.json":
		_, body, err = latest(ctx, r.pool, metadata.TIMESTAMP)
	case file == "root.json":
		_, body, err = latest(ctx, r.pool, metadata.ROOT)
	default:
		m := versioned.FindStringSubmatch(file)
		if m == nil {
			http.NotFound(w, req)
			return
		}
		v, _ := strconv.ParseInt(m[1], 10, 64)
		err = r.pool.QueryRow(ctx, "SELECT body FROM tuf_metadata WHERE role = $1 AND version = $2", m[2], v).Scan(&body)
		if errors.Is(err, pgx.ErrNoRows) {
			err, body = nil, nil
		}
	}
	if err != nil {
		r.logger.ErrorContext(ctx, "serving TUF metadata", "file", file, "err", err)
		http.Error(w, "internal error; "+requestid.SeeLog(ctx), http.StatusInternalServerError)
		return
	}
	if body == nil {
		http.NotFound(w, req)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body) //nolint:errcheck
}

func (r *Repository) serveTarget(w http.ResponseWriter, req *http.Request) {
	m := targetRe.FindStringSubmatch(chi.URLParam(req, "file"))
	if m == nil {
		http.NotFound(w, req)
		return
	}
	var body []byte
	err := r.pool.QueryRow(req.Context(), "SELECT body FROM tuf_targets WHERE sha256 = $1 AND name = $2", m[1], m[2]).Scan(&body)
	if errors.Is(err, pgx.ErrNoRows) {
		http.NotFound(w, req)
		return
	}
	if err != nil {
		r.logger.ErrorContext(req.Context(), "serving TUF target", "file", m[0], "err", err)
		http.Error(w, "internal error; "+requestid.SeeLog(req.Context()), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(body) //nolint:errcheck
}

// Root returns the newest root.json, for clients to bootstrap from.
func (r *Repository) Root(ctx context.Context) ([]byte, error) {
	_, body, err := latest(ctx, r.pool, metadata.ROOT)
	return body, err
}
