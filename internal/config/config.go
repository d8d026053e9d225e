// Package config reads signet.yaml and SIGNET_* overrides. Unknown keys and
// bad values stop start-up with a message naming the key.
package config

import (
	"bytes"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"gopkg.in/yaml.v3"

	"github.com/signet-dev/signet/ca/fulcioapi"
	"github.com/signet-dev/signet/ca/identity"
	"github.com/signet-dev/signet/internal/sigalg"
	tlog "github.com/signet-dev/signet/log"
	"github.com/signet-dev/signet/log/ctapi"
	"github.com/signet-dev/signet/log/note"
	"github.com/signet-dev/signet/log/rekorapi"
	"github.com/signet-dev/signet/log/witness"
	"github.com/signet-dev/signet/timestamp"
	"github.com/signet-dev/signet/timestamp/tsaapi"
)

// Config is the whole server configuration; docs/configuration.md describes
// every field.
type Config struct {
	// Listen is the one HTTP listener for every component.
	Listen string `yaml:"listen"`
	// Hostname names this instance in checkpoints ("<hostname> - <treeID>").
	Hostname string `yaml:"hostname"`
	// PublicURL is how clients reach this instance (default http://<listen>);
	// it names the dev OIDC issuer and, later, the trust material's URLs.
	PublicURL string `yaml:"public_url"`
	// DataDir holds dev-mode state: managed PostgreSQL, generated keys.
	DataDir    string     `yaml:"data_dir"`
	Database   Database   `yaml:"database"`
	Components Components `yaml:"components"`
	Log        Log        `yaml:"log"`
	CA         CA         `yaml:"ca"`
	Timestamp  Timestamp  `yaml:"timestamp"`
	CT         CT         `yaml:"ct"`
	TUF        TUF        `yaml:"tuf"`
	HTTP       HTTP       `yaml:"http"`
	TLS        TLS        `yaml:"tls"`
	Metrics    Metrics    `yaml:"metrics"`
	Replicas   Replicas   `yaml:"replicas"`
	// MemoryLimitBytes is the Go runtime's soft memory limit; GOMEMLIMIT in
	// the environment wins over it.
	MemoryLimitBytes int64 `yaml:"memory_limit_bytes"`
}

// Replicas runs several signet-server processes on one database: one
// leads (holds the database's writer lease and serves every request), the
// others forward each request to it and take over when its lease expires.
type Replicas struct {
	// AdvertiseURL is where the other replicas reach this one (its own
	// address, never the load balancer's); set, this server is one of
	// several replicas. Empty (the default), a second server on the
	// database is refused.
	AdvertiseURL string `yaml:"advertise_url"`
	// LeaseSeconds is how long a leader that stopped renewing keeps the
	// lease: the failover gap after a leader dies is this plus the new
	// leader's start-up.
	LeaseSeconds int `yaml:"lease_seconds"`
}

// TLS serves the public listener over HTTPS (HTTP/2 and HTTP/1.1) instead
// of plain HTTP; leave it empty behind a reverse proxy that terminates TLS.
type TLS struct {
	// CertFile is PEM: the server's certificate first, then intermediates.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key of CertFile's first certificate. Both
	// files are reloaded when they change.
	KeyFile string `yaml:"key_file"`
}

// Enabled says whether the public listener speaks TLS.
func (t TLS) Enabled() bool { return t.CertFile != "" }

// Metrics places the Prometheus endpoint.
type Metrics struct {
	// Listen, when set, serves /metrics on this address only, off the
	// public listener.
	Listen string `yaml:"listen"`
	// Pprof also serves Go's profiles (/debug/pprof/) on Listen, which it
	// requires: never on the public listener. Off by default.
	Pprof bool `yaml:"pprof"`
}

// TUF configures the TUF repository that distributes trusted_root.json and
// signing_config.json to cosign and sigstore-go clients.
type TUF struct {
	// RootSigner signs the first root.json; once root.json exists it may be
	// left empty so the root key stays offline.
	RootSigner      string `yaml:"root_signer"`
	TargetsSigner   string `yaml:"targets_signer"`
	SnapshotSigner  string `yaml:"snapshot_signer"`
	TimestampSigner string `yaml:"timestamp_signer"`
}

