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
	"fmt"

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

// Request records that what may rotate to id at its next start. Asking
// again for the same id renews the request.
func Request(ctx context.Context, pool *pgxpool.Pool, what, id string) error {
	_, err := pool.Exec(ctx, `INSERT INTO signet_rotation_requests (log_name, key_sha256) VALUES ($1, $2)
		ON CONFLICT (log_name, key_sha256) DO UPDATE SET requested_at = now(), done_at = NULL`, what, id)
	if err != nil {
		return fmt.Errorf("recording the %s rotation: %w", what, err)
	}
	return nil
}

// Requested says whether a rotation of what to id was asked for and has
// not happened yet.
func Requested(ctx context.Context, pool *pgxpool.Pool, what, id string) (bool, error) {
	var ok bool
	err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM signet_rotation_requests
		WHERE log_name = $1 AND key_sha256 = $2 AND done_at IS NULL)`, what, id).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("reading the %s rotations asked for: %w", what, err)
	}
	return ok, nil
}

// Done closes the request for id, once what is id.
func Done(ctx context.Context, pool *pgxpool.Pool, what, id string) error {
	if _, err := pool.Exec(ctx, `UPDATE signet_rotation_requests SET done_at = now()
		WHERE log_name = $1 AND key_sha256 = $2 AND done_at IS NULL`, what, id); err != nil {
		return fmt.Errorf("closing the %s rotation: %w", what, err)
	}
	return nil
}
