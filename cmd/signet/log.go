package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/signet-dev/signet/client"
	"github.com/signet-dev/signet/internal/cligroup"
	"github.com/signet-dev/signet/log/note"
	"github.com/signet-dev/signet/log/rekorapi/model"
)

func newLogCommand() *cobra.Command {
	cmd := cligroup.Make(&cobra.Command{
		Use:   "log",
		Short: "Use and audit the transparency log",
		Example: `  signet log upload --artifact app.tar.gz --signature app.sig --public-key pub.pem
  signet log search --sha $(sha256sum app.tar.gz | cut -d' ' -f1)
  signet log get --log-index 42 --output json > entry.json
  signet log verify --entry entry.json
  signet log info`,
	})
	cmd.PersistentFlags().String("log-key", "", "PEM public key of the log to pin (default: the key signet init pinned for this server, else fetched from the server)")
	cmd.AddCommand(newLogUploadCommand(), newLogGetCommand(), newLogSearchCommand(), newLogVerifyCommand(), newLogInfoCommand(), newLogConsistencyCommand())
	return cmd
}

// pinnedLogKeys is --log-key, else the log keys signet init pinned for the
// server (every key the log has had: older entries carry older keys'
// signatures); offline verification has no other source.
func pinnedLogKeys(cmd *cobra.Command) ([]crypto.PublicKey, error) {
	if path, _ := cmd.Flags().GetString("log-key"); path != "" {
		pub, err := readPublicKey(path)
		return []crypto.PublicKey{pub}, err
	}
	tr, err := pinnedForCommand(cmd)
	if err != nil {
		return nil, err
	}
	var keys []crypto.PublicKey
	for _, l := range tr.RekorLogs() {
		// The Rekor v2 log's trees have baseUrls of their own (their
		// tiles); the v1 API is the instance's.
		if strings.Contains(l.BaseURL, "/tiles/rekor-v2/") {
			continue
		}
		keys = append(keys, l.PublicKey)
	}
	if len(keys) == 0 {
		return nil, errors.New("the pinned trusted root lists no transparency log")
	}
	return keys, nil
}

// logClient builds a client, pinning --log-key when given, else the log key
// of the trusted root signet init stored for this server.
func logClient(cmd *cobra.Command) (*client.Log, error) {
	server, _ := cmd.Flags().GetString("server")
	var opts []client.LogOption
	pubs, err := pinnedLogKeys(cmd)
	switch {
	case err == nil:
		opts = append(opts, client.WithLogPublicKey(pubs...))
	case !errors.Is(err, errNothingPinned):
		return nil, err
	}
	return client.NewLog(server, opts...), nil
}

func readPublicKey(path string) (crypto.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pub, err := client.ParsePublicKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pub, nil
}

func timeout(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), time.Minute)
}

// readSignature accepts a raw signature or its base64 (as cosign writes it).
func readSignature(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if d, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data))); err == nil && len(d) > 0 {
		return d, nil
	}
	return data, nil
}

// uploadFlags are signet log upload's flags, named as rekor-cli's are.
type uploadFlags struct {
	artifact, digest, sig, key, cert, kind, pkiFormat, entry, aad string
}

// uploadKinds are the kinds log upload builds from files: hashedrekord
// and rekord by their own rules, then fileKinds.
var uploadKinds = append([]string{"hashedrekord", "rekord"}, slices.Sorted(maps.Keys(fileKinds))...)