// CT configures the RFC 6962 certificate-transparency log.
type CT struct {
	// Signer is the key URI of the CT log's ECDSA key.
	Signer string `yaml:"signer"`
	// Roots are PEM files of the roots accepted chains must end in
	// (default: the CA's root).
	Roots []string `yaml:"roots"`
	// MaxRequestBytes bounds an add-chain body.
	MaxRequestBytes int64 `yaml:"max_request_bytes"`
	// MaxGetEntries bounds the entries one get-entries returns.
	MaxGetEntries int `yaml:"max_get_entries"`
	// Witness has the CT log's checkpoints (its tiles') cosigned.
	Witness Witness `yaml:"witness"`
}

// Timestamp configures the RFC 3161 timestamp authority.
type Timestamp struct {
	// Signer is the key URI of the TSA signing certificate's key.
	Signer string `yaml:"signer"`
	// Chain is a PEM file: the TSA signing certificate first, the root last.
	Chain string `yaml:"chain"`
	// DefaultPolicy is the policy OID of tokens whose request names none.
	DefaultPolicy string `yaml:"default_policy"`
	// AcceptedPolicies may be requested besides the default.
	AcceptedPolicies []string `yaml:"accepted_policies"`
	// Accuracy is the stated accuracy of genTime (Go duration; 0 states none).
	Accuracy string `yaml:"accuracy"`
	// IncludeChain puts the whole chain in tokens requested with certReq.
	IncludeChain bool `yaml:"include_chain"`
	// AllowExtensions copies request extensions into tokens instead of refusing them.
	AllowExtensions bool `yaml:"allow_extensions"`
	// MaxRequestBytes bounds a DER request.
	MaxRequestBytes int64 `yaml:"max_request_bytes"`
}

// CA configures the certificate authority.
type CA struct {
	// Signer is the key URI of the issuing certificate's key.
	Signer string `yaml:"signer"`
	// Chain is a PEM file: the issuing certificate first, the root last.
	Chain string `yaml:"chain"`
	// Validity is the leaf lifetime (Go duration, default 10m).
	Validity string `yaml:"validity"`
	// Issuers are the trusted OIDC issuers.
	Issuers []identity.IssuerConfig `yaml:"issuers"`
	// CIProviders adds claim templates for ci-provider issuers.
	CIProviders map[string]identity.CIProvider `yaml:"ci_providers"`
	// SigningAlgorithms limits the client key and digest pairs.
	SigningAlgorithms []sigalg.Algorithm `yaml:"signing_algorithms"`
	// MaxRequestBytes bounds a signing request body.
	MaxRequestBytes int64 `yaml:"max_request_bytes"`
	// CT is where precertificates are logged: "" means this instance's CT
	// log, "none" issues certificates without SCTs (an explicit choice), a
	// URL names a remote RFC 6962 log.
	CT string `yaml:"ct"`
	// CTPublicKey is a PEM file of the remote CT log's key (with a URL in CT).
	CTPublicKey string `yaml:"ct_public_key"`
}

// ValidityDuration parses CA.Validity.
// Policies parses timestamp.default_policy and timestamp.accepted_policies.
func (t Timestamp) Policies() (def asn1.ObjectIdentifier, accepted []asn1.ObjectIdentifier, err error) {
	if def, err = ParseOID(t.DefaultPolicy); err != nil {
		return nil, nil, fmt.Errorf("timestamp.default_policy: %w", err)
	}
	for _, p := range t.AcceptedPolicies {
		oid, err := ParseOID(p)
		if err != nil {
			return nil, nil, fmt.Errorf("timestamp.accepted_policies: %w", err)
		}
		accepted = append(accepted, oid)
	}
	return def, accepted, nil
}

// AccuracyDuration parses timestamp.accuracy (0 to 1h).
func (t Timestamp) AccuracyDuration() (time.Duration, error) {
	d, err := time.ParseDuration(t.Accuracy)
	if err != nil || d < 0 || d > time.Hour {
		return 0, fmt.Errorf("timestamp.accuracy %q must be a duration between 0 and 1h", t.Accuracy)
	}
	return d, nil
}

func (c CA) ValidityDuration() (time.Duration, error) {
	d, err := time.ParseDuration(c.Validity)
	if err != nil {
		return 0, fmt.Errorf("ca.validity %q: %w", c.Validity, err)
	}
	if d < time.Minute || d > 24*time.Hour {
		return 0, fmt.Errorf("ca.validity %s must be between 1m and 24h", d)
	}
	return d, nil
}

// Database says where PostgreSQL is.
type Database struct {
	// URL is a PostgreSQL connection URL; empty in dev mode starts a managed cluster.
	URL string `yaml:"url"`
}

