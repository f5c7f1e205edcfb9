package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	actors "github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/internal/awsconfig"
	"github.com/pickup-ipfs/pickup/internal/telemetry"
	"github.com/pickup-ipfs/pickup/projections/postgres"
)

// baseFlags are the settings of every long-running role.
type baseFlags struct {
	*storeFlags
	logLevel, adminAddr *string
	deployment          *string
	emf                 *bool
	// Every HTTP server's timeouts, and the admin server's cap.
	readHeaderTimeout, readTimeout *time.Duration
	writeTimeout, idleTimeout      *time.Duration
	adminConns                     *int
}

func addBaseFlags(f *flags, adminAddr string) *baseFlags {
	return &baseFlags{
		storeFlags: addStoreFlags(f),
		logLevel:   f.string("log-level", "info", "debug, info, warn or error", "PICKUP_LOG_LEVEL"),
		adminAddr:  f.string("admin-addr", adminAddr, "where /metrics, /healthz and /readyz are served (empty: nowhere)", "PICKUP_ADMIN_ADDR"),
		deployment: f.string("deployment", "local", "deployment name, the Deployment dimension of CloudWatch metrics", "PICKUP_DEPLOYMENT"),
		emf:        f.boolean("emf", false, "also print metrics as CloudWatch embedded-metric-format lines on stdout", "PICKUP_EMF"),

		readHeaderTimeout: f.duration("http-read-header-timeout", 10*time.Second, "longest wait for a request's headers, on every HTTP server of the process", []string{"PICKUP_HTTP_READ_HEADER_TIMEOUT"}),
		readTimeout:       f.duration("http-read-timeout", 30*time.Second, "longest wait for a whole request, body included (a slow body is cut off), on every HTTP server", []string{"PICKUP_HTTP_READ_TIMEOUT"}),
		writeTimeout:      f.duration("http-write-timeout", 2*time.Minute, "longest time from a request's headers to the end of its answer, on every HTTP server", []string{"PICKUP_HTTP_WRITE_TIMEOUT"}),
		idleTimeout:       f.duration("http-idle-timeout", time.Minute, "longest a keep-alive connection waits for its next request, on every HTTP server", []string{"PICKUP_HTTP_IDLE_TIMEOUT"}),
		adminConns:        f.integer("admin-max-conns", defaultAdminConns, "most connections the admin server holds; beyond, the idle longest is closed, or the new one answered 503", "PICKUP_ADMIN_MAX_CONNS"),
	}
}

// serverConfig is an HTTP server's settings: the timeouts every server has,
// and limits, its caps.
func (b *baseFlags) serverConfig(limits connLimits) (serverConfig, error) {
	for name, d := range map[string]time.Duration{"--http-read-header-timeout": *b.readHeaderTimeout, "--http-read-timeout": *b.readTimeout,
		"--http-write-timeout": *b.writeTimeout, "--http-idle-timeout": *b.idleTimeout} {
		if d <= 0 {
			return serverConfig{}, fmt.Errorf("%w: %s %v: want a positive duration", errUsage, name, d)
		}
	}
	if limits.max < 1 || limits.perClient < 0 {
		return serverConfig{}, fmt.Errorf("%w: connection caps %d (per client %d): want at least 1 (per client: 0 for none)", errUsage, limits.max, limits.perClient)
	}
	return serverConfig{readHeader: *b.readHeaderTimeout, read: *b.readTimeout, write: *b.writeTimeout, idle: *b.idleTimeout, limits: limits}, nil
}

// proc is a running process: its logger, metrics, health checks, stores,
// and the group of actors that run until one stops.
type proc struct {
	role   string
	stdout io.Writer
	// getenv reads the process's environment (the env tests inject).
	getenv func(string) string
	logger *slog.Logger
	reg    *prometheus.Registry
	health *health
	// log is the event log, counted (appends, subscriptions) under the
	// role's name; events is the same, for logAs.
	log     eventlog.Store
	events  *telemetry.Log
	views   viewStore
	group   actors.Group
	closers []func() error
	// conns counts the connections of the process's HTTP servers; admin
	// is the admin server, once listening.
	conns *telemetry.ConnMetrics
	admin *httpServer
}