// proposal builds the proposed entry the flags describe, or says which
// flag is missing or out of place for the kind.
func (f uploadFlags) proposal(cmd *cobra.Command) (json.RawMessage, error) {
	if f.entry != "" {
		for _, name := range []string{"artifact", "digest", "signature", "public-key", "certificate", "type", "pki-format", "aad"} {
			if cmd.Flags().Changed(name) {
				return nil, fmt.Errorf("--entry is a whole proposed entry: --%s does not go with it", name)
			}
		}
		data, err := os.ReadFile(f.entry)
		if err != nil {
			return nil, err
		}
		if !json.Valid(data) {
			return nil, fmt.Errorf("--entry %s is not JSON", f.entry)
		}
		return data, nil
	}
	if !slices.Contains(uploadKinds, f.kind) {
		return nil, fmt.Errorf("--type %q: want one of %s (or --entry FILE for any kind)", f.kind, strings.Join(uploadKinds, ", "))
	}
	if f.kind != "rekord" && cmd.Flags().Changed("pki-format") {
		return nil, errors.New("--pki-format goes with --type rekord")
	}
	if f.kind != "cose" && cmd.Flags().Changed("aad") {
		return nil, errors.New("--aad goes with --type cose")
	}
	if build, ok := fileKinds[f.kind]; ok {
		return f.fileAndKey(cmd, build)
	}
	if (f.artifact == "") == (f.digest == "") {
		return nil, errors.New("give exactly one of --artifact and --digest")
	}
	if (f.key == "") == (f.cert == "") {
		return nil, errors.New("give exactly one of --public-key and --certificate")
	}
	if f.sig == "" {
		return nil, errors.New("--signature is required")
	}
	sig, err := readSignature(f.sig)
	if err != nil {
		return nil, err
	}
	verifier := f.key
	if f.cert != "" {
		verifier = f.cert
	}
	verifierBytes, err := os.ReadFile(verifier)
	if err != nil {
		return nil, err
	}
	if f.kind == "rekord" {
		switch {
		case f.digest != "":
			return nil, errors.New("--type rekord sends the artifact itself: give --artifact, not --digest")
		case !slices.Contains(rekordFormats, f.pkiFormat):
			return nil, fmt.Errorf("--pki-format %q: want %s", f.pkiFormat, strings.Join(rekordFormats, ", "))
		}
		// Bounded by the file's size only: the log answers 413 above its
		// log.max_request_bytes.
		content, err := os.ReadFile(f.artifact)
		if err != nil {
			return nil, err
		}
		return client.Rekord(f.pkiFormat, content, sig, verifierBytes)
	}
	alg := "sha256"
	var sum []byte
	if f.artifact != "" {
		if sum, err = digestFile(f.artifact, crypto.SHA256); err != nil {
			return nil, err
		}
	} else {
		a, h, ok := strings.Cut(f.digest, ":")
		if !ok {
			a, h = "sha256", f.digest
		}
		if sum, err = hex.DecodeString(h); err != nil || (a != "sha256" && a != "sha384" && a != "sha512") {
			return nil, fmt.Errorf("--digest %q: want sha256:<hex> (or sha384:, sha512:)", f.digest)
		}
		alg = a
	}
	return client.HashedRekord(alg, sum, sig, verifierBytes)
}

// fileKind is a kind logged from one file (--artifact) and the key or
// root that verifies it (--public-key, or --certificate where one can).
type fileKind struct {
	artifact string // what --artifact is, for messages
	key      string // what --public-key is; "" when the artifact is all
	noCert   bool   // --certificate does not apply
	proposal func(f uploadFlags, artifact, key []byte) (json.RawMessage, error)
}