// Components turns each service on or off.
type Components struct {
	Log *bool `yaml:"log"`
	// CA defaults to on in dev mode, and elsewhere when ca.signer is set.
	CA *bool `yaml:"ca"`
	// Timestamp defaults to on in dev mode, and elsewhere when timestamp.signer is set.
	Timestamp *bool `yaml:"timestamp"`
	// CT defaults to on in dev mode, and elsewhere when ct.signer is set.
	CT *bool `yaml:"ct"`
	// TUF defaults to on in dev mode, and elsewhere when tuf.targets_signer is set.
	TUF *bool `yaml:"tuf"`
}

// Log configures the transparency log.
type Log struct {
	// Signer is the key URI of the log's ECDSA key.
	Signer string `yaml:"signer"`
	// EntryTypes limits which kinds may be inserted (reads always work).
	EntryTypes []string `yaml:"entry_types"`
	// MaxRequestBytes bounds a request body (413 above it).
	MaxRequestBytes int64 `yaml:"max_request_bytes"`
	// MaxSearchResults bounds the entries one index search returns.
	MaxSearchResults int `yaml:"max_search_results"`
	// MaxAttestationBytes bounds the attestation stored with an entry
	// (intoto, cose): larger ones are logged without it.
	MaxAttestationBytes int `yaml:"max_attestation_bytes"`
	// MaxBatch bounds the appends integrated together.
	MaxBatch int `yaml:"max_batch"`
	// QueueSize bounds the appends waiting for a batch (503 above it).
	QueueSize int `yaml:"queue_size"`
	// TileCacheBytes bounds the decoded tiles kept for proofs, shared by
	// every log tree of the instance.
	TileCacheBytes int64 `yaml:"tile_cache_bytes"`
	// V2 is the Rekor v2 log beside the v1 one.
	V2 LogV2 `yaml:"v2"`
	// Witness has the v1 log's checkpoints (its tiles') cosigned.
	Witness Witness `yaml:"witness"`
}

// LogV2 is the Rekor v2 log: rekor-tiles' write API on a tree and key of
// its own.
type LogV2 struct {
	// Enabled serves POST /api/v2/log/entries and lists the v2 log in
	// signing_config.json, so cosign v3 and signet sign through it.
	Enabled bool `yaml:"enabled"`
	// Signer is the key URI of the v2 log's Ed25519 or ECDSA P-256 key,
	// not the v1 log's. Witnesses built on x/mod's notes (litewitness)
	// check Ed25519 checkpoints only.
	Signer string `yaml:"signer"`
	// Witness has the v2 log's checkpoints cosigned by witnesses.
	Witness Witness `yaml:"witness"`
}

// Witness has a log's checkpoints cosigned by C2SP tlog-witness witnesses
// before its tiles serve them (log.witness, log.v2.witness, ct.witness).
type Witness struct {
	// Witnesses are asked in every round; none (the default) turns
	// witnessing off.
	Witnesses []WitnessEndpoint `yaml:"witnesses"`
	// Quorum is how many cosignatures a checkpoint needs to be published
	// (default 1); 0 publishes each with whatever cosignatures came in time.
	Quorum *int `yaml:"quorum"`
	// TimeoutSeconds bounds one request to one witness (default 5).
	TimeoutSeconds int `yaml:"timeout_seconds"`
	// IntervalSeconds is how often a new checkpoint is sent (default 1).
	IntervalSeconds int `yaml:"interval_seconds"`
}

// WitnessEndpoint is one witness.
type WitnessEndpoint struct {
	// URL is its tlog-witness prefix (add-checkpoint is POSTed under it).
	URL string `yaml:"url"`
	// Key is its verifier key, a C2SP vkey: "<name>+<hash>+<base64 key>",
	// Ed25519 (type 0x01) or cosignature/v1 (0x04).
	Key string `yaml:"key"`
}

// defaultWitness is every log's witnessing default: off, with the
// component's timeout and interval.
func defaultWitness() Witness {
	return Witness{
		TimeoutSeconds:  int(witness.DefaultTimeout / time.Second),
		IntervalSeconds: int(witness.DefaultInterval / time.Second),
	}
}

// MaxWitnesses bounds a log's witnesses: a cosigned checkpoint
// carries the log's signature and one line per witness, and note.Open
// reads at most note.MaxSignatures.
const MaxWitnesses = note.MaxSignatures - 1

// QuorumOrDefault is the quorum in effect.
func (w Witness) QuorumOrDefault() int {
	if w.Quorum != nil {
		return *w.Quorum
	}
	return 1
}

