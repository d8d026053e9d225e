// Package rotation records the log key rotations an operator asked for
// (signet-server admin rotate log|ct), so that a production server starting
// with a key other than its tree's rotates only when the new key was named
// beforehand; any other key change stops start-up.
package rotation

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// KeyID is how requests name a key: the SHA-256 of its PKIX encoding, hex.
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encoding the public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// Request records that log (an engine log name: "rekor", "ct") may rotate
// to pub at its next start. Asking again for the same key renews the
// request.
func Request(ctx context.Context, pool *pgxpool.Pool, log string, pub crypto.PublicKey) error {
	id, err := KeyID(pub)
	if err != nil {
		return err
	}
	_, err = pool.Exec(ctx, `INSERT INTO signet_rotation_requests (log_name, key_sha256) VALUES ($1, $2)
		ON CONFLICT (log_name, key_sha256) DO UPDATE SET requested_at = now(), done_at = NULL`, log, id)
	if err != nil {
		return fmt.Errorf("recording the %s key rotation: %w", log, err)
	}
	return nil
}

// Requested says whether a rotation of log to pub was asked for and has
// not happened yet.
func Requested(ctx context.Context, pool *pgxpool.Pool, log string, pub crypto.PublicKey) (bool, error) {
	id, err := KeyID(pub)
	if err != nil {
		return false, err
	}
	var ok bool
	err = pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM signet_rotation_requests
		WHERE log_name = $1 AND key_sha256 = $2 AND done_at IS NULL)`, log, id).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("reading the %s key rotations asked for: %w", log, err)
	}
	return ok, nil
}

// Done closes the request for pub, once log's tree is pub's.
func Done(ctx context.Context, pool *pgxpool.Pool, log string, pub crypto.PublicKey) error {
	id, err := KeyID(pub)
	if err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, `UPDATE signet_rotation_requests SET done_at = now()
		WHERE log_name = $1 AND key_sha256 = $2 AND done_at IS NULL`, log, id); err != nil {
		return fmt.Errorf("closing the %s key rotation: %w", log, err)
	}
	return nil
}
