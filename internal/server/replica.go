package server

import (
	"context"
	"crypto"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/signet-dev/signet/internal/certfiles"
	"github.com/signet-dev/signet/internal/config"
	"github.com/signet-dev/signet/internal/db"
	"github.com/signet-dev/signet/internal/lease"
	"github.com/signet-dev/signet/internal/requestid"
	tlog "github.com/signet-dev/signet/log"
)

// ForwardedHeader marks a request a follower forwarded to the replica it
// believes leads. A replica that does not lead answers such a request 503
// instead of forwarding it again, so a stale view of the leader (the lease
// just changed hands) can never make two followers bounce a request.
const ForwardedHeader = "Signet-Forwarded-By"

// Replica is one of several signet-server processes on one database
// (replicas.advertise_url). The one holding the database's writer lease
// leads: it runs the whole Server and answers every request. The others
// follow: they forward each request to the leader's advertised address and
// pass its answer back, so an entry one replica acknowledged is readable,
// provable and searchable from every replica at once (one process serves
// every read, so no replica's view can be stale).
//
// A follower tries to take the lease every quarter of its TTL. When the
// leader dies its lease expires and one follower takes it, starts a Server
// (which catches the trees up as any start-up does: nothing a dead leader
// acknowledged is lost, since acknowledged means committed) and leads.
// Requests that reach a follower meanwhile get 503 with Retry-After, never
// a hang. A leader that finds its lease taken (it was paused or cut off
// past the TTL) closes its Server, whose batches the lease's fence already
// refused, and follows.
type Replica struct {
	ctx    context.Context // the process's: the Server a takeover starts lives in it
	cfg    config.Config
	opts   Options
	logger *slog.Logger
	pool   *pgxpool.Pool // the replica's own, for the lease
	tls    *certfiles.Pair
	ttl    time.Duration
	// self is cfg.Replicas.AdvertiseURL without a path, as the lease
	// records it.
	self    string
	selfURL *url.URL

	// leader is the Server while this replica leads.
	leader atomic.Pointer[Server]
	// reads serve the log's reads while this replica follows (nil while
	// the log cannot be followed: then everything is forwarded).
	reads atomic.Pointer[followerReads]
	// logSigner and logV2Signer are the logs' keys, opened at start-up (so
	// a wrong key stops a follower at once, not at its first takeover);
	// nil without a log, and without log.v2.enabled.
	logSigner, logV2Signer crypto.Signer
	// readsErr is why reads could not start, as last logged.
	readsErr string
	// target is the leader followers forward to, as the lease names it.
	target    atomic.Pointer[leaderAddr]
	promoting atomic.Bool
	// notLeadingUntil holds a replica that failed to start as the leader
	// back from the lease for a while, so that another can take it (the
	// watch loop's own).
	notLeadingUntil time.Time
	// poke asks the watch loop to look at the lease now (a forward found
	// the leader gone).
	poke chan struct{}
	// unreachable is the leader whose failed forward was last logged, and
	// when: a dead leader fails every request until the failover, and one
	// line a minute says so.
	unreachable atomic.Pointer[loggedFailure]
	proxy       *httputil.ReverseProxy
	handler     http.Handler

	// own holds the replica's metrics; process the Go runtime's and the
	// HTTP metrics of the requests a follower answers itself, served while
	// following (a leading Server registers its own of both).
	own, process   *prometheus.Registry
	metricsHandler http.Handler
	leading        prometheus.Gauge
	takeovers      prometheus.Counter
	servedLocally  prometheus.Counter
	forwarded      *prometheus.CounterVec
	// local wraps the requests a follower answers itself: counted, in
	// the HTTP metrics, their bodies within the replica's budget (as the
	// leader's are within its own); forwarded ones are the leader's.
	local []func(http.Handler) http.Handler

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// leaderAddr is a leader as the lease named it. Its context ends when the
// lease names another: requests forwarded to it are cut off then, instead
// of waiting on a leader that may be paused or gone without a reset.
type leaderAddr struct {
	holder string
	url    *url.URL
	ctx    context.Context
	cancel context.CancelFunc
}

// follow forwards to the lease's holder from now on; a holder that is
// not a replica (no advertise_url) has nowhere to be forwarded to.
func (r *Replica) follow(held lease.HeldError) error {
	u, err := url.Parse(held.Address)
	if !held.Replica || err != nil {
		return fmt.Errorf("the writer lease is held by %s at %q, which is not a replica's advertised URL: give every server on this database replicas.advertise_url", held.Holder, held.Address)
	}
	r.setTarget(held.Holder, u)
	return nil
}

// setTarget makes holder at u the leader followers forward to.
func (r *Replica) setTarget(holder string, u *url.URL) {
	if t := r.target.Load(); t != nil && t.holder == holder {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	if old := r.target.Swap(&leaderAddr{holder: holder, url: u, ctx: ctx, cancel: cancel}); old != nil {
		old.cancel()
		if tr, ok := r.proxy.Transport.(*http.Transport); ok {
			tr.CloseIdleConnections()
		}
	}
	switch {
	case holder == r.leaseHolder():
	case u.String() == r.self:
		r.logger.Error("the writer lease's holder advertises this replica's own address: writes are refused until that changes. Either it is this replica's previous run (its lease expires within replicas.lease_seconds), or two replicas were given the same replicas.advertise_url",
			"holder", holder, "advertise_url", r.self)
	default:
		r.logger.Info("the leader is", "holder", holder, "url", u.String())
	}
}

// leaseHolder is this replica's name in the lease while it leads.
func (r *Replica) leaseHolder() string {
	if srv := r.leader.Load(); srv != nil {
		return srv.lease.Holder()
	}
	return ""
}

type loggedFailure struct {
	holder string
	at     time.Time
}

// targetKey carries the leaderAddr a forwarded request is sent to.
type targetKey struct{}

// NewReplica starts this process as one replica: leading at once if the
// writer lease is free (a start-up error is then returned, as New's), else
// following the replica that holds it.
func NewReplica(ctx context.Context, cfg config.Config, opts Options) (_ *Replica, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := cfg.Validate(opts.Dev); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	if cfg.Replicas.AdvertiseURL == "" {
		return nil, errors.New("replicas.advertise_url is not set: a replica needs the address the others reach it at")
	}
	self, err := url.Parse(cfg.Replicas.AdvertiseURL)
	if err != nil {
		return nil, fmt.Errorf("replicas.advertise_url: %w", err)
	}
	self.Path = ""
	r := &Replica{
		ctx: ctx, cfg: cfg, opts: opts, logger: slog.New(requestid.LogHandler(opts.Logger.Handler())),
		ttl: time.Duration(cfg.Replicas.LeaseSeconds) * time.Second, self: self.String(), selfURL: self,
		stop: make(chan struct{}), done: make(chan struct{}), poke: make(chan struct{}, 1),
	}
	defer func() {
		if err != nil {
			if r.pool != nil {
				r.pool.Close()
			}
		}
	}()
	if cfg.TLS.Enabled() {
		if r.tls, err = certfiles.Load(cfg.TLS.CertFile, cfg.TLS.KeyFile, r.logger); err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
	}
	if r.pool, err = db.Connect(ctx, cfg.Database.URL); err != nil {
		return nil, err
	}
	if err := refuseOtherKind(ctx, r.pool, opts.Dev); err != nil {
		return nil, err
	}
	// The lease lives in the schema, which replicas migrate at start
	// (under the migrations' advisory lock, so replicas starting together
	// take turns): a replica of a newer release joining older ones brings
	// its migrations, which only ever add.
	if err := db.Migrate(ctx, r.pool); err != nil {
		return nil, err
	}
	if cfg.LogEnabled() {
		if r.logSigner, r.logV2Signer, err = logSigners(cfg, opts); err != nil {
			return nil, err
		}
	}
	if err := checkLeaderKeys(cfg, opts); err != nil {
		return nil, err
	}
	r.metricsInit()
	// Series of their own: a replica that leads serves its Server's of the
	// same names, and one that steps down again must not have these go on
	// from the leader's counts, or jump back to its own.
	following := prometheus.WrapRegistererWith(prometheus.Labels{"replica": "follower"}, r.process)
	budget, err := newBodyBudget(cfg, opts.Dev, following)
	if err != nil {
		return nil, err
	}
	r.local = []func(http.Handler) http.Handler{
		func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				r.servedLocally.Inc()
				next.ServeHTTP(w, req)
			})
		},
		newHTTPMetrics(following).middleware, budget.Middleware,
	}
	r.proxy = r.newProxy()
	r.handler = requestid.Middleware(http.HandlerFunc(r.serve))
	if err := r.tryLead(ctx); err != nil {
		return nil, err
	}
	if t := r.target.Load(); r.leader.Load() == nil && t != nil {
		r.logger.Info("replica following", "leader", t.holder, "leader_url", t.url.String(), "advertise_url", r.self)
	}
	if r.leader.Load() == nil {
		// A follower configured with another hostname than the leader's
		// would sign other checkpoints when it leads: refused at once.
		var origin *tlog.OriginError
		if err := r.startReads(ctx); errors.As(err, &origin) {
			return nil, err
		}
	}
	go r.watch()
	return r, nil
}