// HTTP bounds the listener.
type HTTP struct {
	// RequestTimeoutSeconds bounds the handling of one request.
	RequestTimeoutSeconds int `yaml:"request_timeout_seconds"`
	// MaxBodyBytesInFlight bounds the bytes of request bodies held at once,
	// server-wide (503 above it, before the body is read).
	MaxBodyBytesInFlight int64 `yaml:"max_body_bytes_in_flight"`
}

// DefaultReplicaLeaseSeconds is replicas.lease_seconds' default: a dead
// leader's lease expires within it, and a replica leads about a second
// later, inside the 5 s failover the design promises.
const DefaultReplicaLeaseSeconds = 3

// Defaults are the values used where the file is silent.
func Defaults() Config {
	return Config{
		Listen:  "127.0.0.1:8080",
		DataDir: "./.signet",
		// The components' own defaults, so each number is written once.
		Log: Log{
			EntryTypes:          []string{"hashedrekord", "dsse", "rekord", "rfc3161", "cose", "intoto", "tuf", "alpine", "helm", "rpm", "jar"},
			MaxRequestBytes:     rekorapi.DefaultLimits.MaxBodyBytes,
			MaxSearchResults:    rekorapi.DefaultLimits.MaxSearchResults,
			MaxAttestationBytes: rekorapi.DefaultLimits.MaxAttestationBytes,
			MaxBatch:            tlog.DefaultMaxBatch,
			QueueSize:           tlog.DefaultQueueSize,
			TileCacheBytes:      tlog.DefaultTileCacheBytes,
			V2:                  LogV2{Witness: defaultWitness()},
			Witness:             defaultWitness(),
		},
		MemoryLimitBytes: 448 << 20,
		CA:               CA{Validity: "10m", MaxRequestBytes: fulcioapi.DefaultMaxBodyBytes},
		CT:               CT{MaxRequestBytes: ctapi.DefaultLimits.MaxBodyBytes, MaxGetEntries: ctapi.DefaultLimits.MaxGetEntries, Witness: defaultWitness()},
		Timestamp: Timestamp{
			DefaultPolicy: timestamp.SigstorePolicy.String(), Accuracy: "1s", MaxRequestBytes: tsaapi.DefaultLimits.MaxBodyBytes,
		},
		HTTP:     HTTP{RequestTimeoutSeconds: 30, MaxBodyBytesInFlight: 256 << 20},
		Replicas: Replicas{LeaseSeconds: DefaultReplicaLeaseSeconds},
	}
}

// CAEnabled reports whether the CA runs.
func (c Config) CAEnabled(dev bool) bool {
	if c.Components.CA != nil {
		return *c.Components.CA
	}
	return dev || c.CA.Signer != ""
}

// CTEnabled reports whether the CT log runs.
func (c Config) CTEnabled(dev bool) bool {
	if c.Components.CT != nil {
		return *c.Components.CT
	}
	return dev || c.CT.Signer != ""
}

// TimestampEnabled reports whether the TSA runs.
func (c Config) TimestampEnabled(dev bool) bool {
	if c.Components.Timestamp != nil {
		return *c.Components.Timestamp
	}
	return dev || c.Timestamp.Signer != ""
}

// TUFEnabled reports whether the TUF repository is published.
func (c Config) TUFEnabled(dev bool) bool {
	if c.Components.TUF != nil {
		return *c.Components.TUF
	}
	return dev || c.TUF.TargetsSigner != ""
}

// LargestRequestBody is the largest request body any enabled endpoint
// accepts: the server's body budget must hold at least one such request.
func (c Config) LargestRequestBody(dev bool) int64 {
	var n int64
	if c.LogEnabled() {
		n = max(n, c.Log.MaxRequestBytes)
	}
	if c.CAEnabled(dev) {
		n = max(n, c.CA.MaxRequestBytes)
	}
	if c.CTEnabled(dev) {
		n = max(n, c.CT.MaxRequestBytes)
	}
	if c.TimestampEnabled(dev) {
		n = max(n, c.Timestamp.MaxRequestBytes)
	}
	return n
}

// LogEnabled reports whether the log component runs (default on).
func (c Config) LogEnabled() bool { return c.Components.Log == nil || *c.Components.Log }

