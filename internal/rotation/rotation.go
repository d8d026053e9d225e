// Package rotation records the rotations an operator asked for
// (signet-server admin rotate log|ct|ca|tsa, admin import-chain), so that a
// production server starting with a log key other than its tree's, or a CA
// or TSA chain other than the one in use, rotates only when the new key or
// chain was named beforehand; any other change stops start-up.
//
// A request names what rotates (a log: "rekor", "ct"; a chain: "ca-chain",
// "tsa-chain") and the new key's or chain's ID (KeyID, CertID).
package rotation

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// CertID names a chain by its first certificate: the SHA-256 of its DER,
// hex (as trust_chains does).
func CertID(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// KeyID is how requests name a key: the SHA-256 of its PKIX encoding, hex.
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encoding the public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// Request records that what may rotate to id at its next start, and only
// to id: an earlier request still open for what is closed (so a key asked
// for once and then given up cannot rotate the log later). Asking again for
// the same id renews the request.
func Request(ctx context.Context, pool *pgxpool.Pool, what, id string) error {
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// One request at a time per what: two admins at once would each
		// close the other's before either inserted.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('signet_rotation_requests:' || $1))", what); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE signet_rotation_requests SET done_at = now() WHERE what = $1 AND id <> $2 AND done_at IS NULL`, what, id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO signet_rotation_requests (what, id) VALUES ($1, $2)
			ON CONFLICT (what, id) DO UPDATE SET requested_at = now(), done_at = NULL`, what, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("recording the %s rotation: %w", what, err)
	}
	return nil
}

// Open is the id of the open request for what, "" if none.
func Open(ctx context.Context, pool *pgxpool.Pool, what string) (string, error) {
	var id string
	err := pool.QueryRow(ctx, `SELECT id FROM signet_rotation_requests WHERE what = $1 AND done_at IS NULL`, what).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the %s rotations asked for: %w", what, err)
	}
	return id, nil
}

// Requested says whether a rotation of what to id was asked for and has
// not happened yet.
func Requested(ctx context.Context, pool *pgxpool.Pool, what, id string) (bool, error) {
	open, err := Open(ctx, pool, what)
	return open == id && id != "", err
}

// Done closes the request for id, once what is id.
func Done(ctx context.Context, pool *pgxpool.Pool, what, id string) error {
	if _, err := pool.Exec(ctx, `UPDATE signet_rotation_requests SET done_at = now()
		WHERE what = $1 AND id = $2 AND done_at IS NULL`, what, id); err != nil {
		return fmt.Errorf("closing the %s rotation: %w", what, err)
	}
	return nil
}
