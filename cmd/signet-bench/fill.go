package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	pb "github.com/sigstore/rekor-tiles/v2/pkg/generated/protobuf"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/signet-dev/signet/client"
	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/internal/server"
)

// fillResult is the JSON line the fill prints.
type fillResult struct {
	Scenario      string  `json:"scenario"`
	Added         int64   `json:"added"`
	TreeSize      uint64  `json:"tree_size"`
	DurationS     float64 `json:"duration_s"`
	PerSecond     float64 `json:"entries_per_s"`
	DatabaseBytes int64   `json:"database_bytes"`
	BytesPerEntry float64 `json:"database_bytes_per_entry"`
}

// fillChunk is how many entries one bulk import writes: one transaction,
// one COPY per leaf table.
const fillChunk = 16384

// fill grows the log of the dev instance in dataDir to size entries, in
// this process and without HTTP (the instance must not be running): each
// entry is a hashedrekord signed with its own P-256 key, validated as
// POST /api/v1/log/entries validates it, and written by the log's bulk
// import (COPY for the leaves; the same leaves, index rows, SETs, tiles and
// checkpoint as the API writes). The next chunk is made while one is
// written.
func fill(ctx context.Context, dataDir string, size uint64, progress io.Writer) (*fillResult, error) {
	off := false
	cfg := config.Defaults()
	cfg.DataDir = dataDir
	cfg.Components.CA, cfg.Components.CT, cfg.Components.Timestamp, cfg.Components.TUF = &off, &off, &off, &off
	srv, err := server.New(ctx, cfg, server.Options{Dev: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return nil, fmt.Errorf("starting the instance in %s: %w", dataDir, err)
	}
	defer srv.Close(context.Background())
	root, err := srv.Log().Latest(ctx)
	if err != nil {
		return nil, err
	}
	if root.Size >= size {
		return fillReport(ctx, srv, 0, root.Size, 0)
	}
	want := int(size - root.Size)
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type chunk struct {
		bodies [][]byte
		err    error
	}
	chunks := make(chan chunk, 1)
	nonce := time.Now().UnixNano()
	go func() {
		defer close(chunks)
		for first := 0; first < want && ctx.Err() == nil; first += fillChunk {
			c := chunk{bodies: make([][]byte, min(fillChunk, want-first))}
			var errOnce sync.Once
			parallel(len(c.bodies), func(i int) {
				body, _, err := signedEntry(fmt.Sprintf("signet-bench fill %d %d", nonce, first+i))
				if err != nil {
					errOnce.Do(func() { c.err = err })
				}
				c.bodies[i] = body
			})
			select {
			case chunks <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	done := 0
	last := time.Now()
	for c := range chunks {
		if c.err != nil {
			return nil, fmt.Errorf("after %d entries: making entries: %w", done, c.err)
		}
		if root, err = srv.Rekor().Import(ctx, c.bodies); err != nil {
			return nil, fmt.Errorf("after %d entries: %w", done, err)
		}
		done += len(c.bodies)
		if time.Since(last) >= 2*time.Second || done == want {
			last = time.Now()
			fmt.Fprintf(progress, "fill: %d/%d entries added, %.0f/s\n", done, want, float64(done)/time.Since(start).Seconds())
		}
	}
	return fillReport(ctx, srv, int64(done), root.Size, time.Since(start))
}

func fillReport(ctx context.Context, srv *server.Server, added int64, size uint64, took time.Duration) (*fillResult, error) {
	dbBytes, err := srv.DatabaseBytes(ctx)
	if err != nil {
		return nil, err
	}
	r := &fillResult{Scenario: "fill", Added: added, TreeSize: size, DurationS: took.Seconds(), DatabaseBytes: dbBytes}
	if took > 0 {
		r.PerSecond = float64(added) / took.Seconds()
	}
	if size > 0 {
		r.BytesPerEntry = float64(dbBytes) / float64(size)
	}
	return r, nil
}

// signedEntryV2 is signedEntry as a Rekor v2 CreateEntryRequest.
func signedEntryV2(artifact string) ([]byte, string, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", err
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		return nil, "", err
	}
	digest := sha256.Sum256([]byte(artifact))
	sig, err := ecdsa.SignASN1(rand.Reader, k, digest[:])
	if err != nil {
		return nil, "", err
	}
	body, err := protojson.Marshal(&pb.CreateEntryRequest{Spec: &pb.CreateEntryRequest_HashedRekordRequestV002{HashedRekordRequestV002: &pb.HashedRekordRequestV002{
		Digest: digest[:],
		Signature: &pb.Signature{Content: sig, Verifier: &pb.Verifier{
			Verifier:   &pb.Verifier_PublicKey{PublicKey: &pb.PublicKey{RawBytes: der}},
			KeyDetails: protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256,
		}},
	}}})
	return body, fmt.Sprintf("sha256:%x", digest), err
}

// signedEntry is a hashedrekord proposal for the artifact named, signed
// with a fresh key as a CI job would log it, and the artifact's
// "sha256:<hex>" for searching.
func signedEntry(artifact string) ([]byte, string, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", err
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		return nil, "", err
	}
	digest := sha256.Sum256([]byte(artifact))
	sig, err := ecdsa.SignASN1(rand.Reader, k, digest[:])
	if err != nil {
		return nil, "", err
	}
	body, err := client.HashedRekord("sha256", digest[:], sig, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	return body, fmt.Sprintf("sha256:%x", digest), err
}
