// Package config reads signet.yaml and SIGNET_* overrides. Unknown keys and
// bad values stop start-up with a message naming the key.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Config is the whole server configuration; docs/configuration.md describes
// every field.
type Config struct {
	// Listen is the one HTTP listener for every component.
	Listen string `yaml:"listen"`
	// Hostname names this instance in checkpoints ("<hostname> - <treeID>").
	Hostname string `yaml:"hostname"`
	// DataDir holds dev-mode state: managed PostgreSQL, generated keys.
	DataDir    string     `yaml:"data_dir"`
	Database   Database   `yaml:"database"`
	Components Components `yaml:"components"`
	Log        Log        `yaml:"log"`
	HTTP       HTTP       `yaml:"http"`
}

// Database says where PostgreSQL is.
type Database struct {
	// URL is a PostgreSQL connection URL; empty in dev mode starts a managed cluster.
	URL string `yaml:"url"`
}

// Components turns each service on or off.
type Components struct {
	Log *bool `yaml:"log"`
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
	// MaxBatch bounds the appends integrated together.
	MaxBatch int `yaml:"max_batch"`
	// QueueSize bounds the appends waiting for a batch (503 above it).
	QueueSize int `yaml:"queue_size"`
}

// HTTP bounds the listener.
type HTTP struct {
	// RequestTimeoutSeconds bounds the handling of one request.
	RequestTimeoutSeconds int `yaml:"request_timeout_seconds"`
}

// Defaults are the values used where the file is silent.
func Defaults() Config {
	return Config{
		Listen:  "127.0.0.1:8080",
		DataDir: "./.signet",
		Log: Log{
			EntryTypes:       []string{"hashedrekord", "dsse"},
			MaxRequestBytes:  10 << 20,
			MaxSearchResults: 1000,
			MaxBatch:         1024,
			QueueSize:        8192,
		},
		HTTP: HTTP{RequestTimeoutSeconds: 30},
	}
}

// LogEnabled reports whether the log component runs (default on).
func (c Config) LogEnabled() bool { return c.Components.Log == nil || *c.Components.Log }

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
		"SIGNET_LISTEN":       &cfg.Listen,
		"SIGNET_HOSTNAME":     &cfg.Hostname,
		"SIGNET_DATA_DIR":     &cfg.DataDir,
		"SIGNET_DATABASE_URL": &cfg.Database.URL,
		"SIGNET_LOG_SIGNER":   &cfg.Log.Signer,
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
	if strings.ContainsAny(c.Hostname, " \n+") {
		return fmt.Errorf("hostname %q must not contain spaces, newlines or '+'", c.Hostname)
	}
	if c.Log.MaxRequestBytes < 1024 || c.Log.MaxRequestBytes > 1<<30 {
		return fmt.Errorf("log.max_request_bytes %d must be between 1024 and 1073741824", c.Log.MaxRequestBytes)
	}
	if c.Log.MaxSearchResults < 1 || c.Log.MaxSearchResults > 100000 {
		return fmt.Errorf("log.max_search_results %d must be between 1 and 100000", c.Log.MaxSearchResults)
	}
	if c.Log.MaxBatch < 1 || c.Log.MaxBatch > 10000 {
		return fmt.Errorf("log.max_batch %d must be between 1 and 10000", c.Log.MaxBatch)
	}
	if c.Log.QueueSize < 1 || c.Log.QueueSize > 1000000 {
		return fmt.Errorf("log.queue_size %d must be between 1 and 1000000", c.Log.QueueSize)
	}
	if c.HTTP.RequestTimeoutSeconds < 1 || c.HTTP.RequestTimeoutSeconds > 3600 {
		return fmt.Errorf("http.request_timeout_seconds %d must be between 1 and 3600", c.HTTP.RequestTimeoutSeconds)
	}
	if len(c.Log.EntryTypes) == 0 {
		return errors.New("log.entry_types must name at least one kind")
	}
	return nil
}