var fileKinds = map[string]fileKind{
	"cose": {artifact: "MESSAGE.cbor (a COSE_Sign1 message)", key: "KEY.pem", proposal: func(f uploadFlags, msg, key []byte) (json.RawMessage, error) {
		aad, err := base64.StdEncoding.DecodeString(f.aad)
		if err != nil {
			return nil, fmt.Errorf("--aad: not base64: %w", err)
		}
		return client.COSE(msg, key, aad)
	}},
	"dsse": {artifact: "ENVELOPE.json (a DSSE envelope)", key: "KEY.pem", proposal: func(_ uploadFlags, env, key []byte) (json.RawMessage, error) {
		return client.DSSE(env, key)
	}},
	"intoto": {artifact: "ENVELOPE.json (a DSSE envelope over an in-toto statement)", key: "KEY.pem", proposal: func(_ uploadFlags, env, key []byte) (json.RawMessage, error) {
		return client.InTotoV002(env, key)
	}},
	"intoto:0.0.2": {artifact: "ENVELOPE.json (a DSSE envelope over an in-toto statement)", key: "KEY.pem", proposal: func(_ uploadFlags, env, key []byte) (json.RawMessage, error) {
		return client.InTotoV002(env, key)
	}},
	"intoto:0.0.1": {artifact: "ENVELOPE.json (a DSSE envelope over an in-toto statement)", key: "KEY.pem", proposal: func(_ uploadFlags, env, key []byte) (json.RawMessage, error) {
		return client.InTotoV001(env, key)
	}},
	"tuf": {artifact: "METADATA.json", key: "ROOT.json (the root that signs it)", noCert: true, proposal: func(_ uploadFlags, md, root []byte) (json.RawMessage, error) {
		return client.TUF(md, root)
	}},
	"alpine": {artifact: "PACKAGE.apk", key: "KEY.pem (the RSA key abuild-sign used)", proposal: func(_ uploadFlags, apk, key []byte) (json.RawMessage, error) {
		return client.Alpine(apk, key)
	}},
	"rfc3161": {artifact: "FILE.tsr (a DER timestamp response)", proposal: func(_ uploadFlags, tsr, _ []byte) (json.RawMessage, error) {
		return client.RFC3161(tsr)
	}},
	"jar": {artifact: "APP.jar (signed with jarsigner)", proposal: func(_ uploadFlags, archive, _ []byte) (json.RawMessage, error) {
		return client.JAR(archive)
	}},
	"rpm": {artifact: "PACKAGE.rpm (signed with rpmsign)", key: "KEY.asc (the PGP key that signed it)", noCert: true, proposal: func(_ uploadFlags, pkg, key []byte) (json.RawMessage, error) {
		return client.RPM(pkg, key)
	}},
	"helm": {artifact: "CHART.tgz.prov (the provenance helm package --sign wrote)", key: "KEY.asc (the PGP key that signed it)", noCert: true, proposal: func(_ uploadFlags, prov, key []byte) (json.RawMessage, error) {
		return client.Helm(prov, key)
	}},
}

// fileAndKey reads --artifact and the key for a fileKind, refusing flags
// that do not go with it.
func (f uploadFlags) fileAndKey(cmd *cobra.Command, k fileKind) (json.RawMessage, error) {
	notHere := []string{"digest", "signature"}
	switch {
	case k.key == "":
		notHere = append(notHere, "public-key", "certificate")
	case k.noCert:
		notHere = append(notHere, "certificate")
	}
	for _, name := range notHere {
		if cmd.Flags().Changed(name) {
			return nil, fmt.Errorf("--type %s logs --artifact %s: --%s does not go with it", f.kind, k.artifact, name)
		}
	}
	if k.key == "" {
		if f.artifact == "" {
			return nil, fmt.Errorf("--type %s needs --artifact %s", f.kind, k.artifact)
		}
		artifact, err := os.ReadFile(f.artifact)
		if err != nil {
			return nil, err
		}
		return k.proposal(f, artifact, nil)
	}
	if f.artifact == "" || (f.key == "") == (f.cert == "") {
		with := "--public-key " + k.key
		if !k.noCert {
			with += " or --certificate CERT.pem"
		}
		return nil, fmt.Errorf("--type %s needs --artifact %s and %s", f.kind, k.artifact, with)
	}
	artifact, err := os.ReadFile(f.artifact)
	if err != nil {
		return nil, err
	}
	verifier := f.key
	if f.cert != "" {
		verifier = f.cert
	}
	key, err := os.ReadFile(verifier)
	if err != nil {
		return nil, err
	}
	return k.proposal(f, artifact, key)
}

// rekordFormats are rekord's PKI formats, as --pki-format names them.
var rekordFormats = []string{"x509", "ssh", "pgp", "minisign"}