// ProductionSettings names the settings of c that only a production instance
// has: a database of its own and the keys, chains and OIDC issuers that
// clients trust. Dev mode makes all of these itself under its data
// directory, so any of them set means a dev instance would put its any-email
// OIDC issuer beside production keys or data. A memory: signer is a
// throwaway key and does not count. Empty for a configuration dev mode may
// run with.
func (c Config) ProductionSettings() []string {
	var set []string
	for _, s := range []struct{ key, value string }{
		{"database.url", c.Database.URL},
		{"log.signer", c.Log.Signer},
		{"log.v2.signer", c.Log.V2.Signer},
		{"ca.signer", c.CA.Signer},
		{"ca.chain", c.CA.Chain},
		{"timestamp.signer", c.Timestamp.Signer},
		{"timestamp.chain", c.Timestamp.Chain},
		{"ct.signer", c.CT.Signer},
		{"tuf.root_signer", c.TUF.RootSigner},
		{"tuf.targets_signer", c.TUF.TargetsSigner},
		{"tuf.snapshot_signer", c.TUF.SnapshotSigner},
		{"tuf.timestamp_signer", c.TUF.TimestampSigner},
	} {
		if s.value != "" && s.value != "memory:" {
			set = append(set, s.key)
		}
	}
	if len(c.CA.Issuers) > 0 {
		set = append(set, "ca.issuers")
	}
	return set
}

// Load reads path (empty: defaults only), then applies environment overrides.
func Load(path string, getenv func(string) string) (Config, error) {
	cfg := Defaults()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("reading config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := applyEnv(&cfg, getenv); err != nil {
		return cfg, err
	}
	return cfg, nil
}

func applyEnv(cfg *Config, getenv func(string) string) error {
	if getenv == nil {
		getenv = os.Getenv
	}
	if v := getenv("DATABASE_URL"); v != "" {
		cfg.Database.URL = v
	}
	str := map[string]*string{
		"SIGNET_LISTEN":                 &cfg.Listen,
		"SIGNET_HOSTNAME":               &cfg.Hostname,
		"SIGNET_DATA_DIR":               &cfg.DataDir,
		"SIGNET_DATABASE_URL":           &cfg.Database.URL,
		"SIGNET_LOG_SIGNER":             &cfg.Log.Signer,
		"SIGNET_LOG_V2_SIGNER":          &cfg.Log.V2.Signer,
		"SIGNET_PUBLIC_URL":             &cfg.PublicURL,
		"SIGNET_CA_SIGNER":              &cfg.CA.Signer,
		"SIGNET_CA_CHAIN":               &cfg.CA.Chain,
		"SIGNET_TSA_SIGNER":             &cfg.Timestamp.Signer,
		"SIGNET_CT_SIGNER":              &cfg.CT.Signer,
		"SIGNET_TSA_CHAIN":              &cfg.Timestamp.Chain,
		"SIGNET_METRICS_LISTEN":         &cfg.Metrics.Listen,
		"SIGNET_TLS_CERT_FILE":          &cfg.TLS.CertFile,
		"SIGNET_TLS_KEY_FILE":           &cfg.TLS.KeyFile,
		"SIGNET_REPLICAS_ADVERTISE_URL": &cfg.Replicas.AdvertiseURL,
	}
	for k, p := range str {
		if v := getenv(k); v != "" {
			*p = v
		}
	}
	if v := getenv("SIGNET_LOG_ENTRY_TYPES"); v != "" {
		cfg.Log.EntryTypes = strings.Split(v, ",")
	}
	if v := getenv("SIGNET_LOG_MAX_REQUEST_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("SIGNET_LOG_MAX_REQUEST_BYTES=%q is not a number", v)
		}
		cfg.Log.MaxRequestBytes = n
	}
	return nil
}