// open sets a process up: logger, metrics, and the stores.
func (b *baseFlags) open(ctx context.Context, e *env, role string) (*proc, error) {
	logger, err := newLogger(e.stderr, *b.logLevel)
	if err != nil {
		return nil, err
	}
	p := &proc{role: role, stdout: e.stdout, getenv: e.getenv, logger: logger.With("role", role), reg: newRegistry(), health: newHealth()}
	logMetrics, err := telemetry.NewLogMetrics(p.reg)
	if err != nil {
		return nil, err
	}
	if p.conns, err = telemetry.NewConnMetrics(p.reg); err != nil {
		return nil, err
	}
	store, err := b.openLog(ctx)
	if err != nil {
		return nil, err
	}
	if e.wrapLog != nil {
		store = e.wrapLog(store)
	}
	p.events = telemetry.NewLog(store, logMetrics, role)
	p.log = p.events
	p.closers = append(p.closers, p.log.Close)
	opened, err := b.openViews(ctx)
	if err != nil {
		p.close()
		return nil, err
	}
	// The views may be a new version building from the log: their reads
	// are guarded until they reach where the log is now.
	head, err := p.log.Head(ctx)
	if err != nil {
		opened.Close()
		p.close()
		return nil, fmt.Errorf("read the log's head: %w", err)
	}
	p.views = &buildingViews{viewStore: opened, target: head}
	p.closers = append(p.closers, p.views.Close)
	p.health.add("eventlog", func(ctx context.Context) error { _, err := p.log.Head(ctx); return err })
	p.health.add("views", func(ctx context.Context) error { _, err := p.views.Checkpoint(ctx); return err })
	// A subscription that failed is followed again with backoff: not ready
	// meanwhile (pickup_subscription_up says which).
	p.health.add("subscriptions", p.events.Following)
	return p, nil
}

// logAs is the event log with its subscriptions counted under name, so
// that each part of the process (projections, fetcher) shows its own lag.
func (p *proc) logAs(name string) eventlog.Store { return p.events.As(name) }

// close closes the stores, last opened first.
func (p *proc) close() {
	for i := len(p.closers) - 1; i >= 0; i-- {
		if err := p.closers[i](); err != nil {
			p.logger.Warn("closing", "err", err)
		}
	}
}

// actor adds a part that runs until its context ends.
func (p *proc) actor(name string, fn func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	p.group.Add(func() error {
		err := fn(ctx)
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}, func(error) { cancel() })
}

// addAdmin starts the admin server (/metrics, /healthz, /readyz) on
// b's --admin-addr, if any, and returns it (nil for none). Its own cap
// keeps it reachable during a flood of the API.
func (p *proc) addAdmin(b *baseFlags) (*httpServer, error) {
	if p.admin != nil || *b.adminAddr == "" {
		return p.admin, nil
	}
	cfg, err := b.serverConfig(connLimits{max: *b.adminConns})
	if err != nil {
		return nil, err
	}
	srv, err := listen("admin", *b.adminAddr, cfg, adminHandler(p.reg, p.health), p.conns, p.logger)
	if err != nil {
		return nil, err
	}
	p.group.Add(srv.execute, srv.interrupt)
	p.admin = srv
	return srv, nil
}

// serve adds the admin server (unless addAdmin did), and an actor that ends
// the group when ctx ends (a signal), then runs every actor until one
// stops; the others are interrupted and drained. A clean stop returns nil.
func (p *proc) serve(ctx context.Context, b *baseFlags) error {
	defer p.close()
	if _, err := p.addAdmin(b); err != nil {
		return err
	}
	stop := make(chan struct{})
	p.group.Add(func() error {
		select {
		case <-ctx.Done():
			p.logger.Info("stopping", "why", context.Cause(ctx))
		case <-stop:
		}
		return nil
	}, func(error) { close(stop) })
	return p.group.Run()
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("%w: log level %q: want debug, info, warn or error", errUsage, level)
	}
	// One JSON line per record, with the ids the record's context carries
	// (request_id, pin_request_id).
	return slog.New(telemetry.NewHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))), nil
}

// secretReader returns a function that reads the string of the Secrets
// Manager secret arn (its current version) each time it is called. The
// client's configuration comes from awsconfig.Load, once.
func secretReader(ctx context.Context, arn string) (func(context.Context) (string, error), error) {
	cfg, err := awsconfig.Load(ctx)
	if err != nil {
		return nil, err
	}
	client := secretsmanager.NewFromConfig(cfg)
	return func(ctx context.Context) (string, error) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		out, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &arn})
		if err != nil {
			return "", fmt.Errorf("read %s: %w", arn, err)
		}
		if out.SecretString == nil {
			return "", fmt.Errorf("secret %s holds no string", arn)
		}
		return *out.SecretString, nil
	}, nil
}

// credentials give a new PostgreSQL connection its user name and password
// (projections/postgres.Credentials, eventlog/postgres.Options.Credentials).
type credentials = func(ctx context.Context) (user, password string, err error)