// tryLead takes the writer lease if it is free and starts the Server on
// it; a lease another replica holds becomes the follower's target. Only a
// failed start after the lease was taken is an error (the lease is given
// up first, for another replica to try).
func (r *Replica) tryLead(ctx context.Context) error {
	tctx, cancel := context.WithTimeout(ctx, r.ttl)
	defer cancel()
	var l *lease.Lease
	var err error
	if time.Now().Before(r.notLeadingUntil) {
		// Held back after a failed start: only who leads is looked at.
		held, cerr := lease.Current(tctx, r.pool)
		if err = cerr; err == nil {
			err = &held
		}
	} else {
		l, err = lease.Acquire(tctx, r.pool, leaseOptions(r.self, true, r.ttl, 0, r.logger))
	}
	var held *lease.HeldError
	switch {
	case errors.As(err, &held):
		return r.follow(*held)
	case err != nil:
		// The database unreachable: still following whom we knew.
		r.logger.Warn("trying the writer lease", "err", err)
		return nil
	}
	r.promoting.Store(true)
	defer r.promoting.Store(false)
	start := time.Now()
	opts := r.opts
	opts.Lease = l
	opts.Logger = r.logger
	srv, err := New(r.ctx, r.cfg, opts)
	if err != nil {
		if rerr := l.Release(context.WithoutCancel(ctx)); rerr != nil {
			r.logger.Warn("giving up the writer lease after a failed start", "err", rerr)
		}
		// Another replica's turn: this one would fail again at once.
		r.notLeadingUntil = time.Now().Add(4 * r.ttl)
		return fmt.Errorf("starting as the leader (the lease is given up; this replica leaves it to the others for %s): %w", 4*r.ttl, err)
	}
	r.leader.Store(srv)
	r.stopReads()
	r.setTarget(l.Holder(), r.selfURL)
	r.leading.Set(1)
	r.takeovers.Inc()
	r.logger.Info("replica leading", "advertise_url", r.self, "startup_seconds", time.Since(start).Seconds())
	return nil
}