func newLogUploadCommand() *cobra.Command {
	var f uploadFlags
	cmd := &cobra.Command{
		Use:   "upload --artifact FILE --signature SIG --public-key KEY.pem",
		Short: "Log a signature over an artifact, or a timestamp, and print the verified entry",
		Long: `upload logs an entry and prints it, verified (inclusion proof, checkpoint, SET).

--type hashedrekord (the default) sends the artifact's digest and a detached
signature over it. --type rekord sends the artifact itself (the log checks the
signature over it and keeps its SHA-256), with --pki-format x509 (a PEM key or
certificate, raw signature), ssh (an authorized_keys line as --public-key, an
ssh-keygen -Y sign -n file signature), pgp (gpg --export [--armor] as
--public-key, gpg --detach-sign [--armor]) or minisign (the .pub file, the
.minisig signature). --type rfc3161 logs a timestamp response (--artifact
FILE.tsr). --type cose logs a COSE_Sign1 message (--artifact, with --public-key
or --certificate, and --aad when it was signed with one); the log stores the
message and returns it as the entry's attestation. --type intoto (0.0.2;
intoto:0.0.1 for the older version) logs a DSSE envelope over an in-toto
statement (--artifact, with the --public-key or --certificate of its
signatures); the statement is stored and returned as the attestation.
--type tuf logs TUF metadata (--artifact) with the root that signs it
(--public-key root.json). --type alpine logs a signed .apk (--artifact) with
the RSA key abuild-sign used. --type helm logs a chart's provenance file
(--artifact CHART.tgz.prov) with the PGP key that signed it, --type rpm an
RPM package signed with rpmsign, --type jar a Java archive signed with
jarsigner. --type dsse logs a DSSE envelope (--artifact) with the key or
certificate that verifies it. --entry FILE sends a proposed entry of any kind
as it is.`,
		Example: `  openssl dgst -sha256 -sign key.pem -out release.sig release.tar.gz
  signet log upload --artifact release.tar.gz --signature release.sig --public-key pub.pem
  signet log upload --digest sha256:9f86d0... --signature release.sig --certificate cert.pem
  ssh-keygen -Y sign -n file -f ~/.ssh/id_ed25519 release.tar.gz
  signet log upload --type rekord --pki-format ssh --artifact release.tar.gz \
    --signature release.tar.gz.sig --public-key ~/.ssh/id_ed25519.pub
  gpg --export --armor release@example.com > release.asc && gpg --detach-sign --armor release.tar.gz
  signet log upload --type rekord --pki-format pgp --artifact release.tar.gz \
    --signature release.tar.gz.asc --public-key release.asc
  signet timestamp request --artifact release.tar.gz --out release.tsr
  signet log upload --type rfc3161 --artifact release.tsr`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			proposal, err := f.proposal(cmd)
			if err != nil {
				return err
			}
			lc, err := logClient(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := timeout(cmd)
			defer cancel()
			e, err := lc.Upload(ctx, proposal)
			var apiErr *client.APIError
			if errors.As(err, &apiErr) && apiErr.Status == 409 && e != nil {
				return reportEntry(cmd, e, "already in the log")
			}
			if err != nil {
				return notVerified(err)
			}
			return reportEntry(cmd, e, "logged")
		},
	}
	cmd.Flags().StringVar(&f.artifact, "artifact", "", "the signed file (with --type rfc3161: the timestamp response)")
	cmd.Flags().StringVar(&f.digest, "digest", "", "the signed digest instead of the file, sha256:<hex>")
	cmd.Flags().StringVar(&f.sig, "signature", "", "signature file, raw or base64")
	cmd.Flags().StringVar(&f.key, "public-key", "", "key that verifies the signature (PEM; with rekord, in --pki-format)")
	cmd.Flags().StringVar(&f.cert, "certificate", "", "PEM certificate that verifies the signature")
	cmd.Flags().StringVar(&f.kind, "type", "hashedrekord", "entry kind: "+strings.Join(uploadKinds, ", "))
	cmd.Flags().StringVar(&f.pkiFormat, "pki-format", "x509", "with --type rekord: "+strings.Join(rekordFormats, ", "))
	cmd.Flags().StringVar(&f.entry, "entry", "", "a proposed entry (JSON) of any kind, sent as it is")
	cmd.Flags().StringVar(&f.aad, "aad", "", "with --type cose: the external additional authenticated data, base64")
	return cmd
}

// reportEntry prints a verified entry; with --output json, the LogEntry itself.
func reportEntry(cmd *cobra.Command, e *client.Entry, what string) error {
	format, _ := cmd.Flags().GetString("output")
	if format == "json" {
		return json.NewEncoder(cmd.OutOrStdout()).Encode(model.LogEntry{e.ID: e.LogEntryAnon})
	}
	body, _ := base64.StdEncoding.DecodeString(e.Body)
	var kind struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
	}
	json.Unmarshal(body, &kind) //nolint:errcheck
	_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s (verified: inclusion proof, checkpoint, signed entry timestamp)\nUUID:            %s\nIndex:           %d\nIntegrated time: %s\nKind:            %s %s\nTree size:       %d\n",
		what, e.ID, e.LogIndex, time.Unix(e.IntegratedTime, 0).UTC().Format(time.RFC3339), kind.Kind, kind.APIVersion, e.Verification.InclusionProof.TreeSize)
	if err == nil && e.Attestation != nil {
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "Attestation:     %d bytes stored (--output json has them)\n", len(e.Attestation.Data))
	}
	return err
}

