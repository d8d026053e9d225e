// Package server wires the configured components onto one HTTP handler:
// cmd/signet-server and the end-to-end tests both start Signet through it.
package server

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-chi/chi/v5"
	ct "github.com/google/certificate-transparency-go"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/signet-dev/signet/ca"
	"github.com/signet-dev/signet/ca/devoidc"
	"github.com/signet-dev/signet/ca/fulcioapi"
	"github.com/signet-dev/signet/ca/identity"
	"github.com/signet-dev/signet/explorer"
	"github.com/signet-dev/signet/internal/audit"
	"github.com/signet-dev/signet/internal/bootstrap"
	"github.com/signet-dev/signet/internal/certfiles"
	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/internal/db"
	"github.com/signet-dev/signet/internal/httpbody"
	"github.com/signet-dev/signet/internal/httpjson"
	"github.com/signet-dev/signet/internal/keys"
	"github.com/signet-dev/signet/internal/lease"
	"github.com/signet-dev/signet/internal/requestid"
	"github.com/signet-dev/signet/internal/rotation"
	"github.com/signet-dev/signet/internal/sigalg"
	tlog "github.com/signet-dev/signet/log"
	"github.com/signet-dev/signet/log/ctapi"
	"github.com/signet-dev/signet/log/pgstore"
	"github.com/signet-dev/signet/log/rekorapi"
	"github.com/signet-dev/signet/log/rekorv2"
	"github.com/signet-dev/signet/log/tiles"
	"github.com/signet-dev/signet/log/tilesapi"
	"github.com/signet-dev/signet/log/witness"
	"github.com/signet-dev/signet/timestamp"
	"github.com/signet-dev/signet/timestamp/tsaapi"
	"github.com/signet-dev/signet/trust"
	"github.com/signet-dev/signet/trust/tuf"
	"github.com/signet-dev/signet/types"
	"github.com/signet-dev/signet/types/alpine"
	"github.com/signet-dev/signet/types/cose"
	"github.com/signet-dev/signet/types/dsse"
	"github.com/signet-dev/signet/types/hashedrekord"
	"github.com/signet-dev/signet/types/helm"
	"github.com/signet-dev/signet/types/intoto"
	"github.com/signet-dev/signet/types/jar"
	"github.com/signet-dev/signet/types/rekord"
	"github.com/signet-dev/signet/types/rfc3161"
	"github.com/signet-dev/signet/types/rpm"
	tuftype "github.com/signet-dev/signet/types/tuf"
)

// Server is a running Signet instance minus its listener.
type Server struct {
	cfg     config.Config
	dev     bool
	logger  *slog.Logger
	cluster *db.Cluster
	pool    *pgxpool.Pool
	// devKeys are dev mode's keys and chains (bootstrap.Make).
	devKeys bootstrap.Instance
	// trees is the logs' storage in the same database.
	trees *pgstore.Store
	log   *tlog.Log
	rekor *rekorapi.API
	// The Rekor v2 log (log.v2.enabled), its API and key.
	logV2         *tlog.Log
	rekorV2       *rekorv2.API
	rekorV2Signer crypto.Signer
	handler       http.Handler

	ca        *fulcioapi.API
	caChain   []*x509.Certificate
	caAudit   *audit.Writer
	devIssuer *devoidc.Issuer

	tsaChain []*x509.Certificate
	tsaAudit *audit.Writer

	authority *ca.CA
	ctLog     *ctapi.CT
	ctEngine  *tlog.Log
	metrics   *tlog.Metrics
	tileCache *tiles.Cache

	metricsHandler http.Handler
	gatherer       prometheus.Gatherer
	// tlsCert is the public listener's certificate (nil without tls.*).
	tlsCert *certfiles.Pair

	rekorSigner crypto.Signer
	getenv      func(string) string
	stopTUF     context.CancelFunc
	// lease is the database's writer lease, held while the server runs.
	lease *lease.Lease
	// stopWitnessing stops each log's witnessing rounds and waits for them.
	stopWitnessing []func()
	witnessMetrics *witness.Metrics
}

// Options are how the process was started.
type Options struct {
	// Dev enables dev mode: managed PostgreSQL, generated keys, memory: keys.
	Dev    bool
	Logger *slog.Logger
	Getenv func(string) string
	// LeaseWait bounds the wait for the database's writer lease another
	// server holds (default: replicas.lease_seconds and two seconds, a
	// killed holder's expiry).
	LeaseWait time.Duration
	// Lease, when set, is the writer lease the caller already holds (a
	// Replica taking over): New takes none and gives it up at Close.
	Lease *lease.Lease
}