// watch follows the lease every quarter of its TTL until Close: a
// follower tries to take it, a leader that lost it steps down.
func (r *Replica) watch() {
	defer close(r.done)
	t := time.NewTicker(r.ttl / 4)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		case <-r.poke:
		}
		if srv := r.leader.Load(); srv != nil {
			if srv.lease.Lost() {
				r.stepDown(srv)
			}
			continue
		}
		if err := r.tryLead(r.ctx); err != nil {
			// This replica cannot lead (a key it cannot open, say): it
			// keeps following, and says why each time.
			r.logger.Error("this replica cannot lead; it keeps following", "err", err)
		}
		if r.leader.Load() == nil {
			r.checkReads()
		}
		// A tick that came due while the above took long is not a reason
		// to go again at once.
		t.Reset(r.ttl / 4)
	}
}

// stepDown closes the Server of a leader whose lease another replica took
// and follows that one. Requests still inside the Server end in 5xx: its
// batches could no longer commit anyway (the fence).
func (r *Replica) stepDown(srv *Server) {
	r.leader.Store(nil)
	r.leading.Set(0)
	r.logger.Error("another replica took the writer lease: stepping down to follow it")
	// Follow first, then close: requests meanwhile go to the new leader.
	ctx, cancel := context.WithTimeout(r.ctx, r.ttl)
	if held, err := lease.Current(ctx, r.pool); err == nil {
		r.follow(held) //nolint:errcheck // a lone server cannot have taken a replica's lease; the next round says so if it did
	}
	cancel()
	r.startReads(r.ctx)
	srv.Close(context.WithoutCancel(r.ctx))
}