// viewsLocation returns where the views are: see secretLocation.
func viewsLocation(ctx context.Context, arn, views string) (string, postgres.Credentials, error) {
	at, creds, err := secretLocation(ctx, arn, views, nil)
	return at, postgres.Credentials(creds), err
}

// secretLocation returns where a PostgreSQL store is: base itself when arn
// is empty; otherwise the URL the secret arn completes (see
// postgresSecret), and the credentials of every new connection, read from
// the secret again (projections/postgres caches them for
// postgres.DefaultCredentialsTTL, and reads again at once after the server
// refused them), so that a rotated password needs no restart. A secret
// that asIs accepts (a connection string of another kind) is the location
// itself, with no credentials.
func secretLocation(ctx context.Context, arn, base string, asIs func(secret string) bool) (string, credentials, error) {
	if arn == "" {
		return base, nil, nil
	}
	read, err := secretReader(ctx, arn)
	if err != nil {
		return "", nil, err
	}
	first, err := read(ctx)
	if err != nil {
		return "", nil, err
	}
	if asIs != nil && asIs(strings.TrimSpace(first)) {
		return strings.TrimSpace(first), nil, nil
	}
	at, err := postgresSecret(first, base)
	if err != nil {
		return "", nil, fmt.Errorf("secret %s: %w", arn, err)
	}
	// The first connection uses the value just read: a Lambda's cold
	// start reads the secret once.
	var unused atomic.Pointer[string]
	unused.Store(&first)
	return at, func(ctx context.Context) (string, string, error) {
		secret := first
		if unused.Swap(nil) == nil {
			var err error
			if secret, err = read(ctx); err != nil {
				return "", "", fmt.Errorf("secret %s: %w", arn, err)
			}
		}
		user, password, err := secretCredentials(secret)
		if err != nil {
			return "", "", fmt.Errorf("secret %s: %w", arn, err)
		}
		return user, password, nil
	}, nil
}

// isPostgresURL reports a postgres:// or postgresql:// URL.
func isPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// secretCredentials returns the user name and password a secret holds: a
// postgres:// URL's, or an RDS-style JSON secret's username and password.
func secretCredentials(secret string) (user, password string, err error) {
	secret = strings.TrimSpace(secret)
	if strings.HasPrefix(secret, "postgres://") || strings.HasPrefix(secret, "postgresql://") {
		u, err := url.Parse(secret)
		if err != nil || u.User == nil || u.User.Username() == "" {
			return "", "", errors.New("want a postgres:// URL with a user name, or JSON with username and password")
		}
		password, _ := u.User.Password()
		return u.User.Username(), password, nil
	}
	var creds struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := json.Unmarshal([]byte(secret), &creds); err != nil || creds.Username == "" {
		return "", "", errors.New("want a postgres:// URL or JSON with username and password")
	}
	return creds.Username, creds.Password, nil
}

// postgresSecret accepts a postgres:// URL, or the JSON of an RDS-managed
// secret: its username and password, with host, port and dbname from the
// secret where it has them and from base (a postgres:// URL: PICKUP_VIEWS,
// PICKUP_EVENTLOG) otherwise. RDS's own managed master secret holds only
// username and password.
func postgresSecret(secret, base string) (string, error) {
	secret = strings.TrimSpace(secret)
	if strings.HasPrefix(secret, "postgres://") || strings.HasPrefix(secret, "postgresql://") {
		return secret, nil
	}
	var rds struct {
		Username string          `json:"username"`
		Password string          `json:"password"`
		Host     string          `json:"host"`
		Port     json.RawMessage `json:"port"`
		DBName   string          `json:"dbname"`
	}
	if err := json.Unmarshal([]byte(secret), &rds); err != nil || rds.Username == "" {
		return "", errors.New("want a postgres:// URL or an RDS secret (JSON with username and password)")
	}
	u := &url.URL{Scheme: "postgres", RawQuery: "sslmode=require"}
	if isPostgresURL(base) {
		parsed, err := url.Parse(base)
		if err != nil {
			return "", fmt.Errorf("the URL the secret completes: %w", err)
		}
		u = parsed
	}
	u.User = url.UserPassword(rds.Username, rds.Password)
	if rds.Host != "" {
		port := strings.Trim(string(rds.Port), `"`)
		if port == "" {
			port = "5432"
		}
		u.Host = rds.Host + ":" + port
	}
	if rds.DBName != "" {
		u.Path = "/" + rds.DBName
	}
	if u.Host == "" {
		return "", errors.New("the RDS secret names no host, and the setting it completes (PICKUP_VIEWS, PICKUP_EVENTLOG) is no postgres:// URL to take it from")
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/postgres"
	}
	return u.String(), nil
}