// Validate checks the values that need no I/O.
func (c Config) Validate(dev bool) error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen %q: want host:port: %w", c.Listen, err)
	}
	if !dev && c.Database.URL == "" {
		return errors.New("database.url (or DATABASE_URL) is required outside dev mode")
	}
	if c.LogEnabled() && !dev && c.Log.Signer == "" {
		return errors.New("log.signer is required outside dev mode: a key URI such as file:///etc/signet/log.pem?password-env=SIGNET_LOG_KEY_PASSWORD")
	}
	if c.Log.V2.Enabled && !c.LogEnabled() {
		return errors.New("log.v2.enabled needs the log running (it is turned off)")
	}
	if c.Log.V2.Enabled && !dev && c.Log.V2.Signer == "" {
		return errors.New("log.v2.signer is required outside dev mode: a key URI of an Ed25519 or ECDSA P-256 key of its own, such as file:///etc/signet/log-v2.pem?password-env=SIGNET_LOG_V2_KEY_PASSWORD")
	}
	if c.Log.V2.Enabled && !dev && c.PublicURL == "" {
		return errors.New("log.v2.enabled needs public_url outside dev mode: the v2 log signs its checkpoints as the public URL's hostname, for good")
	}
	if c.Log.V2.Signer != "" && c.Log.V2.Signer == c.Log.Signer {
		return errors.New("log.v2.signer names the v1 log's key: the v2 log needs a key of its own (clients tell the logs apart by their key's hash)")
	}
	if strings.ContainsAny(c.Hostname, " \n+") {
		return fmt.Errorf("hostname %q must not contain spaces, newlines or '+'", c.Hostname)
	}
	if c.Log.MaxRequestBytes < 1024 || c.Log.MaxRequestBytes > 1<<30 {
		return fmt.Errorf("log.max_request_bytes %d must be between 1024 and 1073741824", c.Log.MaxRequestBytes)
	}
	if c.Log.MaxSearchResults < 1 || c.Log.MaxSearchResults > 100000 {
		return fmt.Errorf("log.max_search_results %d must be between 1 and 100000", c.Log.MaxSearchResults)
	}
	if c.Log.MaxAttestationBytes < 1 || c.Log.MaxAttestationBytes > 1<<30 {
		return fmt.Errorf("log.max_attestation_bytes %d must be between 1 and 1073741824", c.Log.MaxAttestationBytes)
	}
	if c.Log.MaxBatch < 1 || c.Log.MaxBatch > 10000 {
		return fmt.Errorf("log.max_batch %d must be between 1 and 10000", c.Log.MaxBatch)
	}
	if c.Log.QueueSize < 1 || c.Log.QueueSize > 1000000 {
		return fmt.Errorf("log.queue_size %d must be between 1 and 1000000", c.Log.QueueSize)
	}
	if n := c.Log.TileCacheBytes; n < 1<<20 || n > 64<<30 {
		return fmt.Errorf("log.tile_cache_bytes %d must be between 1048576 and 68719476736", n)
	}
	if n := c.MemoryLimitBytes; n < 256<<20 || n > 1<<40 {
		return fmt.Errorf("memory_limit_bytes %d must be between 268435456 (256 MiB) and 1099511627776 (1 TiB)", n)
	}
	if c.MemoryLimitBytes < c.Log.TileCacheBytes+c.HTTP.MaxBodyBytesInFlight {
		return fmt.Errorf("memory_limit_bytes %d is less than log.tile_cache_bytes (%d) and http.max_body_bytes_in_flight (%d) together: the server would spend its time collecting garbage", c.MemoryLimitBytes, c.Log.TileCacheBytes, c.HTTP.MaxBodyBytesInFlight)
	}
	if c.HTTP.RequestTimeoutSeconds < 1 || c.HTTP.RequestTimeoutSeconds > 3600 {
		return fmt.Errorf("http.request_timeout_seconds %d must be between 1 and 3600", c.HTTP.RequestTimeoutSeconds)
	}
	if n := c.HTTP.MaxBodyBytesInFlight; n < 1<<20 || n > 64<<30 {
		return fmt.Errorf("http.max_body_bytes_in_flight %d must be between 1048576 and 68719476736", n)
	}
	if largest := c.LargestRequestBody(dev); c.HTTP.MaxBodyBytesInFlight < largest {
		return fmt.Errorf("http.max_body_bytes_in_flight %d is less than the largest request body an endpoint accepts (%d): such a request could never be admitted", c.HTTP.MaxBodyBytesInFlight, largest)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return errors.New("tls.cert_file and tls.key_file go together: set both to serve HTTPS, or neither")
	}
	if c.TLS.Enabled() && strings.HasPrefix(c.PublicURL, "http://") {
		return fmt.Errorf("public_url %q is http:// but tls.cert_file makes the listener speak HTTPS only", c.PublicURL)
	}
	if c.Replicas.AdvertiseURL != "" {
		u, err := url.Parse(c.Replicas.AdvertiseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.User != nil {
			return fmt.Errorf("replicas.advertise_url %q: want this replica's own http(s)://host:port, with no path", c.Replicas.AdvertiseURL)
		}
		if dev {
			return errors.New("replicas.advertise_url: replicas share one external database; dev mode runs one server on its own PostgreSQL")
		}
		if c.Hostname == "" {
			return errors.New("replicas.advertise_url needs hostname: every replica must sign checkpoints with the same origin, and the machine's own name differs between replicas")
		}
		if strings.TrimSuffix(c.Replicas.AdvertiseURL, "/") == strings.TrimSuffix(c.PublicURL, "/") {
			return fmt.Errorf("replicas.advertise_url %q is public_url: it must be this replica's own address (in Kubernetes, its pod IP), where the other replicas reach it directly, never the load balancer", c.Replicas.AdvertiseURL)
		}
	}
	if n := c.Replicas.LeaseSeconds; n < 1 || n > 300 {
		return fmt.Errorf("replicas.lease_seconds %d must be between 1 and 300", n)
	}
	if c.Metrics.Pprof && c.Metrics.Listen == "" {
		return errors.New("metrics.pprof needs metrics.listen: profiles are served only off the public listener")
	}
	if c.Metrics.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			return fmt.Errorf("metrics.listen %q: want host:port: %w", c.Metrics.Listen, err)
		}
		// Port 0 picks a free port for each: never the same listener.
		if _, port, _ := net.SplitHostPort(c.Listen); c.Metrics.Listen == c.Listen && port != "0" {
			return fmt.Errorf("metrics.listen %q is the public listener; leave metrics.listen empty to serve /metrics there", c.Metrics.Listen)
		}
	}
	if c.CAEnabled(dev) {
		if c.CA.Signer == "" && !dev || c.CA.Chain == "" && c.CA.Signer != "" && c.CA.Signer != "memory:" && !strings.HasPrefix(c.CA.Signer, "pkcs11:") {
			return errors.New("the CA needs ca.signer (key URI) and ca.chain (PEM, issuing certificate first; a PKCS#11 token may hold the issuing certificate itself, a memory: signer in dev mode needs none); set components.ca: false to run without the CA")
		}
		if _, err := c.CA.ValidityDuration(); err != nil {
			return err
		}
		if c.CA.MaxRequestBytes < 1024 || c.CA.MaxRequestBytes > 16<<20 {
			return fmt.Errorf("ca.max_request_bytes %d must be between 1024 and 16777216", c.CA.MaxRequestBytes)
		}
		switch {
		case c.CA.CT != "" && c.CA.CT != "none":
			u, err := url.Parse(c.CA.CT)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("ca.ct %q: use \"none\", leave it empty for this instance's CT log, or give a remote log's http(s) URL", c.CA.CT)
			}
			if c.CA.CTPublicKey == "" {
				return errors.New("ca.ct names a remote CT log: set ca.ct_public_key to its PEM public key so SCTs are verified")
			}
		case c.CA.CT == "" && !c.CTEnabled(dev):
			return errors.New("the CA needs a CT log for SCTs: configure ct.signer (or components.ct: true), or set ca.ct: none to issue certificates without SCTs")
		}
		if !dev && len(c.CA.Issuers) == 0 {
			return errors.New("ca.issuers is empty: the CA would trust no identity; add your OIDC issuers, or set components.ca: false to run without the CA")
		}
	}
	if c.TimestampEnabled(dev) {
		if !dev && (c.Timestamp.Signer == "" || c.Timestamp.Chain == "") || dev && c.Timestamp.Signer != "" && c.Timestamp.Signer != "memory:" && c.Timestamp.Chain == "" {
			return errors.New("the timestamp authority needs timestamp.signer (key URI) and timestamp.chain (PEM, signing certificate first); only a memory: signer in dev mode may go without a chain; set components.timestamp: false to run without the TSA")
		}
		if _, err := c.Timestamp.AccuracyDuration(); err != nil {
			return err
		}
		if c.Timestamp.MaxRequestBytes < 256 || c.Timestamp.MaxRequestBytes > 1<<20 {
			return fmt.Errorf("timestamp.max_request_bytes %d must be between 256 and 1048576", c.Timestamp.MaxRequestBytes)
		}
		if _, _, err := c.Timestamp.Policies(); err != nil {
			return err
		}
	}
	if c.CTEnabled(dev) {
		if !dev && c.CT.Signer == "" {
			return errors.New("the CT log needs ct.signer (key URI of an ECDSA key); set components.ct: false to run without it")
		}
		if c.CT.MaxRequestBytes < 1024 || c.CT.MaxRequestBytes > 16<<20 {
			return fmt.Errorf("ct.max_request_bytes %d must be between 1024 and 16777216", c.CT.MaxRequestBytes)
		}
		if c.CT.MaxGetEntries < 1 || c.CT.MaxGetEntries > 10000 {
			return fmt.Errorf("ct.max_get_entries %d must be between 1 and 10000", c.CT.MaxGetEntries)
		}
		if len(c.CT.Roots) == 0 && !c.CAEnabled(dev) {
			return errors.New("the CT log needs ct.roots when this instance runs no CA")
		}
	}
	if c.TUFEnabled(dev) && !dev && (c.TUF.TargetsSigner == "" || c.TUF.SnapshotSigner == "" || c.TUF.TimestampSigner == "") {
		return errors.New("the TUF repository needs tuf.targets_signer, tuf.snapshot_signer and tuf.timestamp_signer (key URIs), and tuf.root_signer until root.json exists; set components.tuf: false to run without it")
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" && u.Path != "/" {
			return fmt.Errorf("public_url %q must be http(s)://host[:port] without a path", c.PublicURL)
		}
	}
	if len(c.Log.EntryTypes) == 0 {
		return errors.New("log.entry_types must name at least one kind")
	}
	for _, w := range []struct {
		key     string
		w       Witness
		enabled bool
		off     string
	}{
		{"log.witness", c.Log.Witness, c.LogEnabled(), "the log is turned off (components.log)"},
		{"log.v2.witness", c.Log.V2.Witness, c.Log.V2.Enabled, "log.v2.enabled is off"},
		{"ct.witness", c.CT.Witness, c.CTEnabled(dev), "the CT log is turned off"},
	} {
		if err := w.w.validate(w.key, w.enabled, w.off); err != nil {
			return err
		}
	}
	return nil
}