// New starts every configured component. On error everything already
// started is stopped again.
func New(ctx context.Context, cfg config.Config, opts Options) (_ *Server, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := cfg.Validate(opts.Dev); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	// Lines logged with a request's context carry its X-Request-ID.
	s := &Server{cfg: cfg, dev: opts.Dev, logger: slog.New(requestid.LogHandler(opts.Logger.Handler())), getenv: opts.Getenv}
	defer func() {
		if err != nil {
			s.Close(context.WithoutCancel(ctx))
		}
	}()
	if s.cfg.Hostname == "" {
		if s.cfg.Hostname, err = os.Hostname(); err != nil {
			return nil, fmt.Errorf("hostname is not configured and the system's is unknown: %w", err)
		}
	}
	// Before the database: a pair that does not load is a configuration
	// error, reported without waiting for PostgreSQL.
	if cfg.TLS.Enabled() {
		if s.tlsCert, err = certfiles.Load(cfg.TLS.CertFile, cfg.TLS.KeyFile, s.logger); err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
	}
	dbURL := cfg.Database.URL
	if dbURL == "" {
		if s.cluster, err = db.StartCluster(ctx, filepath.Join(cfg.DataDir, "postgres"), s.logger, db.ClusterOptions{}); err != nil {
			return nil, err
		}
		dbURL = s.cluster.URL("postgres")
	}
	// The instance's kind is checked before the migrations: a start that
	// is refused changes nothing, its schema included.
	if s.pool, err = db.Connect(ctx, dbURL); err != nil {
		return nil, err
	}
	if err := refuseOtherKind(ctx, s.pool, opts.Dev); err != nil {
		return nil, err
	}
	// The writer lease before the migrations where it exists: a second
	// server refused on a database in use (a newer build, say) must not
	// have migrated it under the running one.
	var leased bool
	if err := s.pool.QueryRow(ctx, "SELECT to_regclass('signet_writer_lease') IS NOT NULL").Scan(&leased); err != nil {
		return nil, fmt.Errorf("reading the schema: %w", err)
	}
	s.lease = opts.Lease
	if leased && s.lease == nil {
		if s.lease, err = s.acquireLease(ctx, opts); err != nil {
			return nil, err
		}
	}
	if err := db.Migrate(ctx, s.pool); err != nil {
		return nil, err
	}
	if err := claimDatabase(ctx, s.pool, opts.Dev, s.cluster != nil); err != nil {
		return nil, err
	}
	if s.lease == nil {
		if s.lease, err = s.acquireLease(ctx, opts); err != nil {
			return nil, err
		}
	}
	s.trees = pgstore.New(s.pool)
	s.trees.Fence(s.lease.Token(), s.lease.Holder())
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "signet_database_bytes", Help: "Size of the database on disk."}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			n, err := s.DatabaseBytes(ctx)
			if err != nil {
				return -1
			}
			return float64(n)
		}))
	router := chi.NewRouter()
	budget, err := newBodyBudget(cfg, opts.Dev, reg)
	if err != nil {
		return nil, err
	}
	router.Use(requestid.Middleware)
	if s.tlsCert != nil {
		// Before anything that may answer early (the body budget's 503).
		router.Use(strictTransportSecurity)
	}
	router.Use(recoverPanics(s.logger), requestTimeout(time.Duration(cfg.HTTP.RequestTimeoutSeconds)*time.Second), newHTTPMetrics(reg).middleware, budget.Middleware)

	scheme := "http://"
	if s.tlsCert != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "signet_tls_certificate_expiry_timestamp_seconds",
			Help: "When the public listener's TLS certificate (tls.cert_file, as last loaded) expires, in Unix seconds.",
		}, func() float64 { return float64(s.tlsCert.Leaf().NotAfter.Unix()) }))
		scheme = "https://"
	}
	if s.cfg.PublicURL == "" {
		s.cfg.PublicURL = scheme + cfg.Listen
	}
	s.cfg.PublicURL = strings.TrimSuffix(s.cfg.PublicURL, "/")
	if opts.Dev {
		if err := s.devKeyMaterial(); err != nil {
			return nil, err
		}
	}
	if cfg.LogEnabled() {
		if err := s.startLog(ctx, router, reg, opts); err != nil {
			return nil, err
		}
		if cfg.Log.V2.Enabled {
			if err := s.startLogV2(ctx, router, reg, opts); err != nil {
				return nil, err
			}
		}
	}
	if cfg.CAEnabled(opts.Dev) {
		if err := s.startCA(router, reg, opts); err != nil {
			return nil, err
		}
	}
	if cfg.TimestampEnabled(opts.Dev) {
		if err := s.startTSA(router, reg, opts); err != nil {
			return nil, err
		}
	}
	if cfg.CTEnabled(opts.Dev) {
		if err := s.startCT(ctx, router, reg, opts); err != nil {
			return nil, err
		}
	}
	if s.authority != nil {
		switch s.cfg.CA.CT {
		case "none":
			s.logger.Warn("CERTIFICATE TRANSPARENCY IS OFF (ca.ct: none): certificates carry no SCT; cosign will only verify them with --insecure-ignore-sct")
		case "":
			s.authority.UseSCTSource(localCT{s.ctLog})
		default:
			pubPEM, err := os.ReadFile(s.cfg.CA.CTPublicKey)
			if err != nil {
				return nil, fmt.Errorf("ca.ct_public_key: %w", err)
			}
			remote, err := ca.NewRemoteCT(s.cfg.CA.CT, pubPEM)
			if err != nil {
				return nil, fmt.Errorf("ca.ct: %w", err)
			}
			s.authority.UseSCTSource(remote)
			s.logger.Info("the CA logs precertificates to a remote CT log", "url", s.cfg.CA.CT)
		}
	}
	if err := s.publishTrust(ctx, router, reg); err != nil {
		return nil, err
	}
	router.Get("/healthz", s.healthz)
	// The auditor's web view: / and /explorer.
	name := s.cfg.Hostname
	if u, err := url.Parse(s.cfg.PublicURL); err == nil && u.Host != "" {
		name = u.Host
	}
	web, err := explorer.New(explorer.Config{Rekor: s.rekor, Name: name, TUF: s.cfg.TUFEnabled(s.dev), Logger: s.logger})
	if err != nil {
		return nil, err
	}
	web.Routes(router)
	s.gatherer = reg
	s.metricsHandler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	if cfg.Metrics.Listen == "" {
		router.Get("/metrics", s.metricsHandler.ServeHTTP)
	}
	router.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	})
	router.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed on "+r.URL.Path)
	})
	s.handler = router
	return s, nil
}