func newLogGetCommand() *cobra.Command {
	var uuid string
	var index int64
	cmd := &cobra.Command{
		Use:   "get --uuid ID | --log-index N",
		Short: "Fetch and verify an entry",
		Example: `  signet log get --log-index 42
  signet log get --uuid 108e9186e8c5677a... --output json > entry.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (uuid == "") == (index < 0) {
				return errors.New("give exactly one of --uuid and --log-index")
			}
			lc, err := logClient(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := timeout(cmd)
			defer cancel()
			var e *client.Entry
			if uuid != "" {
				e, err = lc.GetByUUID(ctx, uuid)
			} else {
				e, err = lc.GetByIndex(ctx, index)
			}
			if err != nil {
				return notVerified(err)
			}
			return reportEntry(cmd, e, "found")
		},
	}
	cmd.Flags().StringVar(&uuid, "uuid", "", "64-hex UUID or 80-hex entry ID")
	cmd.Flags().Int64Var(&index, "log-index", -1, "log index")
	return cmd
}

func newLogSearchCommand() *cobra.Command {
	var sha, email, keyPath, pkiFormat, subject, operator string
	cmd := &cobra.Command{
		Use:   "search --sha HEX | --email ADDR | --public-key KEY.pem | --subject SAN",
		Short: "Find entries by artifact digest, identity or key",
		Example: `  signet log search --sha 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
  signet log search --email alice@example.com --sha sha256:9f86... --operator and
  signet log search --public-key ~/.ssh/id_ed25519.pub --pki-format ssh
  signet log search --email release@example.com   # also finds PGP keys' user IDs`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := model.SearchIndex{Hash: sha, Email: email, Subject: subject, Operator: operator}
			if keyPath != "" {
				data, err := os.ReadFile(keyPath)
				if err != nil {
					return err
				}
				q.PublicKey = &model.SearchIndexPublicKey{Format: pkiFormat, Content: data}
			}
			lc, err := logClient(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := timeout(cmd)
			defer cancel()
			ids, err := lc.Search(ctx, q)
			if err != nil {
				return err
			}
			sort.Strings(ids)
			if format, _ := cmd.Flags().GetString("output"); format == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(ids)
			}
			if len(ids) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no entries found")
			}
			for _, id := range ids {
				fmt.Fprintln(cmd.OutOrStdout(), id)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&sha, "sha", "", "artifact digest, hex or <alg>:<hex>")
	cmd.Flags().StringVar(&email, "email", "", "email in the signing certificate or PGP key")
	cmd.Flags().StringVar(&keyPath, "public-key", "", "key or certificate that signed, in --pki-format")
	cmd.Flags().StringVar(&pkiFormat, "pki-format", "x509", "format of --public-key: x509 (PEM key or certificate), ssh, pgp, minisign, or tuf (a root.json)")
	cmd.Flags().StringVar(&subject, "subject", "", "subject alternative name in the signing certificate")
	cmd.Flags().StringVar(&operator, "operator", "or", "combine criteria with and or or")
	return cmd
}

