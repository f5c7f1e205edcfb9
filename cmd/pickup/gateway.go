// The gateway role: the HTTP APIs, as a server or on AWS Lambda.

package main

import (
	"context"
	"time"

	"github.com/pickup-ipfs/pickup/gateway"
	"github.com/pickup-ipfs/pickup/gateway/awslambda"
	"github.com/pickup-ipfs/pickup/internal/telemetry"
	"github.com/pickup-ipfs/pickup/presence"
)

// runGateway runs the gateway role, top to bottom: flags; the process
// (logger, registry, stores: b.open); the API (addGateway); the run group
// (p.serve).
func runGateway(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "gateway")
	b := addBaseFlags(f, "127.0.0.1:9464")
	g := addGatewayFlags(f)
	if err := f.parse(args); err != nil {
		return err
	}
	p, err := b.open(ctx, e, "gateway")
	if err != nil {
		return err
	}
	// Several gateways (Lambda instances) share the log: a read must wait
	// for the log's head, not only for this process's writes.
	if _, err := p.addGateway(ctx, g, gateway.ConsistencyLog, b); err != nil {
		p.close()
		return err
	}
	return p.serve(ctx, b)
}

type gatewayFlags struct {
	httpAddr               *string
	delegates              *[]string
	allowPrivate           *bool
	maxConns, maxPerClient *int
	// uploads and maxCAR say where CAR uploads go and how big they may be.
	maxCAR        *int64
	uploads       *string
	uploadsBucket *uploadsBucketFlags
	// uploadIdle is how long a CAR upload may send nothing.
	uploadIdle *time.Duration
	flags      *flags
}

func addGatewayFlags(f *flags) *gatewayFlags {
	return &gatewayFlags{
		httpAddr:      f.string("http-addr", "127.0.0.1:3000", "where the API listens (not on Lambda)", "PICKUP_HTTP_ADDR"),
		delegates:     f.list("delegates", nil, "multiaddrs returned as delegates, comma separated, replacing the live fetchers' announced addresses (private fetchers behind a load balancer)", "PICKUP_DELEGATES"),
		allowPrivate:  f.allowPrivateOrigins(),
		maxConns:      f.integer("http-max-conns", 0, "most connections the API holds; beyond, the idle longest is closed, or the new one answered 503 (0: half of the process's RLIMIT_NOFILE, at most 8192)", "PICKUP_HTTP_MAX_CONNS"),
		maxPerClient:  f.integer("http-max-conns-per-client", defaultConnsPerClient, "most connections to the API from one client address (an IPv6 /64); beyond, 503 (0: no cap, as behind a proxy, where every client is the proxy; unless set, none where the API listens on loopback only)", "PICKUP_HTTP_MAX_CONNS_PER_CLIENT"),
		maxCAR:        f.maxCARBytes(),
		uploads:       f.uploadsDirFlag(),
		uploadsBucket: f.uploadsBucketFlags(),
		uploadIdle:    f.duration("upload-idle-timeout", gateway.DefaultUploadIdleTimeout, "longest a CAR upload's body may send nothing before it is refused (408)", []string{"PICKUP_UPLOAD_IDLE_TIMEOUT"}),
		flags:         f,
	}
}

// uploadsDir is where the gateway keeps CAR uploads, "" for nowhere:
// --uploads-dir, or, where a fetcher shares the process (pickup run), the
// fetcher's default; a gateway on its own takes uploads only where it is
// told its fetchers read them.
func (g *gatewayFlags) uploadsDir() string {
	if *g.uploads == "" && g.flags.carpark != nil {
		return uploadsDir(g.flags.carpark, "")
	}
	return *g.uploads
}

// apiLimits are the API's connection caps: the flags', with the default
// cap sized from the descriptors the process may open.
func (g *gatewayFlags) apiLimits(p *proc) connLimits {
	limits := connLimits{max: *g.maxConns, perClient: *g.maxPerClient, perClientPublic: !g.flags.isSet("http-max-conns-per-client", "PICKUP_HTTP_MAX_CONNS_PER_CLIENT")}
	fds := nofile()
	if limits.max == 0 {
		limits.max = defaultAPIConns(fds)
	}
	if fds > 0 && limits.max+defaultAdminConns+2*shedSlots > fds {
		p.logger.Warn("the API's connection cap leaves no descriptors for the rest of the process: a flood will fail fetches with too many open files",
			"max_conns", limits.max, "rlimit_nofile", fds)
	}
	return limits
}

// addUploads gives the API its uploads area: the bucket, or the
// directory the fetchers read. On AWS Lambda, only a bucket (no disk is
// shared there), and CARs only up to what a Lambda request carries
// (gateway.OnLambda, which refuses more saying so); nowhere, CAR uploads
// are refused (413).
func (p *proc) addUploads(ctx context.Context, g *gatewayFlags, deps *gateway.Deps) error {
	dir := g.uploadsDir()
	onLambda := p.getenv("AWS_LAMBDA_RUNTIME_API") != ""
	if onLambda {
		dir = ""
	}
	uploads, err := p.openUploadsArea(ctx, g.uploadsBucket, dir, *g.maxCAR)
	if err != nil || uploads == nil {
		return err
	}
	deps.Uploads = uploads
	if onLambda {
		deps.Uploads = gateway.OnLambda(uploads)
	}
	return nil
}

// addGateway adds the API: on AWS Lambda when the runtime API is there,
// otherwise an HTTP server, which it returns. Its delegates are
// --delegates, or else the live fetchers' announcements in the log, read
// by this process (each Lambda instance reads them itself, at most every
// presence.DefaultCacheTTL).
func (p *proc) addGateway(ctx context.Context, g *gatewayFlags, consistency gateway.Consistency, b *baseFlags) (*httpServer, error) {
	live := presence.NewDirectory(presence.DirectoryConfig{}, p.log, nil, p.logger)
	deps := gateway.Deps{Log: p.log, Views: p.views, Tokens: p.views, Checkpoints: p.views, Delegates: live, Pinned: p.views, Logger: p.logger}
	// CAR uploads go to the uploads area the fetchers read.
	if err := p.addUploads(ctx, g, &deps); err != nil {
		return nil, err
	}
	h, err := gateway.New(gateway.Config{Delegates: *g.delegates, AllowPrivateOrigins: *g.allowPrivate, Consistency: consistency, UploadIdleTimeout: *g.uploadIdle}, deps)
	if err != nil {
		return nil, err
	}
	// Views stalled behind the log make reads answer from streams or 503:
	// not ready.
	p.health.add("views-lag", h.Ready)
	// Every request gets an id (on its log lines and in X-Request-Id), and
	// is counted and timed by route.
	httpMetrics, err := telemetry.NewHTTPMetrics(p.reg)
	if err != nil {
		return nil, err
	}
	api := telemetry.NewHTTP(h, gateway.Route, httpMetrics, p.logger)
	if p.getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		cfg := awslambda.Config{Deployment: *b.deployment, Metrics: p.stdout}
		p.actor("lambda", func(ctx context.Context) error { return awslambda.Start(ctx, api, cfg) })
		return nil, nil
	}
	cfg, err := b.serverConfig(g.apiLimits(p))
	if err != nil {
		return nil, err
	}
	srv, err := listen("api", *g.httpAddr, cfg, api, p.conns, p.logger)
	if err != nil {
		return nil, err
	}
	p.group.Add(srv.execute, srv.interrupt)
	return srv, nil
}