// startReads starts serving the log's reads from the database, if there
// is a log and it can be followed (its tree exists, and is still this
// replica's key's); otherwise every request is forwarded, and the reason
// logged once.
func (r *Replica) startReads(ctx context.Context) error {
	if r.logSigner == nil || r.reads.Load() != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*r.ttl)
	defer cancel()
	reads, err := openFollowerReads(ctx, r.cfg, r.pool, r.logSigner, r.logV2Signer, r.logger, r.local, http.HandlerFunc(r.forward))
	if err != nil {
		if msg := err.Error(); msg != r.readsErr {
			r.readsErr = msg
			r.logger.Warn("this follower forwards the log's reads to the leader too", "err", err)
		}
		return err
	}
	r.readsErr = ""
	r.reads.Store(reads)
	r.logger.Info("follower serving the log's reads", "tree_id", reads.log.TreeID())
	return nil
}

// checkReads keeps a follower's reads going: started once the log can be
// followed, and stopped when its tree is no longer the current one (the
// leader rotated the log's key: this replica's configuration is stale).
func (r *Replica) checkReads() {
	reads := r.reads.Load()
	if reads == nil {
		r.startReads(r.ctx)
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, r.ttl)
	defer cancel()
	if ok, err := reads.current(ctx); err == nil && !ok {
		r.stopReads()
		r.startReads(r.ctx) // logs why not, once
	}
}

// stopReads stops serving reads locally; requests in flight finish.
func (r *Replica) stopReads() {
	if reads := r.reads.Swap(nil); reads != nil {
		reads.close()
	}
}

// serve answers one request: through the Server while leading, else by
// forwarding it to the leader.
func (r *Replica) serve(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path == "/metrics" && r.cfg.Metrics.Listen == "" {
		r.metricsHandler.ServeHTTP(w, req)
		return
	}
	if srv := r.leader.Load(); srv != nil {
		// The Server's own middleware keeps the ID this one gave.
		req.Header.Set(requestid.Header, requestid.FromContext(req.Context()))
		srv.Handler().ServeHTTP(w, req)
		return
	}
	if req.URL.Path == "/healthz" {
		r.healthz(w, req)
		return
	}
	if reads := r.reads.Load(); reads != nil {
		reads.handler.ServeHTTP(w, req)
		return
	}
	r.forward(w, req)
}

// forward hands a request to the leader.
func (r *Replica) forward(w http.ResponseWriter, req *http.Request) {
	t := r.target.Load()
	switch {
	case r.promoting.Load():
		r.unavailable(w, "this replica is taking over as the leader")
	case req.Header.Get(ForwardedHeader) != "":
		r.unavailable(w, "this replica no longer leads (the writer lease changed hands)")
	case t == nil:
		r.unavailable(w, "no replica leads at the moment: a failover is under way")
	case t.url.String() == r.self:
		r.unavailable(w, "the writer lease names this replica's address but another process holds it (this replica's previous run, until its lease expires, or a replica given the same replicas.advertise_url)")
	default:
		// Cut off when the lease names another leader.
		ctx, cancel := context.WithCancel(context.WithValue(req.Context(), targetKey{}, t))
		defer cancel()
		defer context.AfterFunc(t.ctx, cancel)()
		r.proxy.ServeHTTP(w, req.WithContext(ctx))
	}
}

// unavailable answers 503 with Retry-After: a failover lasts about the
// lease's TTL.
func (r *Replica) unavailable(w http.ResponseWriter, why string) {
	r.forwarded.WithLabelValues("unavailable").Inc()
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, why+"; retry shortly")
}

// healthz is a follower's: it can serve (forward) as long as it reaches the
// database, where the lease says who leads.
func (r *Replica) healthz(w http.ResponseWriter, req *http.Request) {
	if databaseAnswers(w, req, r.pool) {
		w.Write([]byte("ok\n")) //nolint:errcheck
	}
}