func newLogVerifyCommand() *cobra.Command {
	var entryPath string
	cmd := &cobra.Command{
		Use:   "verify --entry entry.json --log-key log.pub",
		Short: "Verify a saved entry offline against a pinned log key",
		Long: `verify checks, without contacting the log, that a saved entry (the JSON of
signet log get --output json, or a Rekor v1 API answer) carries a valid
inclusion proof, checkpoint signature and signed entry timestamp for the key.
Exit status 3 means it does not verify.`,
		Example: `  signet log get --log-index 42 --output json > entry.json
  signet log verify --entry entry.json --log-key log.pub`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pubs, err := pinnedLogKeys(cmd)
			if err != nil {
				return fmt.Errorf("offline verification needs a pinned key (--log-key, or pin the instance with signet init): %w", err)
			}
			data, err := os.ReadFile(entryPath)
			if err != nil {
				return err
			}
			var le model.LogEntry
			if err := json.Unmarshal(data, &le); err != nil || len(le) != 1 {
				return fmt.Errorf("%s is not a one-entry Rekor LogEntry", entryPath)
			}
			for id, anon := range le {
				e := &client.Entry{ID: id, LogEntryAnon: anon}
				if err := client.VerifyEntry(e, pubs...); err != nil {
					return &verifyError{err}
				}
				return report(cmd, map[string]any{"verified": true, "uuid": id, "logIndex": anon.LogIndex}, fmt.Sprintf("OK: entry %s at index %d verifies", id, anon.LogIndex))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&entryPath, "entry", "", "saved entry JSON (required)")
	cmd.MarkFlagRequired("entry") //nolint:errcheck
	return cmd
}

// logState remembers the last verified checkpoint per log, as an auditor
// keeps it, so the next info proves the log only grew.
type logState struct {
	Logs map[string]stateEntry `json:"logs"`
}

type stateEntry struct {
	Size      uint64    `json:"size"`
	RootHash  string    `json:"root_hash"`
	KeySHA256 string    `json:"key_sha256"`
	Seen      time.Time `json:"seen"`
	// Frozen marks a tree whose final checkpoint was proved consistent.
	Frozen bool `json:"frozen,omitempty"`
}

// proveSince checks a verified checkpoint of a tree ("": the active one)
// against the one seen before: same key, no shrinking, no fork, and a
// consistency proof when it grew. It says what it proved.
func proveSince(ctx context.Context, lc *client.Log, treeID string, prev stateEntry, cp note.Checkpoint, keyID string) (string, error) {
	if prev.KeySHA256 != keyID {
		return "", fmt.Errorf("the log key changed since %s (was %s, now %s)", prev.Seen.Format(time.RFC3339), prev.KeySHA256, keyID)
	}
	prevRoot, _ := hex.DecodeString(prev.RootHash)
	switch {
	case cp.Size < prev.Size:
		return "", fmt.Errorf("the log shrank from %d to %d entries", prev.Size, cp.Size)
	case cp.Size == prev.Size && !bytes.Equal(prevRoot, cp.RootHash):
		return "", fmt.Errorf("the root at size %d changed from %s to %x: the log forked", cp.Size, prev.RootHash, cp.RootHash)
	case cp.Size > prev.Size:
		if err := lc.ConsistencyInTree(ctx, treeID, prev.Size, cp.Size, prevRoot, cp.RootHash); err != nil {
			return "", err
		}
		return fmt.Sprintf("consistent with the checkpoint of size %d seen %s", prev.Size, prev.Seen.Format(time.RFC3339)), nil
	}
	return "unchanged since " + prev.Seen.Format(time.RFC3339), nil
}

func defaultStatePath() string {
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "signet", "log-state.json")
	}
	return ".signet-log-state.json"
}