// entryTypes are the log's entry kinds, those of log.entry_types enabled.
func entryTypes(cfg config.Config) (*types.Registry, error) {
	hr, err := hashedrekord.Kind()
	if err != nil {
		return nil, err
	}
	registry := types.NewRegistry(hr, dsse.Kind(), rekord.Kind(), rfc3161.Kind(), cose.Kind(), intoto.Kind(), tuftype.Kind(), alpine.Kind(), helm.Kind(), rpm.Kind(), jar.Kind())
	if err := registry.Enable(cfg.Log.EntryTypes); err != nil {
		return nil, fmt.Errorf("log.entry_types: %w", err)
	}
	return registry, nil
}

// devKeyMaterial makes, in the data directory, the keys and chains admin
// init would make (unencrypted) for the components that run without a key
// of their own in the configuration: on the first start; later starts take
// them as they are.
func (s *Server) devKeyMaterial() error {
	c := s.cfg
	var only []string
	for _, k := range []struct {
		name string
		on   bool
		uri  string
	}{
		{"log", c.LogEnabled(), c.Log.Signer},
		{"ca", c.CAEnabled(true), c.CA.Signer},
		{"tsa", c.TimestampEnabled(true), c.Timestamp.Signer},
		{"ct", c.CTEnabled(true), c.CT.Signer},
		{"tuf-root", c.TUFEnabled(true), c.TUF.RootSigner},
		{"tuf-targets", c.TUFEnabled(true), c.TUF.TargetsSigner},
		{"tuf-snapshot", c.TUFEnabled(true), c.TUF.SnapshotSigner},
		{"tuf-timestamp", c.TUFEnabled(true), c.TUF.TimestampSigner},
	} {
		if k.on && k.uri == "" {
			only = append(only, k.name)
		}
	}
	if len(only) == 0 {
		return nil
	}
	dir := filepath.Join(c.DataDir, "keys")
	made, err := bootstrap.Make(bootstrap.Plan{Dir: dir, Names: devNames, Only: only, Keep: true, Getenv: s.getenv})
	if err != nil {
		return fmt.Errorf("dev keys: %w", err)
	}
	for _, f := range made.Made {
		s.logger.Info("generated dev key material", "file", filepath.Join(dir, f))
	}
	s.devKeys = made
	return nil
}

func (s *Server) startLog(ctx context.Context, router chi.Router, reg prometheus.Registerer, opts Options) error {
	signerURI := s.cfg.Log.Signer
	if signerURI == "" && s.dev {
		signerURI = s.devKeys.URIs["log"]
	}
	signer, err := keys.Open(signerURI, keys.Options{Dev: s.dev, Getenv: opts.Getenv})
	if err != nil {
		return fmt.Errorf("log signer: %w", err)
	}
	registry, err := entryTypes(s.cfg)
	if err != nil {
		return err
	}
	index, err := rekorapi.NewIndex(signer)
	if err != nil {
		return fmt.Errorf("log signer: %w", err)
	}
	rotate, err := s.mayRotate(ctx, "rekor", signer)
	if err != nil {
		return err
	}
	lcfg := rekorLogConfig(s.cfg, signer, index, s.logger)
	lcfg.Metrics, lcfg.Tiles = s.logMetrics(reg), s.logTiles(reg)
	// A new log key freezes the tree the old one signed; it stays readable
	// as an inactive shard and indexes continue after it.
	lcfg.RotateOnKeyChange = rotate
	l, err := tlog.Open(ctx, s.trees, lcfg)
	if err != nil {
		return keyChangeHint(err, "log")
	}
	s.log = l // before anything can fail: Close stops it
	if err := s.rotated(ctx, "rekor", signer); err != nil {
		return err
	}
	s.rekorSigner = signer
	s.rekor, err = rekorapi.New(rekorapi.Config{
		Log: s.log, Index: index, Types: registry, Logger: s.logger,
		Limits: rekorapi.Limits{MaxBodyBytes: s.cfg.Log.MaxRequestBytes, MaxSearchResults: s.cfg.Log.MaxSearchResults, MaxAttestationBytes: s.cfg.Log.MaxAttestationBytes},
	})
	if err != nil {
		return err
	}
	s.rekor.Routes(router)
	published, err := s.startWitnessing(ctx, reg, "rekor", "log.witness", s.log, s.cfg.Log.Witness)
	if err != nil {
		return err
	}
	mountTiles(router, "rekor", s.log, published, s.logger)
	s.logger.Info("transparency log ready", "tree_id", s.log.TreeID(), "log_id", s.rekor.LogID(), "entry_types", registry.Insertable(),
		"inactive_shards", len(s.log.Retired()), "first_index", s.log.Offset(), "origin", s.log.Origin(), "verifier_key", verifierKey(s.log))
	return nil
}

// rekorLogConfig is the Rekor v1 log's engine configuration, the same on
// every replica.
func rekorLogConfig(cfg config.Config, signer crypto.Signer, index *rekorapi.Index, logger *slog.Logger) tlog.Config {
	return tlog.Config{
		Name: "rekor", SignerName: cfg.Hostname, Signer: signer,
		MaxBatch: cfg.Log.MaxBatch, QueueSize: cfg.Log.QueueSize, Hook: index, Logger: logger,
		OriginFor: func(treeID int64) string { return cfg.Hostname + " - " + strconv.FormatInt(treeID, 10) },
	}
}