// newProxy forwards to the leader the lease names. Connection failures
// (the leader just died) answer 503 with Retry-After at once; a leader
// that accepted the request but never answers is bounded by the request
// timeout, so a client never hangs.
func (r *Replica) newProxy() *httputil.ReverseProxy {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.ResponseHeaderTimeout = time.Duration(r.cfg.HTTP.RequestTimeoutSeconds)*time.Second + 5*time.Second
	tr.MaxIdleConnsPerHost = 64
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	return &httputil.ReverseProxy{
		Transport: tr,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(pr.In.Context().Value(targetKey{}).(*leaderAddr).url)
			pr.SetXForwarded()
			// The public name the client used, for anything the leader
			// derives from it.
			pr.Out.Host = pr.In.Host
			pr.Out.Header.Set(ForwardedHeader, r.self)
			pr.Out.Header.Set(requestid.Header, requestid.FromContext(pr.In.Context()))
		},
		ModifyResponse: func(resp *http.Response) error {
			r.forwarded.WithLabelValues(strconv.Itoa(resp.StatusCode/100) + "xx").Inc()
			// The leader's answer carries the request ID the follower
			// sent it, which the follower's own answer has already.
			resp.Header.Del(requestid.Header)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, req *http.Request, err error) {
			t := req.Context().Value(targetKey{}).(*leaderAddr)
			switch {
			case t.ctx.Err() != nil:
				r.unavailable(w, "the leader changed while the request was forwarded to it")
				return
			case req.Context().Err() != nil:
				return // the client gave up: nobody to answer
			}
			now := time.Now()
			if prev := r.unreachable.Load(); (prev == nil || prev.holder != t.holder || now.Sub(prev.at) > time.Minute) &&
				r.unreachable.CompareAndSwap(prev, &loggedFailure{holder: t.holder, at: now}) {
				r.logger.WarnContext(req.Context(), "the leader does not answer; answering 503 until it does or another replica leads (logged once a minute)", "leader", t.holder, "url", t.url.String(), "err", err)
			}
			select { // look at the lease now: the leader may have given it up
			case r.poke <- struct{}{}:
			default:
			}
			r.unavailable(w, "the leader did not answer (a failover may be under way)")
		},
	}
}

func (r *Replica) metricsInit() {
	r.own, r.process = prometheus.NewRegistry(), prometheus.NewRegistry()
	r.process.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	r.leading = prometheus.NewGauge(prometheus.GaugeOpts{Name: "signet_replica_leading", Help: "1 while this replica holds the writer lease and serves every request, 0 while it forwards to the leader."})
	r.takeovers = prometheus.NewCounter(prometheus.CounterOpts{Name: "signet_replica_takeovers_total", Help: "Times this replica took the writer lease and started leading."})
	r.forwarded = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "signet_replica_forwarded_requests_total", Help: "Requests this replica forwarded to the leader while following, by the leader's status class; \"unavailable\" counts those answered 503 because no leader could be reached."}, []string{"code"})
	r.servedLocally = prometheus.NewCounter(prometheus.CounterOpts{Name: "signet_replica_requests_served_locally_total", Help: "Reads of the logs this replica answered itself from the database while following, instead of forwarding them."})
	r.own.MustRegister(r.leading, r.takeovers, r.forwarded, r.servedLocally)
	r.metricsHandler = promhttp.HandlerFor(prometheus.Gatherers{r.own, prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		if srv := r.leader.Load(); srv != nil {
			return srv.gatherer.Gather()
		}
		return r.process.Gather()
	})}, promhttp.HandlerOpts{})
}

// Handler serves every request: the leader's Server, or the forwarder.
func (r *Replica) Handler() http.Handler { return r.handler }

// TLSConfig is the public listener's, or nil without tls.*.
func (r *Replica) TLSConfig() *tls.Config { return tlsConfig(r.tls) }

// MetricsHandler serves the replica's metrics and, while it leads, the
// Server's.
func (r *Replica) MetricsHandler() http.Handler { return r.metricsHandler }

// Leading is the Server while this replica leads, else nil.
func (r *Replica) Leading() *Server { return r.leader.Load() }

// Close stops following and, if leading, closes the Server, which gives
// the lease up so that another replica leads at once.
func (r *Replica) Close(ctx context.Context) {
	r.closeOnce.Do(func() { close(r.stop) })
	<-r.done
	if srv := r.leader.Swap(nil); srv != nil {
		srv.Close(ctx)
	}
	r.stopReads()
	if t := r.target.Load(); t != nil {
		t.cancel()
	}
	if tr, ok := r.proxy.Transport.(*http.Transport); ok {
		tr.CloseIdleConnections()
	}
	r.pool.Close()
}
