package main

import (
	"bytes"
	"context"
	"testing"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"github.com/sigstore/sigstore-go/pkg/sign"
)

// recorder stands in for the CA and the log to see that the progress
// wrappers say their step first and then hand it on unchanged.
type recorder struct{ calls []string }

func (r *recorder) GetCertificate(context.Context, sign.Keypair, *sign.CertificateProviderOptions) ([]byte, error) {
	r.calls = append(r.calls, "certificate")
	return []byte("cert"), nil
}

func (r *recorder) GetTransparencyLogEntry(context.Context, []byte, *protobundle.Bundle) error {
	r.calls = append(r.calls, "log")
	return nil
}

func TestProgressLines(t *testing.T) {
	var out bytes.Buffer
	rec := &recorder{}
	cert, err := progressCA{rec, &out, "https://ca.example"}.GetCertificate(context.Background(), nil, nil)
	if err != nil || string(cert) != "cert" {
		t.Fatalf("certificate %q, %v", cert, err)
	}
	if err := (progressLog{rec, &out, "https://log.example", []string{"https://tsa.example"}}).GetTransparencyLogEntry(context.Background(), nil, nil); err != nil {
		t.Fatal(err)
	}
	want := "Getting a certificate from https://ca.example\nTimestamped by https://tsa.example\nRecording the signature in the transparency log https://log.example\n"
	if out.String() != want || len(rec.calls) != 2 {
		t.Fatalf("progress %q (calls %v), want %q", out.String(), rec.calls, want)
	}
}