func (s *Server) startCA(router chi.Router, reg prometheus.Registerer, opts Options) error {
	signerURI, chainPath := s.cfg.CA.Signer, s.cfg.CA.Chain
	if s.dev && signerURI == "" {
		signerURI, chainPath = s.devKeys.URIs["ca"], s.devKeys.CAChain
	}
	signer, chain, err := s.signerAndChain(signerURI, chainPath, opts, caChainFor)
	if err != nil {
		return fmt.Errorf("CA: %w", err)
	}
	validity, err := s.cfg.CA.ValidityDuration()
	if err != nil {
		return err
	}
	authority, err := ca.New(signer, chain, validity)
	if err != nil {
		return fmt.Errorf("CA: %w", err)
	}
	issuers := append([]identity.IssuerConfig{}, s.cfg.CA.Issuers...)
	poolOpts := identity.Options{Logger: s.logger}
	if s.dev {
		key, err := devOIDCKey(filepath.Join(s.cfg.DataDir, "keys", "dev-oidc.pem"), s.logger)
		if err != nil {
			return fmt.Errorf("dev OIDC issuer: %w", err)
		}
		if s.devIssuer, err = devoidc.New(s.cfg.PublicURL+devoidc.Path, key); err != nil {
			return err
		}
		s.devIssuer.Routes(router)
		issuers = append(issuers, identity.IssuerConfig{URL: s.devIssuer.URL(), Type: identity.TypeEmailOrURI, ClientID: devoidc.Audience})
		poolOpts.LocalKeySets = map[string]oidc.KeySet{s.devIssuer.URL(): s.devIssuer.KeySet()}
	}
	pool, err := identity.NewPool(issuers, s.cfg.CA.CIProviders, poolOpts)
	if err != nil {
		return fmt.Errorf("ca.issuers: %w", err)
	}
	algs, err := sigalg.NewSet(s.cfg.CA.SigningAlgorithms, ca.DefaultAlgorithms)
	if err != nil {
		return fmt.Errorf("ca.signing_algorithms: %w", err)
	}
	s.caAudit = audit.New(s.pool, "ca_certificates", []audit.Column{
		audit.Text("serial"), audit.Time("issued_at"), audit.Time("not_after"), audit.Text("identity"),
		audit.Text("issuer"), audit.Text("subject"), audit.Text("key_fingerprint"),
	}, s.logger, audit.Options{Registerer: reg})
	s.ca = fulcioapi.New(fulcioapi.Config{
		CA: authority, Issuers: pool, Algorithms: algs, Audit: s.caAudit,
		MaxBodyBytes: s.cfg.CA.MaxRequestBytes, Logger: s.logger, Registerer: reg,
	})
	s.ca.Routes(router)
	s.caChain = chain
	s.authority = authority
	s.logger.Info("certificate authority ready", "issuing", chain[0].Subject.String(), "issuers", len(issuers), "validity", validity)
	return nil
}

func (s *Server) startCT(ctx context.Context, router chi.Router, reg prometheus.Registerer, opts Options) error {
	signerURI := s.cfg.CT.Signer
	if signerURI == "" && s.dev {
		signerURI = s.devKeys.URIs["ct"]
	}
	signer, err := keys.Open(signerURI, keys.Options{Dev: s.dev, Getenv: opts.Getenv})
	if err != nil {
		return fmt.Errorf("CT log signer: %w", err)
	}
	var roots []*x509.Certificate
	for _, path := range s.cfg.CT.Roots {
		certs, err := readChain(path)
		if err != nil {
			return fmt.Errorf("ct.roots: %w", err)
		}
		roots = append(roots, certs...)
	}
	if len(roots) == 0 && len(s.caChain) > 0 {
		roots = s.caChain[len(s.caChain)-1:]
	}
	rotate, err := s.mayRotate(ctx, "ct", signer)
	if err != nil {
		return err
	}
	engine, err := tlog.Open(ctx, s.trees, tlog.Config{
		Name: "ct", SignerName: s.cfg.Hostname, Signer: signer,
		Logger: s.logger, Metrics: s.logMetrics(reg), Tiles: s.logTiles(reg),
		// A new CT key is a rotation: SCT verifiers need only the old key,
		// which stays in the trusted root with its window closed.
		RotateOnKeyChange: rotate,
	})
	if err != nil {
		return keyChangeHint(err, "ct")
	}
	s.ctEngine = engine // before anything can fail: Close stops it
	if err := s.rotated(ctx, "ct", signer); err != nil {
		return err
	}
	s.ctLog, err = ctapi.New(ctapi.Config{
		Log: engine, Signer: signer, Roots: roots, Logger: s.logger,
		Limits: ctapi.Limits{MaxBodyBytes: s.cfg.CT.MaxRequestBytes, MaxChain: ctapi.DefaultLimits.MaxChain, MaxGetEntries: s.cfg.CT.MaxGetEntries},
	})
	if err != nil {
		return fmt.Errorf("CT log: %w", err)
	}
	s.ctLog.Routes(router)
	published, err := s.startWitnessing(ctx, reg, "ct", "ct.witness", engine, s.cfg.CT.Witness)
	if err != nil {
		return err
	}
	mountTiles(router, "ct", engine, published, s.logger)
	id := s.ctLog.LogID()
	s.logger.Info("CT log ready", "tree_id", engine.TreeID(), "log_id", base64.StdEncoding.EncodeToString(id[:]), "roots", len(roots),
		"origin", engine.Origin(), "verifier_key", verifierKey(engine))
	return nil
}

// mayRotate says whether the log may retire its tree if signer is not the
// tree's key: in dev mode always (its keys are made and remade there); in
// production only when signet-server admin rotate asked for this key, so a
// wrong key file stops start-up instead of freezing the log.
func (s *Server) mayRotate(ctx context.Context, log string, signer crypto.Signer) (bool, error) {
	if s.dev {
		return true, nil
	}
	id, err := rotation.KeyID(signer.Public())
	if err != nil {
		return false, err
	}
	return rotation.Requested(ctx, s.pool, log, id)
}

