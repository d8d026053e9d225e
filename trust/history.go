package trust

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/signet-dev/signet/internal/pkigen"
)

// historyLock serialises rotations across replicas sharing the database.
const historyLock = 0x74727374

// ChainChangedError is a chain other than the one in use, when replacing it
// was not allowed.
type ChainChangedError struct {
	Component string
	InUse     string // the chain in use's first certificate, described
	New       string
}

func (e *ChainChangedError) Error() string {
	return fmt.Sprintf("the configured %s chain (%s) is not the one in use (%s)", e.Component, e.New, e.InUse)
}

// describe names a certificate so two with the same subject (every
// rotated intermediate has one) still differ: serial, start, fingerprint.
func describe(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return fmt.Sprintf("certificate %s, serial %x, from %s, SHA-256 %x", c.Subject, c.SerialNumber, c.NotBefore.UTC().Format(time.RFC3339), sum[:])
}

// RecordChain makes current the component's ("ca", "tsa") chain in the
// database and returns the chains it has used before, each with its
// window closed. A chain seen for the first time closes the open window of
// the one it replaces at now and starts its own there, if replace allows
// it (a *ChainChangedError otherwise, and nothing is written); the very
// first chain of a component keeps its Start (its first certificate's
// notBefore). current.Start is set from the database.
func RecordChain(ctx context.Context, pool *pgxpool.Pool, component string, current *Chain, now time.Time, replace bool) ([]*Chain, error) {
	sum := sha256.Sum256(current.Certificates[0].Raw)
	fp := hex.EncodeToString(sum[:])
	var past []*Chain
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", historyLock); err != nil {
			return err
		}
		var open bool
		var from time.Time
		err := tx.QueryRow(ctx, "SELECT valid_to IS NULL, valid_from FROM trust_chains WHERE component = $1 AND fingerprint = $2", component, fp).Scan(&open, &from)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			if !replace {
				var inUse string
				err := tx.QueryRow(ctx, "SELECT chain_pem FROM trust_chains WHERE component = $1 AND valid_to IS NULL", component).Scan(&inUse)
				if err == nil {
					certs, _ := cryptoutils.UnmarshalCertificatesFromPEM([]byte(inUse))
					inUseDesc := "unreadable"
					if len(certs) > 0 {
						inUseDesc = describe(certs[0])
					}
					return &ChainChangedError{Component: component, InUse: inUseDesc, New: describe(current.Certificates[0])}
				}
				if !errors.Is(err, pgx.ErrNoRows) {
					return err
				}
			}
			// Whole seconds, overlapping by up to one: log times have no
			// fraction and TSA times are truncated to milliseconds, so an
			// entry right after the rotation must not fall before the new
			// window, nor one right before it after the old window.
			tag, err := tx.Exec(ctx, "UPDATE trust_chains SET valid_to = $2 WHERE component = $1 AND valid_to IS NULL", component, now.Truncate(time.Second).Add(time.Second))
			if err != nil {
				return err
			}
			from = current.Start
			if tag.RowsAffected() > 0 {
				from = now.Truncate(time.Second)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO trust_chains (component, fingerprint, chain_pem, valid_from) VALUES ($1, $2, $3, $4)",
				component, fp, string(pkigen.PEM(current.Certificates)), from); err != nil {
				return err
			}
		case err != nil:
			return err
		case !open:
			return fmt.Errorf("the configured %s chain (certificate %s) was retired before; configure a new chain instead of going back to an old one", component, current.Certificates[0].Subject)
		}
		current.Start = from
		rows, err := tx.Query(ctx, "SELECT chain_pem, valid_from, valid_to FROM trust_chains WHERE component = $1 AND fingerprint <> $2 ORDER BY valid_from", component, fp)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var pemText string
			var start, end time.Time
			if err := rows.Scan(&pemText, &start, &end); err != nil {
				return err
			}
			certs, err := cryptoutils.UnmarshalCertificatesFromPEM([]byte(pemText))
			if err != nil {
				return fmt.Errorf("a recorded %s chain: %w", component, err)
			}
			past = append(past, &Chain{Certificates: certs, Start: start, End: end})
		}
		return rows.Err()
	})
	if err != nil {
		var changed *ChainChangedError
		if errors.As(err, &changed) {
			return nil, changed // says what it is about
		}
		return nil, fmt.Errorf("recording the %s chain: %w", component, err)
	}
	return past, nil
}
