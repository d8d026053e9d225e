package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	fnote "github.com/transparency-dev/formats/note"

	"github.com/signet-dev/signet/ca/identity"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o600) //nolint:errcheck
		return p
	}
	good := write("good.yaml", "listen: 0.0.0.0:9000\nhostname: signet.example\ndatabase:\n  url: postgres://x/y\nlog:\n  signer: file:///k.pem\n  entry_types: [hashedrekord]\n")
	cfg, err := Load(good, func(k string) string {
		return map[string]string{"SIGNET_LOG_MAX_REQUEST_BYTES": "2048"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "0.0.0.0:9000" || cfg.Hostname != "signet.example" || cfg.Log.MaxRequestBytes != 2048 ||
		strings.Join(cfg.Log.EntryTypes, ",") != "hashedrekord" || cfg.Log.MaxBatch != 1024 {
		t.Fatalf("loaded %+v", cfg)
	}
	if err := cfg.Validate(false); err != nil {
		t.Fatal(err)
	}
	envWins, _ := Load(good, func(k string) string {
		return map[string]string{"DATABASE_URL": "postgres://env/db"}[k]
	})
	if envWins.Database.URL != "postgres://env/db" {
		t.Fatalf("DATABASE_URL did not override: %s", envWins.Database.URL)
	}

	for _, tt := range []struct{ name, body, want string }{
		{"unknown key", "lsiten: x\n", "field lsiten not found"},
		{"unknown nested key", "log:\n  signr: x\n", "field signr not found"},
		{"wrong type", "log:\n  max_batch: many\n", "cannot unmarshal"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(write(tt.name+".yaml", tt.body), func(string) string { return "" })
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml"), nil); err == nil {
		t.Fatal("missing config file accepted")
	}
}

func TestValidate(t *testing.T) {
	base := Defaults()
	base.Database.URL = "postgres://x/y"
	base.Log.Signer = "file:///k.pem"
	for _, tt := range []struct {
		name   string
		mutate func(*Config)
		dev    bool
		want   string
	}{
		{"ok", func(*Config) {}, false, ""},
		{"dev needs no database", func(c *Config) { c.Database.URL = ""; c.Log.Signer = "" }, true, ""},
		{"bad listen", func(c *Config) { c.Listen = "8080" }, false, "want host:port"},
		{"no signer", func(c *Config) { c.Log.Signer = "" }, false, "log.signer is required"},
		{"hostname with space", func(c *Config) { c.Hostname = "a b" }, false, "must not contain spaces"},
		{"queue too big", func(c *Config) { c.Log.QueueSize = 1 << 30 }, false, "queue_size"},
		{"tile cache too small", func(c *Config) { c.Log.TileCacheBytes = 4096 }, false, "log.tile_cache_bytes 4096 must be between"},
		{"memory limit too small", func(c *Config) { c.MemoryLimitBytes = 1 << 20 }, false, "memory_limit_bytes 1048576 must be between"},
		{"memory limit below the caches", func(c *Config) { c.Log.TileCacheBytes = 1 << 30; c.MemoryLimitBytes = 1 << 30 }, false, "less than log.tile_cache_bytes"},
		{"pprof on the public listener", func(c *Config) { c.Metrics.Pprof = true }, false, "metrics.pprof needs metrics.listen"},
		{"tls certificate without key", func(c *Config) { c.TLS.CertFile = "/etc/signet/tls.pem" }, false, "tls.cert_file and tls.key_file go together"},
		{"tls key without certificate", func(c *Config) { c.TLS.KeyFile = "/etc/signet/tls.key" }, false, "tls.cert_file and tls.key_file go together"},
		{"tls with an http public URL", func(c *Config) {
			c.TLS.CertFile, c.TLS.KeyFile, c.PublicURL = "/etc/signet/tls.pem", "/etc/signet/tls.key", "http://signet.example"
		}, false, `public_url "http://signet.example" is http://`},
		{"tls", func(c *Config) {
			c.TLS.CertFile, c.TLS.KeyFile, c.PublicURL = "/etc/signet/tls.pem", "/etc/signet/tls.key", "https://signet.example"
		}, false, ""},
		{"both listeners on free ports", func(c *Config) { c.Listen, c.Metrics.Listen = "127.0.0.1:0", "127.0.0.1:0" }, false, ""},
		{"metrics on the public listener", func(c *Config) { c.Listen, c.Metrics.Listen = "127.0.0.1:8080", "127.0.0.1:8080" }, false, "is the public listener"},
		{"pprof off it", func(c *Config) { c.Metrics.Pprof, c.Metrics.Listen = true, "127.0.0.1:9090" }, false, ""},
		{"a replica", func(c *Config) { c.Hostname, c.Replicas.AdvertiseURL = "signet.example", "http://10.0.0.5:8080" }, false, ""},
		{"a replica without hostname", func(c *Config) { c.Replicas.AdvertiseURL = "http://10.0.0.5:8080" }, false, "replicas.advertise_url needs hostname"},
		{"a replica advertising a path", func(c *Config) { c.Hostname, c.Replicas.AdvertiseURL = "s", "http://10.0.0.5:8080/signet" }, false, "with no path"},
		{"a replica advertising no scheme", func(c *Config) { c.Hostname, c.Replicas.AdvertiseURL = "s", "10.0.0.5:8080" }, false, "want this replica's own"},
		{"a replica in dev mode", func(c *Config) { c.Hostname, c.Replicas.AdvertiseURL = "s", "http://127.0.0.1:8080" }, true, "dev mode runs one server"},
		{"a replica advertising the public URL", func(c *Config) {
			c.Hostname, c.PublicURL, c.Replicas.AdvertiseURL = "s", "https://signet.example", "https://signet.example/"
		}, false, "is public_url"},
		{"lease too short", func(c *Config) { c.Replicas.LeaseSeconds = 0 }, false, "replicas.lease_seconds 0 must be between 1 and 300"},
		{"timeout zero", func(c *Config) { c.HTTP.RequestTimeoutSeconds = 0 }, false, "request_timeout_seconds"},
		{"no entry types", func(c *Config) { c.Log.EntryTypes = nil }, false, "entry_types"},
		{"tuf without snapshot key", func(c *Config) { c.TUF.TargetsSigner = "file:///t.pem"; c.TUF.TimestampSigner = "file:///ts.pem" }, false, "tuf.snapshot_signer"},
		{"tuf with offline root", func(c *Config) {
			c.TUF = TUF{TargetsSigner: "file:///t.pem", SnapshotSigner: "file:///s.pem", TimestampSigner: "file:///ts.pem"}
		}, false, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.mutate(&c)
			err := c.Validate(tt.dev)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// The ci_providers example of docs/configuration.md loads and validates.
func TestDocumentedCIProviderExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```yaml\nca:\n  ci_providers:")
	if !ok {
		t.Fatal("docs/configuration.md lost its ci_providers example")
	}
	block, _, _ := strings.Cut(rest, "```")
	path := filepath.Join(t.TempDir(), "ci.yaml")
	os.WriteFile(path, []byte("ca:\n  ci_providers:"+block), 0o600) //nolint:errcheck
	cfg, err := Load(path, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := identity.NewPool(cfg.CA.Issuers, cfg.CA.CIProviders, identity.Options{}); err != nil {
		t.Fatalf("documented issuer does not validate: %v", err)
	}
}

// The Rekor v2 log needs a key of its own, and one outside dev mode.
func TestLogV2Settings(t *testing.T) {
	for name, tc := range map[string]struct {
		change func(*Config)
		dev    bool
		want   string
	}{
		"production without a key":      {func(c *Config) { c.Log.V2.Enabled = true }, false, "log.v2.signer is required outside dev mode"},
		"production without public_url": {func(c *Config) { c.Log.V2.Enabled, c.Log.V2.Signer, c.PublicURL = true, "file:///v2.pem", "" }, false, "needs public_url"},
		"the v1 log's key":              {func(c *Config) { c.Log.V2.Enabled, c.Log.V2.Signer = true, c.Log.Signer }, false, "needs a key of its own"},
		"dev generates one":             {func(c *Config) { c.Log.V2.Enabled, c.Log.Signer = true, "" }, true, ""},
	} {
		c := Defaults()
		c.Database.URL = "postgres://db/signet"
		c.Log.Signer = "file:///etc/signet/log.pem"
		c.PublicURL = "https://signet.example.com"
		tc.change(&c)
		err := c.Validate(tc.dev)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

// log.v2.witness: witnesses need the v2 log, a URL and a verifier key each,
// and a quorum they can meet.
func TestWitnessSettings(t *testing.T) {
	const vkey = "witness.example+5a3e5ba2+BH0M8ZcE0vk/VHTQPZdx6ftx1lGg+pRiF2sGa5iMPA2K"
	w := func(url, key string) WitnessEndpoint { return WitnessEndpoint{URL: url, Key: key} }
	quorum := func(n int) *int { return &n }
	for name, tc := range map[string]struct {
		change func(*Witness)
		v2     bool
		want   string
	}{
		"off":                 {func(*Witness) {}, false, ""},
		"one witness":         {func(x *Witness) { x.Witnesses = []WitnessEndpoint{w("https://w.example/", vkey)} }, true, ""},
		"without the v2 log":  {func(x *Witness) { x.Witnesses = []WitnessEndpoint{w("https://w.example/", vkey)} }, false, "log.v2.enabled is off"},
		"quorum, no witness":  {func(x *Witness) { x.Quorum = quorum(1) }, true, "no witnesses are listed"},
		"quorum above them":   {func(x *Witness) { x.Witnesses, x.Quorum = []WitnessEndpoint{w("https://w.example/", vkey)}, quorum(2) }, true, "between 0 and the 1"},
		"quorum 0 fails open": {func(x *Witness) { x.Witnesses, x.Quorum = []WitnessEndpoint{w("https://w.example/", vkey)}, quorum(0) }, true, ""},
		"not a URL":           {func(x *Witness) { x.Witnesses = []WitnessEndpoint{w("w.example", vkey)} }, true, "must be an http(s) URL"},
		"not a key":           {func(x *Witness) { x.Witnesses = []WitnessEndpoint{w("https://w.example/", "w+1234+AAAA")} }, true, "is not a witness verifier key"},
		"listed twice": {func(x *Witness) {
			x.Witnesses = []WitnessEndpoint{w("https://w.example/", vkey), w("https://w2.example/", vkey)}
		}, true, "listed twice"},
		"same key, other name": {func(x *Witness) {
			x.Witnesses = []WitnessEndpoint{w("https://w.example/", vkey), w("https://w2.example/", "other.example+00000000+AX0M8ZcE0vk/VHTQPZdx6ftx1lGg+pRiF2sGa5iMPA2K")}
		}, true, "listed twice"},
		"a query in the URL": {func(x *Witness) { x.Witnesses = []WitnessEndpoint{w("https://w.example/?a=b", vkey)} }, true, "without a query"},
		"no timeout":         {func(x *Witness) { x.Witnesses, x.TimeoutSeconds = []WitnessEndpoint{w("https://w.example/", vkey)}, 0 }, true, "timeout_seconds 0"},
		"interval too long": {func(x *Witness) {
			x.Witnesses, x.IntervalSeconds = []WitnessEndpoint{w("https://w.example/", vkey)}, 3601
		}, true, "interval_seconds 3601"},
		"an ML-DSA witness key": {func(x *Witness) {
			_, mldsa, err := fnote.GenerateMLDSAKey("mldsa.example")
			if err != nil {
				t.Fatal(err)
			}
			x.Witnesses = []WitnessEndpoint{w("https://w.example/", mldsa)}
		}, true, "not an Ed25519 witness key"},
		"too many witnesses": {func(x *Witness) {
			for range MaxWitnesses + 1 {
				x.Witnesses = append(x.Witnesses, w("https://w.example/", vkey))
			}
		}, true, "more than 31"},
	} {
		c := Defaults()
		c.Log.V2.Enabled = tc.v2
		tc.change(&c.Log.V2.Witness)
		err := c.Validate(true)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

// The v1 and CT logs take witnesses too, each refused while its log is off.
func TestWitnessSettingsPerLog(t *testing.T) {
	const vkey = "witness.example+5a3e5ba2+BH0M8ZcE0vk/VHTQPZdx6ftx1lGg+pRiF2sGa5iMPA2K"
	one := Witness{Witnesses: []WitnessEndpoint{{URL: "https://w.example/", Key: vkey}}, TimeoutSeconds: 5, IntervalSeconds: 1}
	off := false
	for name, tc := range map[string]struct {
		change func(*Config)
		want   string
	}{
		"v1 log":     {func(c *Config) { c.Log.Witness = one }, ""},
		"CT log":     {func(c *Config) { c.CT.Witness = one }, ""},
		"v1 log off": {func(c *Config) { c.Log.Witness, c.Components.Log = one, &off }, "log.witness lists witnesses but the log is turned off"},
		"CT log off": {func(c *Config) { c.CT.Witness, c.Components.CT, c.CA.CT = one, &off, "none" }, "ct.witness lists witnesses but the CT log is turned off"},
		"CT, bad URL": {func(c *Config) {
			c.CT.Witness = one
			c.CT.Witness.Witnesses = []WitnessEndpoint{{URL: "ftp://w", Key: vkey}}
		}, "ct.witness.witnesses[0].url"},
		"v1, timeout too big": {func(c *Config) { c.Log.Witness = one; c.Log.Witness.TimeoutSeconds = 61 }, "log.witness.timeout_seconds 61"},
	} {
		c := Defaults()
		tc.change(&c)
		err := c.Validate(true)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}