// rotated closes a rotation request once the log's tree is the new key's,
// and warns of one still open for another key (asked for, not carried out:
// the configuration was not changed, or was changed back).
func (s *Server) rotated(ctx context.Context, log string, signer crypto.Signer) error {
	if s.dev {
		return nil
	}
	id, err := rotation.KeyID(signer.Public())
	if err != nil {
		return err
	}
	if err := rotation.Done(ctx, s.pool, log, id); err != nil {
		return err
	}
	if open, err := rotation.Open(ctx, s.pool, log); err != nil {
		return err
	} else if open != "" {
		s.logger.Warn("a key rotation was asked for and not carried out: the log started with its tree's key; a start with the requested key will rotate, until admin rotate asks for another",
			"log", log, "requested_key_sha256", open, "configured_key_sha256", id)
	}
	return nil
}

// recordChain makes chain the component's current one in the trust
// history. Replacing the chain in use needs a request for this one in
// production (admin rotate, admin import-chain); dev mode may always.
func (s *Server) recordChain(ctx context.Context, component string, chain *trust.Chain) ([]*trust.Chain, error) {
	what, id := component+"-chain", rotation.CertID(chain.Certificates[0])
	replace := s.dev
	if !replace {
		var err error
		if replace, err = rotation.Requested(ctx, s.pool, what, id); err != nil {
			return nil, err
		}
	}
	past, err := trust.RecordChain(ctx, s.pool, component, chain, time.Now(), replace)
	var changed *trust.ChainChangedError
	if errors.As(err, &changed) {
		return nil, fmt.Errorf("%w. Configure the chain in use again, or change it on purpose: signet-server admin rotate --config FILE --root-key URI %s "+
			"(a new certificate under the same root), or admin import-chain --config FILE %s CHAIN.pem; either records the change for the next start", err, component, component)
	}
	if err != nil || s.dev {
		return past, err
	}
	return past, rotation.Done(ctx, s.pool, what, id)
}

// keyChangeHint adds to a refused key change how to make it on purpose.
func keyChangeHint(err error, component string) error {
	var kc *tlog.KeyChangedError
	if !errors.As(err, &kc) {
		return err
	}
	section := strings.ReplaceAll(component, "-", ".") // log-v2 is log.v2 in the file
	return fmt.Errorf("%w. Configure the tree's key again, or rotate on purpose: signet-server admin rotate --config FILE %s "+
		"(it makes a new key, or takes yours with --key URI, points %s.signer at it and records the rotation in the database; the next start carries it out)", err, component, section)
}

// mountTiles serves every tree of a log as C2SP tlog-tiles at
// /tiles/<name>/<treeID>/, the active one and those key rotations froze:
// the tree ID is in the path because a full tile is cached for a year, so
// its URL must never come to name another tree's tile.
//
// GET /tiles/<name> says which tree is active and which are frozen, for a
// client (signet monitor --log ct) that has no other way to learn it. It
// is not cached: a rotation changes it. published, if not nil, is the
// active tree's checkpoint (the witnessed one).
func mountTiles(router chi.Router, name string, l *tlog.Log, published tilesapi.Published, logger *slog.Logger) {
	index := struct {
		Active string   `json:"active"`
		Frozen []string `json:"frozen"`
	}{Active: strconv.FormatInt(l.TreeID(), 10), Frozen: []string{}}
	for _, t := range l.Retired() {
		index.Frozen = append(index.Frozen, strconv.FormatInt(t.TreeID(), 10))
	}
	router.Get("/tiles/"+name, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		httpjson.Write(w, http.StatusOK, index)
	})
	router.Mount(fmt.Sprintf("/tiles/%s/%d", name, l.TreeID()), tilesapi.WitnessedHandler(l.Tree, published, logger))
	for _, t := range l.Retired() {
		router.Mount(fmt.Sprintf("/tiles/%s/%d", name, t.TreeID()), tilesapi.WitnessedHandler(t, frozenCheckpoint(t), logger))
	}
}

// frozenCheckpoint is a tree frozen by a rotation's checkpoint: its final
// one with the witnesses' cosignatures if they cosigned that size, else
// the log's alone (witnesses may never have seen the tail). Neither can
// change once the tree is frozen, so it is read once.
func frozenCheckpoint(t *tlog.Tree) tilesapi.Published {
	var mu sync.Mutex
	var final string
	return func(ctx context.Context) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if final != "" {
			return final, nil
		}
		root, err := t.Latest(ctx)
		if err != nil {
			return "", err
		}
		size, cosigned, err := t.Witnessed(ctx)
		if err != nil {
			return "", err
		}
		if cosigned == "" || size != root.Size {
			if cosigned, err = t.Checkpoint(root); err != nil {
				return "", err
			}
		}
		final = cosigned
		return final, nil
	}
}

// pastKeys are a log's keys retired by rotations, with their windows.
func pastKeys(ctx context.Context, trees *pgstore.Store, name string) ([]*trust.Key, error) {
	retired, err := tlog.RetiredKeys(ctx, trees, name)
	if err != nil {
		return nil, err
	}
	var out []*trust.Key
	for _, k := range retired {
		out = append(out, &trust.Key{PublicKey: k.PublicKey, Start: k.Start.Truncate(time.Second), End: k.End})
	}
	return out, nil
}

