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
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	actors "github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/internal/telemetry"
)

// baseFlags are the settings of every long-running role.
type baseFlags struct {
	eventlog, eventlogSecret *string
	views, viewsSecret       *string
	logLevel, adminAddr      *string
	deployment               *string
	emf                      *bool
}

func addBaseFlags(f *flags, adminAddr string) *baseFlags {
	return &baseFlags{
		eventlog:       eventLogFlag(f),
		eventlogSecret: f.string("eventlog-secret-arn", "", "Secrets Manager secret holding the event log connection string (wins over --eventlog)", "PICKUP_EVENTLOG_SECRET_ARN"),
		views:          viewsFlag(f),
		viewsSecret:    f.string("views-secret-arn", "", "Secrets Manager secret for PostgreSQL: an RDS secret or a postgres:// URL (wins over --views)", "PICKUP_VIEWS_SECRET_ARN"),
		logLevel:       f.string("log-level", "info", "debug, info, warn or error", "PICKUP_LOG_LEVEL"),
		adminAddr:      f.string("admin-addr", adminAddr, "where /metrics, /healthz and /readyz are served (empty: nowhere)", "PICKUP_ADMIN_ADDR"),
		deployment:     f.string("deployment", "local", "deployment name, the Deployment dimension of CloudWatch metrics", "PICKUP_DEPLOYMENT"),
		emf:            f.boolean("emf", false, "also print metrics as CloudWatch embedded-metric-format lines on stdout", "PICKUP_EMF"),
	}
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
	logAt, err := resolveSecret(ctx, *b.eventlogSecret, *b.eventlog, func(secret, _ string) (string, error) { return strings.TrimSpace(secret), nil })
	if err != nil {
		return nil, fmt.Errorf("event log secret: %w", err)
	}
	store, err := openEventLog(ctx, logAt)
	if err != nil {
		return nil, err
	}
	p.events = telemetry.NewLog(store, logMetrics, role)
	p.log = p.events
	p.closers = append(p.closers, p.log.Close)
	viewsAt, err := resolveSecret(ctx, *b.viewsSecret, *b.views, postgresSecret)
	if err != nil {
		p.close()
		return nil, fmt.Errorf("views secret: %w", err)
	}
	if p.views, err = openViews(ctx, viewsAt); err != nil {
		p.close()
		return nil, err
	}
	p.closers = append(p.closers, p.views.Close)
	p.health.add("eventlog", func(ctx context.Context) error { _, err := p.log.Head(ctx); return err })
	p.health.add("views", func(ctx context.Context) error { _, err := p.views.Checkpoint(ctx); return err })
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

// serve adds the admin server, and an actor that ends the group when ctx
// ends (a signal), then runs every actor until one stops; the others are
// interrupted and drained. A clean stop returns nil.
func (p *proc) serve(ctx context.Context, adminAddr string) error {
	defer p.close()
	if adminAddr != "" {
		srv, err := listen("admin", adminAddr, adminHandler(p.reg, p.health), p.logger)
		if err != nil {
			return err
		}
		p.group.Add(srv.execute, srv.interrupt)
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

// resolveSecret returns the value of a Secrets Manager secret when arn is
// set, converted by decode (which also sees the setting the secret
// completes); otherwise fallback.
func resolveSecret(ctx context.Context, arn, fallback string, decode func(secret, fallback string) (string, error)) (string, error) {
	if arn == "" {
		return fallback, nil
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &arn})
	if err != nil {
		return "", fmt.Errorf("read %s: %w", arn, err)
	}
	if out.SecretString == nil {
		return "", fmt.Errorf("secret %s holds no string", arn)
	}
	return decode(*out.SecretString, fallback)
}

// postgresSecret accepts a postgres:// URL, or the JSON of an RDS-managed
// secret: its username and password, with host, port and dbname from the
// secret where it has them and from views (a postgres:// URL) otherwise.
// RDS's own managed master secret holds only username and password.
func postgresSecret(secret, views string) (string, error) {
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
	if strings.HasPrefix(views, "postgres://") || strings.HasPrefix(views, "postgresql://") {
		parsed, err := url.Parse(views)
		if err != nil {
			return "", fmt.Errorf("views URL: %w", err)
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
		return "", errors.New("the RDS secret names no host, and the views setting is no postgres:// URL to take it from")
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/postgres"
	}
	return u.String(), nil
}
