package ca

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"time"

	ct "github.com/google/certificate-transparency-go"
	ctclient "github.com/google/certificate-transparency-go/client"
	"github.com/google/certificate-transparency-go/jsonclient"
)

// RemoteCT submits precertificates to an RFC 6962 log over HTTP (another
// Signet, a CTFE, TesseraCT) and verifies each SCT against the log's key.
type RemoteCT struct {
	lc *ctclient.LogClient
}

// NewRemoteCT talks to the log at url (its base, without /ct/v1), whose
// public key is pubPEM.
func NewRemoteCT(url string, pubPEM []byte) (*RemoteCT, error) {
	block, _ := pem.Decode(pubPEM)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("the CT log's public key must be a PEM PUBLIC KEY")
	}
	lc, err := ctclient.New(url, &http.Client{Timeout: 30 * time.Second}, jsonclient.Options{PublicKeyDER: block.Bytes})
	if err != nil {
		return nil, fmt.Errorf("CT log client for %s: %w", url, err)
	}
	return &RemoteCT{lc: lc}, nil
}

// LogPrecertificate implements SCTSource; the client library checks the
// SCT's signature over the precertificate entry before returning it.
func (r *RemoteCT) LogPrecertificate(ctx context.Context, p *Precertificate) (*ct.SignedCertificateTimestamp, error) {
	der := []ct.ASN1Cert{{Data: p.DER}}
	for _, c := range p.Chain {
		der = append(der, ct.ASN1Cert{Data: c})
	}
	sct, err := r.lc.AddPreChain(ctx, der)
	if err != nil {
		return nil, fmt.Errorf("submitting the precertificate to the CT log: %w", err)
	}
	return sct, nil
}