// publishTrust serves trusted_root.json and signing_config.json for what
// runs here, and in dev mode writes copies to the data directory.
func (s *Server) publishTrust(ctx context.Context, router chi.Router, reg prometheus.Registerer) error {
	in := trust.Instance{BaseURL: s.cfg.PublicURL, Operator: s.cfg.Hostname}
	start := time.Now()
	var err error
	if s.log != nil {
		// Whole seconds: integratedTime has no fraction, and an entry from the
		// tree's first second must fall inside the window.
		in.Log = &trust.Key{PublicKey: s.rekorSigner.Public(), Start: s.log.CreatedAt().Truncate(time.Second)}
		start = minTime(start, in.Log.Start)
		if in.PastLogs, err = pastKeys(ctx, s.trees, "rekor"); err != nil {
			return err
		}
	}
	if in.LogV2, in.PastLogsV2, err = s.logV2Keys(ctx); err != nil {
		return err
	}
	if s.logV2 != nil {
		in.LogV2Writes = true
		start = minTime(start, in.LogV2.Start)
	}
	if s.ctLog != nil {
		in.CT = &trust.Key{PublicKey: s.ctLog.PublicKey(), Start: s.ctEngine.CreatedAt().Truncate(time.Second)}
		if in.PastCT, err = pastKeys(ctx, s.trees, "ct"); err != nil {
			return err
		}
	}
	// A chain not seen before is a rotation (asked for, in production):
	// the old chain's window closes now and it stays in the trusted root
	// for what it signed.
	if s.caChain != nil {
		in.CA = &trust.Chain{Certificates: s.caChain, Start: s.caChain[0].NotBefore}
		if in.PastCAs, err = s.recordChain(ctx, "ca", in.CA); err != nil {
			return err
		}
		start = minTime(start, in.CA.Start)
	}
	if s.tsaChain != nil {
		in.TSA = &trust.Chain{Certificates: s.tsaChain, Start: s.tsaChain[0].NotBefore}
		if in.PastTSAs, err = s.recordChain(ctx, "tsa", in.TSA); err != nil {
			return err
		}
	}
	if s.devIssuer != nil {
		in.OIDCURL = s.devIssuer.URL()
	}
	root, err := trust.TrustedRoot(in)
	if err != nil {
		return fmt.Errorf("building trusted_root.json: %w", err)
	}
	signing, err := trust.SigningConfig(in, start)
	if err != nil {
		return fmt.Errorf("building signing_config.json: %w", err)
	}
	serve := func(body []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(body) //nolint:errcheck
		}
	}
	router.Get("/api/v1/trust/trusted_root.json", serve(root))
	router.Get("/api/v1/trust/signing_config.json", serve(signing))
	if s.cfg.TUFEnabled(s.dev) {
		if err := s.startTUF(ctx, router, reg, map[string][]byte{"trusted_root.json": root, "signing_config.v0.2.json": signing}); err != nil {
			return fmt.Errorf("TUF repository: %w", err)
		}
	}
	if s.dev {
		if err := os.MkdirAll(s.cfg.DataDir, 0o700); err != nil {
			return err
		}
		for name, body := range map[string][]byte{"trusted_root.json": root, "signing_config.json": signing} {
			if err := os.WriteFile(filepath.Join(s.cfg.DataDir, name), body, 0o644); err != nil {
				return fmt.Errorf("writing %s: %w", name, err)
			}
		}
	}
	return nil
}

// startTUF publishes files as TUF targets, serves the repository under
// /tuf/ and keeps its timestamp fresh. In dev mode the role keys are
// generated in the data directory and root.json is written next to them,
// for `cosign initialize --root`.
func (s *Server) startTUF(ctx context.Context, router chi.Router, reg prometheus.Registerer, files map[string][]byte) error {
	c := s.cfg.TUF
	uris := map[string]*string{"root": &c.RootSigner, "targets": &c.TargetsSigner, "snapshot": &c.SnapshotSigner, "timestamp": &c.TimestampSigner}
	signers := map[string]crypto.Signer{}
	for role, uri := range uris {
		if *uri == "" && s.dev {
			*uri = s.devKeys.URIs["tuf-"+role]
		}
		if *uri == "" {
			continue // only the root key may be absent (kept offline)
		}
		k, err := keys.Open(*uri, keys.Options{Dev: s.dev, Getenv: s.getenv})
		if err != nil {
			return fmt.Errorf("%s key: %w", role, err)
		}
		signers[role] = k
	}
	repo := tuf.New(s.pool, tuf.Keys{Root: signers["root"], Targets: signers["targets"], Snapshot: signers["snapshot"], Timestamp: signers["timestamp"]}, s.logger)
	if err := repo.Publish(ctx, files); err != nil {
		return err
	}
	repo.Routes(router)
	reg.MustRegister(newTUFExpiries(repo))
	if s.dev {
		root, err := repo.Root(ctx)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(s.cfg.DataDir, "tuf-root.json"), root, 0o644); err != nil {
			return fmt.Errorf("writing tuf-root.json: %w", err)
		}
	}
	freshCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stopTUF = cancel
	go repo.KeepFresh(freshCtx, time.Hour)
	return nil
}

// tufExpiries exports when each role's TUF metadata expires, read from the
// database at every scrape: clients refuse a repository whose metadata has
// expired, and the server re-signs the online roles at half their lifetime
// (deploy/prometheus/alerts.yaml watches both).
type tufExpiries struct {
	repo *tuf.Repository
	desc *prometheus.Desc
}

func newTUFExpiries(repo *tuf.Repository) tufExpiries {
	return tufExpiries{repo: repo, desc: prometheus.NewDesc("signet_tuf_expiry_timestamp_seconds",
		"When the latest TUF metadata of each role expires (Unix time). Online roles are re-signed at half their lifetime; root.json needs the offline key.",
		[]string{"role"}, nil)}
}

func (e tufExpiries) Describe(ch chan<- *prometheus.Desc) { ch <- e.desc }