func newLogInfoCommand() *cobra.Command {
	var statePath string
	cmd := &cobra.Command{
		Use:   "info",
		Short: "Show the log's verified checkpoint and prove it consistent with the last one seen",
		Example: `  signet log info
  signet log info --state ./audit-state.json --log-key log.pub`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lc, err := logClient(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := timeout(cmd)
			defer cancel()
			info, cp, err := lc.Info(ctx)
			if err != nil {
				return notVerified(err)
			}
			pub, err := lc.PublicKey(ctx)
			if err != nil {
				return notVerified(fmt.Errorf("the log key: %w", err))
			}
			keyID := keyFingerprint(pub)
			server, _ := cmd.Flags().GetString("server")
			logName := server + " " + info.TreeID
			state := logState{Logs: map[string]stateEntry{}}
			if data, err := os.ReadFile(statePath); err == nil {
				if err := json.Unmarshal(data, &state); err != nil {
					return fmt.Errorf("state file %s: %w", statePath, err)
				}
			}
			consistency := "first time this log is seen: checkpoint recorded"
			if prev, ok := state.Logs[logName]; ok {
				if consistency, err = proveSince(ctx, lc, "", prev, cp, keyID); err != nil {
					return notVerified(err)
				}
			}
			state.Logs[logName] = stateEntry{Size: cp.Size, RootHash: info.RootHash, KeySHA256: keyID, Seen: time.Now().UTC()}
			// A tree seen before that a key rotation froze since: its final
			// checkpoint must extend what was seen, under the same key.
			var frozen []string
			for _, sh := range info.InactiveShards {
				name := server + " " + sh.TreeID
				prev, ok := state.Logs[name]
				if !ok || prev.Frozen {
					continue
				}
				scp, spub, err := lc.VerifyShard(ctx, sh)
				if err != nil {
					return notVerified(fmt.Errorf("tree %s, seen before and now frozen by a key rotation: %w", sh.TreeID, err))
				}
				msg, err := proveSince(ctx, lc, sh.TreeID, prev, scp, keyFingerprint(spub))
				if err != nil {
					return notVerified(fmt.Errorf("frozen tree %s: %w", sh.TreeID, err))
				}
				state.Logs[name] = stateEntry{Size: scp.Size, RootHash: sh.RootHash, KeySHA256: prev.KeySHA256, Seen: time.Now().UTC(), Frozen: true}
				frozen = append(frozen, fmt.Sprintf("tree %s was frozen by a key rotation at size %d: %s", sh.TreeID, scp.Size, msg))
			}
			if len(frozen) > 0 {
				consistency += "\n" + strings.Join(frozen, "\n")
			}
			if err := writeState(statePath, state); err != nil {
				return err
			}
			return report(cmd, map[string]any{"treeID": info.TreeID, "treeSize": info.TreeSize, "rootHash": info.RootHash, "origin": cp.Origin, "consistency": consistency},
				fmt.Sprintf("Verified checkpoint\nOrigin:    %s\nTree size: %d\nRoot hash: %s\n%s", cp.Origin, info.TreeSize, info.RootHash, consistency))
		},
	}
	cmd.Flags().StringVar(&statePath, "state", defaultStatePath(), "where the last seen checkpoints are kept")
	return cmd
}

func keyFingerprint(pub crypto.PublicKey) string {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

func newLogConsistencyCommand() *cobra.Command {
	var from, to uint64
	var fromRoot, toRoot string
	cmd := &cobra.Command{
		Use:     "consistency --from SIZE --from-root HEX [--to SIZE --to-root HEX]",
		Short:   "Prove that an older tree is a prefix of a newer one",
		Example: `  signet log consistency --from 1000 --from-root 3a6f... (to the current, verified checkpoint)`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lc, err := logClient(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := timeout(cmd)
			defer cancel()
			oldRoot, err := hex.DecodeString(fromRoot)
			if err != nil || len(oldRoot) != 32 {
				return errors.New("--from-root must be 64 hex characters")
			}
			var newRoot []byte
			if to == 0 {
				_, cp, err := lc.Info(ctx)
				if err != nil {
					return notVerified(err)
				}
				to, newRoot = cp.Size, cp.RootHash
			} else if newRoot, err = hex.DecodeString(toRoot); err != nil || len(newRoot) != 32 {
				return errors.New("--to-root must be 64 hex characters when --to is given")
			}
			if err := lc.Consistency(ctx, from, to, oldRoot, newRoot); err != nil {
				return notVerified(err)
			}
			return report(cmd, map[string]any{"consistent": true, "from": from, "to": to}, fmt.Sprintf("OK: the tree of size %d is a prefix of the tree of size %d", from, to))
		},
	}
	cmd.Flags().Uint64Var(&from, "from", 0, "older tree size (required)")
	cmd.Flags().StringVar(&fromRoot, "from-root", "", "root hash of the older tree, hex (required)")
	cmd.Flags().Uint64Var(&to, "to", 0, "newer tree size (default: the current verified checkpoint)")
	cmd.Flags().StringVar(&toRoot, "to-root", "", "root hash of the newer tree, hex (with --to)")
	cmd.MarkFlagRequired("from")      //nolint:errcheck
	cmd.MarkFlagRequired("from-root") //nolint:errcheck
	return cmd
}