// validate checks the witnesses of the log configured at key, which runs
// if enabled (off says why not).
func (w Witness) validate(key string, enabled bool, off string) error {
	if len(w.Witnesses) == 0 {
		if w.Quorum != nil && *w.Quorum > 0 {
			return fmt.Errorf("%s.quorum is %d but no witnesses are listed", key, *w.Quorum)
		}
		return nil
	}
	if !enabled {
		return fmt.Errorf("%s lists witnesses but %s", key, off)
	}
	if len(w.Witnesses) > MaxWitnesses {
		return fmt.Errorf("%s lists %d witnesses, more than %d", key, len(w.Witnesses), MaxWitnesses)
	}
	seen := map[string]bool{}
	for i, e := range w.Witnesses {
		u, err := url.Parse(e.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("%s.witnesses[%d].url %q must be an http(s) URL without a query or fragment (add-checkpoint is POSTed under it)", key, i, e.URL)
		}
		v, err := fnote.NewVerifierForCosignatureV1(e.Key)
		if err != nil {
			return fmt.Errorf("%s.witnesses[%d].key %q is not a witness verifier key (<name>+<hash>+<base64 of an Ed25519 key>): %w", key, i, e.Key, err)
		}
		// A witness counts once towards the quorum: by name, and by key
		// (the base64 after the second '+', which may itself hold '+', of
		// the type byte and the key, in either type).
		_, rest, _ := strings.Cut(e.Key, "+")
		_, b64, _ := strings.Cut(rest, "+")
		raw, _ := base64.StdEncoding.DecodeString(b64) // checked by the verifier
		if raw[0] != 0x01 && raw[0] != 0x04 {
			// formats also reads ML-DSA keys, whose 3 KB cosignatures would
			// soon make a note larger than note.MaxSize.
			return fmt.Errorf("%s.witnesses[%d].key %q is not an Ed25519 witness key (type 0x01 or cosignature/v1 0x04)", key, i, e.Key)
		}
		for _, id := range []string{"name " + v.Name(), "key " + base64.StdEncoding.EncodeToString(raw[1:])} {
			if seen[id] {
				return fmt.Errorf("%s.witnesses[%d]: witness %s is listed twice: it would count twice towards the quorum", key, i, id)
			}
			seen[id] = true
		}
	}
	if q := w.QuorumOrDefault(); q < 0 || q > len(w.Witnesses) {
		return fmt.Errorf("%s.quorum %d must be between 0 and the %d witnesses listed", key, q, len(w.Witnesses))
	}
	if w.TimeoutSeconds < 1 || w.TimeoutSeconds > 60 {
		return fmt.Errorf("%s.timeout_seconds %d must be between 1 and 60", key, w.TimeoutSeconds)
	}
	if w.IntervalSeconds < 1 || w.IntervalSeconds > 3600 {
		return fmt.Errorf("%s.interval_seconds %d must be between 1 and 3600", key, w.IntervalSeconds)
	}
	return nil
}

// ParseOID reads a dotted object identifier.
func ParseOID(s string) (asn1.ObjectIdentifier, error) {
	var oid asn1.ObjectIdentifier
	parts := strings.Split(s, ".")
	if len(parts) < 2 || len(parts) > 128 {
		return nil, fmt.Errorf("%q is not a dotted object identifier", s)
	}
	for _, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || strconv.Itoa(n) != p {
			return nil, fmt.Errorf("%q is not a dotted object identifier", s)
		}
		oid = append(oid, n)
	}
	return oid, nil
}