func (e tufExpiries) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	expiries, err := e.repo.Expiries(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(e.desc, err)
		return
	}
	for role, at := range expiries {
		ch <- prometheus.MustNewConstMetric(e.desc, prometheus.GaugeValue, float64(at.Unix()), role)
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// logMetrics are shared by every log of the process (labelled by log name).
func (s *Server) logMetrics(reg prometheus.Registerer) *tlog.Metrics {
	if s.metrics == nil {
		s.metrics = tlog.NewMetrics(reg)
	}
	return s.metrics
}

// logTiles is the tile cache every log tree of the process proves from,
// bounded by log.tile_cache_bytes.
func (s *Server) logTiles(reg prometheus.Registerer) *tiles.Cache {
	if s.tileCache == nil {
		s.tileCache = tiles.NewCache(s.cfg.Log.TileCacheBytes, reg)
	}
	return s.tileCache
}

// localCT lets the CA log its precertificates to the CT log of this
// process (the CT personality knows nothing of the CA).
type localCT struct{ ct *ctapi.CT }

func (l localCT) LogPrecertificate(ctx context.Context, p *ca.Precertificate) (*ct.SignedCertificateTimestamp, error) {
	return l.ct.LogPrecertificate(ctx, ctapi.Precert{DER: p.DER, Chain: p.Chain, TBS: p.TBS, IssuerKeyHash: p.IssuerKeyHash})
}

// CTLog is the CT log (nil when disabled).
func (s *Server) CTLog() *ctapi.CT { return s.ctLog }

func (s *Server) startTSA(router chi.Router, reg prometheus.Registerer, opts Options) error {
	c := s.cfg.Timestamp
	signerURI, chainPath := c.Signer, c.Chain
	if s.dev && signerURI == "" {
		signerURI, chainPath = s.devKeys.URIs["tsa"], s.devKeys.TSAChain
	}
	signer, chain, err := s.signerAndChain(signerURI, chainPath, opts, tsaChainFor)
	if err != nil {
		return fmt.Errorf("timestamp authority: %w", err)
	}
	accuracy, err := c.AccuracyDuration()
	if err != nil {
		return err
	}
	def, accepted, err := c.Policies()
	if err != nil {
		return err
	}
	authority, err := timestamp.New(timestamp.Config{
		Signer: signer, Chain: chain, DefaultPolicy: def, AcceptedPolicies: accepted,
		Accuracy: accuracy, IncludeChain: c.IncludeChain, AllowExtensions: c.AllowExtensions,
	})
	if err != nil {
		return fmt.Errorf("timestamp authority: %w", err)
	}
	s.tsaAudit = audit.New(s.pool, "tsa_timestamps", []audit.Column{
		audit.Text("serial"), audit.Time("gen_time"), audit.Text("hash_alg"), audit.Text("imprint"), audit.Text("policy"),
	}, s.logger, audit.Options{Registerer: reg})
	tsaapi.New(tsaapi.Config{
		Authority: authority, Audit: s.tsaAudit, Logger: s.logger, Registerer: reg,
		Limits: tsaapi.Limits{MaxBodyBytes: c.MaxRequestBytes},
	}).Routes(router)
	s.tsaChain = chain
	s.logger.Info("timestamp authority ready", "signing", chain[0].Subject.String(), "policy", def.String())
	return nil
}

// signerAndChain opens a component's key and its chain. A memory: key with
// no chain (dev mode only) gets a chain made now, gone at the next start.
func (s *Server) signerAndChain(signerURI, chainPath string, opts Options, makeChain func(crypto.PublicKey) ([]*x509.Certificate, error)) (crypto.Signer, []*x509.Certificate, error) {
	signer, err := keys.Open(signerURI, keys.Options{Dev: s.dev, Getenv: opts.Getenv})
	if err != nil {
		return nil, nil, fmt.Errorf("signer: %w", err)
	}
	if signerURI == "memory:" && chainPath == "" {
		chain, err := makeChain(signer.Public())
		return signer, chain, err
	}
	// A PKCS#11 token may hold the key's own certificate: it leads the
	// chain, and the chain file (if any) supplies the certificates above it.
	tokenCert, inToken := keys.Certificate(signer)
	if chainPath == "" {
		if inToken {
			return signer, []*x509.Certificate{tokenCert}, nil
		}
		return nil, nil, errors.New("a chain file is required for this signer")
	}
	chain, err := readChain(chainPath)
	if err != nil {
		return nil, nil, err
	}
	if inToken && !tokenCert.Equal(chain[0]) {
		chain = append([]*x509.Certificate{tokenCert}, chain...)
	}
	return signer, chain, nil
}

// Handler serves every component.
func (s *Server) Handler() http.Handler { return s.handler }

// TLSConfig is the public listener's TLS configuration, or nil when tls.*
// is not set and the listener speaks plain HTTP.
func (s *Server) TLSConfig() *tls.Config {
	return tlsConfig(s.tlsCert)
}

// tlsConfig serves pair's certificate, or is nil without one.
func tlsConfig(pair *certfiles.Pair) *tls.Config {
	if pair == nil {
		return nil
	}
	return &tls.Config{GetCertificate: pair.GetCertificate, MinVersion: tls.VersionTLS12}
}

// strictTransportSecurity tells browsers (the log explorer's users) to
// reach this host only over HTTPS for a year. Only set when this server
// terminates TLS: behind a proxy, the proxy owns the header. No
// includeSubDomains: other hosts under the name are not ours to bind.
func strictTransportSecurity(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		next.ServeHTTP(w, r)
	})
}

// MetricsHandler serves the Prometheus metrics; it is also on Handler at
// GET /metrics unless metrics.listen puts it on a listener of its own.
func (s *Server) MetricsHandler() http.Handler { return s.metricsHandler }

