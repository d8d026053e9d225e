package identity

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
)

// OIDs under Sigstore's arc 1.3.6.1.4.1.57264.1 (Fulcio's certificate extensions).
var (
	OIDIssuer                              = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}
	OIDGitHubWorkflowTrigger               = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 2}
	OIDGitHubWorkflowSHA                   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 3}
	OIDGitHubWorkflowName                  = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 4}
	OIDGitHubWorkflowRepository            = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 5}
	OIDGitHubWorkflowRef                   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 6}
	OIDOtherName                           = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 7}
	OIDIssuerV2                            = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}
	OIDBuildSignerURI                      = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 9}
	OIDBuildSignerDigest                   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 10}
	OIDRunnerEnvironment                   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 11}
	OIDSourceRepositoryURI                 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 12}
	OIDSourceRepositoryDigest              = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 13}
	OIDSourceRepositoryRef                 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 14}
	OIDSourceRepositoryIdentifier          = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 15}
	OIDSourceRepositoryOwnerURI            = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 16}
	OIDSourceRepositoryOwnerIdentifier     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 17}
	OIDBuildConfigURI                      = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 18}
	OIDBuildConfigDigest                   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 19}
	OIDBuildTrigger                        = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 20}
	OIDRunInvocationURI                    = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 21}
	OIDSourceRepositoryVisibilityAtSigning = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 22}
	OIDDeploymentEnvironment               = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 23}
	OIDTokenSubject                        = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 24}
)

// extensionField is one templatable extension: its OID and whether it is
// one of the deprecated GitHub extensions stored as raw bytes.
type extensionField struct {
	oid asn1.ObjectIdentifier
	raw bool
}

// extensionFields are the ci-provider template keys, as Fulcio names them.
var extensionFields = map[string]extensionField{
	"github-workflow-trigger":                 {OIDGitHubWorkflowTrigger, true},
	"github-workflow-sha":                     {OIDGitHubWorkflowSHA, true},
	"github-workflow-name":                    {OIDGitHubWorkflowName, true},
	"github-workflow-repository":              {OIDGitHubWorkflowRepository, true},
	"github-workflow-ref":                     {OIDGitHubWorkflowRef, true},
	"build-signer-uri":                        {OIDBuildSignerURI, false},
	"build-signer-digest":                     {OIDBuildSignerDigest, false},
	"runner-environment":                      {OIDRunnerEnvironment, false},
	"source-repository-uri":                   {OIDSourceRepositoryURI, false},
	"source-repository-digest":                {OIDSourceRepositoryDigest, false},
	"source-repository-ref":                   {OIDSourceRepositoryRef, false},
	"source-repository-identifier":            {OIDSourceRepositoryIdentifier, false},
	"source-repository-owner-uri":             {OIDSourceRepositoryOwnerURI, false},
	"source-repository-owner-identifier":      {OIDSourceRepositoryOwnerIdentifier, false},
	"build-config-uri":                        {OIDBuildConfigURI, false},
	"build-config-digest":                     {OIDBuildConfigDigest, false},
	"build-trigger":                           {OIDBuildTrigger, false},
	"run-invocation-uri":                      {OIDRunInvocationURI, false},
	"source-repository-visibility-at-signing": {OIDSourceRepositoryVisibilityAtSigning, false},
	"deployment-environment":                  {OIDDeploymentEnvironment, false},
}

// renderOrder is Fulcio's order: raw issuer, raw GitHub fields, issuer v2,
// then 1.9 upwards, then the token subject.
var renderOrder = []string{
	"github-workflow-trigger", "github-workflow-sha", "github-workflow-name", "github-workflow-repository", "github-workflow-ref",
	"build-signer-uri", "build-signer-digest", "runner-environment", "source-repository-uri", "source-repository-digest",
	"source-repository-ref", "source-repository-identifier", "source-repository-owner-uri", "source-repository-owner-identifier",
	"build-config-uri", "build-config-digest", "build-trigger", "run-invocation-uri", "source-repository-visibility-at-signing",
	"deployment-environment",
}

// Extensions are the Sigstore extensions of one certificate.
type Extensions struct {
	// Issuer goes in 1.1 (raw) and 1.8 (UTF8String).
	Issuer string
	// Subject is the token's sub, in 1.24.
	Subject string
	// CI holds the ci-provider values by template key.
	CI map[string]string
}

// Render encodes the extensions, none critical; empty values are left out.
func (e Extensions) Render() ([]pkix.Extension, error) {
	if e.Issuer == "" {
		return nil, errors.New("certificate extensions need an issuer")
	}
	exts := []pkix.Extension{{Id: OIDIssuer, Value: []byte(e.Issuer)}}
	utf8 := func(oid asn1.ObjectIdentifier, v string) error {
		der, err := asn1.MarshalWithParams(v, "utf8")
		if err != nil {
			return err
		}
		exts = append(exts, pkix.Extension{Id: oid, Value: der})
		return nil
	}
	for _, k := range renderOrder[:5] {
		if v := e.CI[k]; v != "" {
			exts = append(exts, pkix.Extension{Id: extensionFields[k].oid, Value: []byte(v)})
		}
	}
	if err := utf8(OIDIssuerV2, e.Issuer); err != nil {
		return nil, err
	}
	for _, k := range renderOrder[5:] {
		if v := e.CI[k]; v != "" {
			if err := utf8(extensionFields[k].oid, v); err != nil {
				return nil, err
			}
		}
	}
	if e.Subject != "" {
		if err := utf8(OIDTokenSubject, e.Subject); err != nil {
			return nil, err
		}
	}
	return exts, nil
}