// Hostname is the name this instance signs checkpoints with.
func (s *Server) Hostname() string { return s.cfg.Hostname }

// DataDir is where dev-mode state lives.
func (s *Server) DataDir() string { return s.cfg.DataDir }

// PublicURL is the base URL clients use.
func (s *Server) PublicURL() string { return s.cfg.PublicURL }

// CAChain is the CA's chain, issuing certificate first (nil when disabled).
func (s *Server) CAChain() []*x509.Certificate { return s.caChain }

// TSAChain is the TSA's chain, signing certificate first (nil when disabled).
func (s *Server) TSAChain() []*x509.Certificate { return s.tsaChain }

// LogV2 is the Rekor v2 log (nil unless log.v2.enabled).
func (s *Server) LogV2() *tlog.Log { return s.logV2 }

// DevIssuer is the dev OIDC issuer (nil outside dev mode).
func (s *Server) DevIssuer() *devoidc.Issuer { return s.devIssuer }

// Log is the transparency log (nil when disabled).
func (s *Server) Log() *tlog.Log { return s.log }

// Rekor is the Rekor personality (nil when disabled).
func (s *Server) Rekor() *rekorapi.API { return s.rekor }

// DatabaseBytes is the size of the instance's database on disk.
func (s *Server) DatabaseBytes(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&n)
	return n, err
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if !databaseAnswers(w, r, s.pool) {
		return
	}
	if s.lease != nil && s.lease.Lost() {
		http.Error(w, "another signet-server took the database's writer lease: this one can no longer commit to the log", http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte("ok\n")) //nolint:errcheck
}

// databaseAnswers pings the database within 2 s; if it does not answer,
// it says so with a 503 and returns false.
func databaseAnswers(w http.ResponseWriter, r *http.Request, pool *pgxpool.Pool) bool {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := pool.Ping(ctx); err != nil {
		http.Error(w, "database unreachable", http.StatusServiceUnavailable)
		return false
	}
	return true
}

// acquireLease takes the database's writer lease (internal/lease) as this
// process, waiting up to opts.LeaseWait for another's to be given up or
// expire.
func (s *Server) acquireLease(ctx context.Context, opts Options) (*lease.Lease, error) {
	address := s.cfg.PublicURL
	if address == "" {
		address = s.cfg.Listen
	}
	ttl := time.Duration(s.cfg.Replicas.LeaseSeconds) * time.Second
	wait := opts.LeaseWait
	if wait == 0 {
		wait = ttl + 2*time.Second
	}
	return lease.Acquire(ctx, s.pool, leaseOptions(address, false, ttl, wait, s.logger))
}

// leaseOptions are a take of the writer lease by this process, answering
// at address, as one of several replicas or not.
func leaseOptions(address string, replica bool, ttl, wait time.Duration, logger *slog.Logger) lease.Options {
	host, _ := os.Hostname()
	var nonce [4]byte
	rand.Read(nonce[:]) //nolint:errcheck // crypto/rand does not fail
	return lease.Options{
		Holder:  fmt.Sprintf("%s pid %d %x", host, os.Getpid(), nonce),
		Address: address, Replica: replica, TTL: ttl, Wait: wait, Logger: logger,
	}
}

// Close stops the components, then the managed database.
func (s *Server) Close(ctx context.Context) {
	for _, stop := range s.stopWitnessing {
		stop()
	}
	if s.stopTUF != nil {
		s.stopTUF()
	}
	if s.log != nil {
		s.log.Close()
	}
	if s.logV2 != nil {
		s.logV2.Close()
	}
	if s.ctEngine != nil {
		s.ctEngine.Close()
	}
	if s.caAudit != nil {
		s.caAudit.Close()
	}
	if s.tsaAudit != nil {
		s.tsaAudit.Close()
	}
	if s.lease != nil {
		// After the logs: no batch of this server's can commit any more.
		if err := s.lease.Release(ctx); err != nil {
			s.logger.Warn("giving up the writer lease; the next server waits for it to expire", "err", err)
		}
	}
	if s.pool != nil {
		s.pool.Close()
	}
	if s.cluster != nil {
		if err := s.cluster.Stop(ctx); err != nil {
			s.logger.Error("stopping managed PostgreSQL", "err", err)
		}
	}
}

func writeError(w http.ResponseWriter, status int, msg string) { httpjson.WriteError(w, status, msg) }

// newBodyBudget is the budget of request bodies held at once
// (http.max_body_bytes_in_flight), its metrics registered with reg; a
// request over it gets 503.
func newBodyBudget(cfg config.Config, dev bool, reg prometheus.Registerer) (*httpbody.Budget, error) {
	b, err := httpbody.NewBudget(cfg.HTTP.MaxBodyBytesInFlight, cfg.LargestRequestBody(dev), reg, func(w http.ResponseWriter, msg string) {
		writeError(w, http.StatusServiceUnavailable, msg)
	})
	if err != nil {
		return nil, fmt.Errorf("http.max_body_bytes_in_flight: %w", err)
	}
	return b, nil
}

// recoverPanics answers a handler's panic with a 500 naming the request ID,
// logged with its stack under that ID (chi's Recoverer prints to stderr,
// outside the structured log). http.ErrAbortHandler is net/http's way to
// drop a connection and passes through.
func recoverPanics(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				if v == http.ErrAbortHandler {
					panic(v)
				}
				logger.ErrorContext(r.Context(), "handler panicked", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				writeError(w, http.StatusInternalServerError, "internal error while serving the request; "+requestid.SeeLog(r.Context()))
			}()
			next.ServeHTTP(w, r)
		})
	}
}

func requestTimeout(d time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), d)
			defer cancel()
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}
