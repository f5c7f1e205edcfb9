package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/pickup-ipfs/pickup/fetcher"
	"github.com/pickup-ipfs/pickup/fetcher/carstore"
	"github.com/pickup-ipfs/pickup/fetcher/dag"
	"github.com/pickup-ipfs/pickup/fetcher/dag/kubo"
	"github.com/pickup-ipfs/pickup/fetcher/dag/trustless"
	"github.com/pickup-ipfs/pickup/gateway"
	"github.com/pickup-ipfs/pickup/gateway/awslambda"
	"github.com/pickup-ipfs/pickup/internal/telemetry"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/projections"
)

// ---- gateway ----

type gatewayFlags struct {
	httpAddr     *string
	delegates    *[]string
	allowPrivate *bool
}

func addGatewayFlags(f *flags) *gatewayFlags {
	return &gatewayFlags{
		httpAddr:     f.string("http-addr", "127.0.0.1:3000", "where the API listens (not on Lambda)", "PICKUP_HTTP_ADDR"),
		delegates:    f.list("delegates", nil, "multiaddrs returned as delegates, comma separated (default in `pickup run`: the fetcher's libp2p addresses)", "PICKUP_DELEGATES"),
		allowPrivate: f.allowPrivateOrigins(),
	}
}

// addGateway adds the API: on AWS Lambda when the runtime API is there,
// otherwise an HTTP server, which it returns.
func (p *proc) addGateway(g *gatewayFlags, delegates []string, consistency gateway.Consistency, b *baseFlags) (*httpServer, error) {
	h, err := gateway.New(gateway.Config{Delegates: delegates, AllowPrivateOrigins: *g.allowPrivate, Consistency: consistency},
		gateway.Deps{Log: p.log, Views: p.views, Tokens: p.views, Checkpoints: p.views, Logger: p.logger})
	if err != nil {
		return nil, err
	}
	// Every request gets an id (on its log lines and in X-Request-Id), and
	// is counted and timed by route.
	httpMetrics, err := telemetry.NewHTTPMetrics(p.reg)
	if err != nil {
		return nil, err
	}
	api := telemetry.NewHTTP(h, gateway.Route, httpMetrics, p.logger)
	if os.Getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		cfg := awslambda.Config{Deployment: *b.deployment, Metrics: p.stdout}
		p.actor("lambda", func(ctx context.Context) error { return awslambda.Start(ctx, api, cfg) })
		return nil, nil
	}
	srv, err := listen("api", *g.httpAddr, api, p.logger)
	if err != nil {
		return nil, err
	}
	p.group.Add(srv.execute, srv.interrupt)
	return srv, nil
}

func runGateway(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "gateway")
	b := addBaseFlags(f, "127.0.0.1:9464")
	g := addGatewayFlags(f)
	if err := f.parse(args); err != nil {
		return err
	}
	if len(*g.delegates) == 0 {
		return fmt.Errorf("%w: the gateway needs --delegates (PICKUP_DELEGATES): the fetchers' multiaddrs", errUsage)
	}
	p, err := b.open(ctx, e, "gateway")
	if err != nil {
		return err
	}
	// Several gateways (Lambda instances) share the log: a read must wait
	// for the log's head, not only for this process's writes.
	if _, err := p.addGateway(g, *g.delegates, gateway.ConsistencyLog, b); err != nil {
		p.close()
		return err
	}
	return p.serve(ctx, *b.adminAddr)
}

// ---- fetcher ----

type fetcherFlags struct {
	batch                      *int
	maxCAR                     *int64
	fetchTimeout, chunkTimeout *time.Duration
	lease                      *time.Duration
	sources, gateways          *[]string
	kuboRPC                    *string
	libp2pListen               *[]string
	carDir                     *string
	staging, carpark, prefix   *string
	s3Endpoint, s3Region       *string
	partSize                   *int64
	s3Concurrency              *int
	allowPrivate               *bool
}

func addFetcherFlags(f *flags) *fetcherFlags {
	return &fetcherFlags{
		allowPrivate:  f.allowPrivateOrigins(),
		batch:         f.integer("batch-size", 10, "pins fetched at once by this process", "PICKUP_BATCH_SIZE", "BATCH_SIZE"),
		maxCAR:        f.bytesize("max-car-bytes", dag.DefaultMaxCARBytes, "bigger DAGs fail permanently as too_big", "PICKUP_MAX_CAR_BYTES", "MAX_CAR_BYTES"),
		fetchTimeout:  f.duration("fetch-timeout", dag.DefaultFetchTimeout, "longest attempt", []string{"PICKUP_FETCH_TIMEOUT", "FETCH_TIMEOUT"}, "FETCH_TIMEOUT_MS"),
		chunkTimeout:  f.duration("fetch-chunk-timeout", dag.DefaultChunkTimeout, "longest wait without a byte", []string{"PICKUP_FETCH_CHUNK_TIMEOUT", "FETCH_CHUNK_TIMEOUT"}, "FETCH_CHUNK_TIMEOUT_MS"),
		lease:         f.duration("lease", 30*time.Second, "how long a claim lasts without a progress report", []string{"PICKUP_LEASE"}),
		sources:       f.list("sources", []string{"gateway", "bitswap"}, "DAG sources in the order tried: gateway, bitswap, kubo", "PICKUP_SOURCES"),
		gateways:      f.list("trustless-gateways", []string{"https://trustless-gateway.link"}, "trustless gateway base URLs, comma separated", "PICKUP_TRUSTLESS_GATEWAYS"),
		kuboRPC:       f.string("kubo-rpc", "", "kubo RPC base URL, for the kubo source's dag/export", "PICKUP_KUBO_RPC"),
		libp2pListen:  f.list("libp2p-listen", []string{"/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"}, "where the bitswap host listens", "PICKUP_LIBP2P_LISTEN"),
		carDir:        f.string("car-dir", "data/cars", "local CAR store (used when no staging bucket is set)", "PICKUP_CAR_DIR"),
		staging:       f.string("staging-bucket", "", "S3 staging bucket; setting it selects the S3 store", "PICKUP_STAGING_BUCKET"),
		carpark:       f.string("carpark-bucket", "", "S3 carpark bucket", "PICKUP_CARPARK_BUCKET"),
		prefix:        f.string("staging-prefix", "staging/", "prefix of staged objects in the staging bucket", "PICKUP_STAGING_PREFIX"),
		s3Endpoint:    f.string("s3-endpoint", "", "S3-compatible endpoint URL (path-style); empty means AWS", "PICKUP_S3_ENDPOINT"),
		s3Region:      f.string("s3-region", "", "S3 region (default: AWS_REGION)", "PICKUP_S3_REGION"),
		partSize:      f.bytesize("s3-part-size", 8<<20, "multipart part size; a CAR upload holds (concurrency+1) parts in memory", "PICKUP_S3_PART_SIZE"),
		s3Concurrency: f.integer("s3-concurrency", 2, "parts uploaded at once per CAR", "PICKUP_S3_CONCURRENCY"),
	}
}

// carStore opens the CAR store the flags select.
func (ff *fetcherFlags) carStore(ctx context.Context, p *proc) (fetcher.CARStore, error) {
	if *ff.staging == "" {
		if *ff.carpark != "" {
			return nil, fmt.Errorf("%w: --carpark-bucket without --staging-bucket", errUsage)
		}
		return carstore.NewDir(*ff.carDir, p.logger)
	}
	if *ff.carpark == "" {
		return nil, fmt.Errorf("%w: --staging-bucket without --carpark-bucket", errUsage)
	}
	return carstore.NewS3(ctx, carstore.S3Config{
		StagingBucket: *ff.staging, CarparkBucket: *ff.carpark, StagingPrefix: *ff.prefix,
		Endpoint: *ff.s3Endpoint, Region: *ff.s3Region, PartSize: *ff.partSize, Concurrency: *ff.s3Concurrency,
	}, p.logger)
}

// openUploadLister is a CAR store that lists its open multipart uploads
// (carstore.S3 and carstore.Dir are), for pickup_multipart_uploads_open.
type openUploadLister interface {
	OpenUploads(ctx context.Context) ([]carstore.OpenUpload, error)
}

// addFetcher adds the fetcher pool and returns the multiaddrs other peers
// reach it at (the gateway's delegates), if it runs a libp2p host.
func (p *proc) addFetcher(ctx context.Context, ff *fetcherFlags) ([]string, error) {
	limits := dag.Limits{MaxCARBytes: *ff.maxCAR, FetchTimeout: *ff.fetchTimeout, ChunkTimeout: *ff.chunkTimeout}
	var sources []dag.Source
	var addrs []string
	for _, name := range *ff.sources {
		switch name {
		case "gateway":
			for _, u := range *ff.gateways {
				s, err := trustless.New(trustless.Config{URL: u})
				if err != nil {
					return nil, fmt.Errorf("%w: trustless gateway %q: %v", errUsage, u, err)
				}
				sources = append(sources, s)
			}
		case "kubo":
			if *ff.kuboRPC == "" {
				return nil, fmt.Errorf("%w: source kubo needs --kubo-rpc", errUsage)
			}
			s, err := kubo.New(kubo.Config{URL: *ff.kuboRPC})
			if err != nil {
				return nil, fmt.Errorf("%w: kubo RPC %q: %v", errUsage, *ff.kuboRPC, err)
			}
			sources = append(sources, s)
		case "bitswap":
			s, listening, err := p.bitswapSource(ctx, *ff.libp2pListen, *ff.allowPrivate)
			if err != nil {
				return nil, err
			}
			sources = append(sources, s)
			addrs = append(addrs, listening...)
		default:
			return nil, fmt.Errorf("%w: unknown source %q (want gateway, bitswap or kubo)", errUsage, name)
		}
	}
	if len(sources) == 0 {
		return nil, fmt.Errorf("%w: no DAG sources", errUsage)
	}
	d, err := dag.New(sources, limits, p.logger)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	cars, err := ff.carStore(ctx, p)
	if err != nil {
		return nil, err
	}
	var protector fetcher.Protector
	if uri := os.Getenv("ECS_AGENT_URI"); uri != "" {
		protector = fetcher.ECSTaskProtection{AgentURI: uri, Expires: *ff.fetchTimeout + 15*time.Minute}
	}
	fetchMetrics, err := telemetry.NewFetchMetrics(p.reg)
	if err != nil {
		return nil, err
	}
	if lister, ok := cars.(openUploadLister); ok {
		count := func(ctx context.Context) (int, error) {
			open, err := lister.OpenUploads(ctx)
			return len(open), err
		}
		if err := p.reg.Register(telemetry.NewOpenUploads(ctx, count, p.logger)); err != nil {
			return nil, fmt.Errorf("register open uploads: %w", err)
		}
	}
	pool, err := fetcher.New(fetcher.Config{BatchSize: *ff.batch, Lease: *ff.lease},
		fetcher.Deps{Log: p.logAs("fetcher"), Queue: p.views, DAG: d, CARs: cars, Index: p.views, Protector: protector, Metrics: fetchMetrics, Logger: p.logger})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	p.actor("fetcher", pool.Run)
	return addrs, nil
}

func runFetcher(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "fetcher")
	b := addBaseFlags(f, "127.0.0.1:9465")
	ff := addFetcherFlags(f)
	if err := f.parse(args); err != nil {
		return err
	}
	p, err := b.open(ctx, e, "fetcher")
	if err != nil {
		return err
	}
	if _, err := p.addFetcher(ctx, ff); err != nil {
		p.close()
		return err
	}
	return p.serve(ctx, *b.adminAddr)
}

// ---- projector ----

type projectorFlags struct {
	maxAttempts         *int
	baseDelay, maxDelay *time.Duration
	queueTimeout        *time.Duration
	metricsEvery        *time.Duration
	viewsBatch          *int
}

func addProjectorFlags(f *flags) *projectorFlags {
	return &projectorFlags{
		maxAttempts:  f.integer("max-attempts", pin.DefaultRetryPolicy.MaxAttempts, "failed attempts before the dead letter", "PICKUP_MAX_ATTEMPTS"),
		baseDelay:    f.duration("retry-base-delay", pin.DefaultRetryPolicy.BaseDelay, "first retry's wait, doubled each time", []string{"PICKUP_RETRY_BASE_DELAY"}),
		maxDelay:     f.duration("retry-max-delay", pin.DefaultRetryPolicy.MaxDelay, "longest wait between attempts", []string{"PICKUP_RETRY_MAX_DELAY"}),
		queueTimeout: f.duration("queue-timeout", time.Hour, "a due pin that no fetcher claims within this fails (and is retried)", []string{"PICKUP_QUEUE_TIMEOUT"}),
		metricsEvery: f.duration("metrics-interval", time.Minute, "time between updates of the backlog figures", []string{"PICKUP_METRICS_INTERVAL"}),
		viewsBatch:   f.integer("views-batch", projections.DefaultBatch, "most events applied to the views in one transaction while catching up (two batches are in memory at once)", "PICKUP_VIEWS_BATCH"),
	}
}

// addProjector adds the runner that keeps the views, the retry decider,
// the lease watchdog and the backlog metrics.
func (p *proc) addProjector(ctx context.Context, pf *projectorFlags, b *baseFlags) error {
	policy := pin.RetryPolicy{MaxAttempts: *pf.maxAttempts, BaseDelay: *pf.baseDelay, MaxDelay: *pf.maxDelay, Jitter: pin.DefaultRetryPolicy.Jitter}
	if err := policy.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *pf.viewsBatch < 1 {
		return fmt.Errorf("%w: --views-batch %d: want at least 1", errUsage, *pf.viewsBatch)
	}
	runner, err := projections.NewRunner(p.logAs("projections"), p.views, projections.RunnerConfig{Logger: p.logger, Batch: *pf.viewsBatch})
	if err != nil {
		return err
	}
	decider, err := projections.NewDecider(p.log, p.views, projections.DeciderConfig{ActorConfig: projections.ActorConfig{Logger: p.logger}, Policy: policy})
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	watchdog, err := projections.NewWatchdog(p.log, p.views, projections.WatchdogConfig{ActorConfig: projections.ActorConfig{Logger: p.logger}, QueueTimeout: *pf.queueTimeout})
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	mc := projections.MetricsConfig{Interval: *pf.metricsEvery, Registerer: p.reg, Deployment: *b.deployment, Logger: p.logger}
	if *b.emf {
		mc.EMF = p.stdout
	}
	metrics, err := projections.NewMetrics(p.views, mc)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	// Ready once the views have caught up with the log as it was at start.
	head, err := p.log.Head(ctx)
	if err != nil {
		return err
	}
	p.health.add("views caught up", func(ctx context.Context) error {
		cp, err := p.views.Checkpoint(ctx)
		if err == nil && cp < head {
			err = fmt.Errorf("views at position %d of %d", cp, head)
		}
		return err
	})
	p.actor("projections", runner.Run)
	p.actor("decider", decider.Run)
	p.actor("watchdog", watchdog.Run)
	p.actor("metrics", metrics.Run)
	return nil
}

func runProjector(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "projector")
	b := addBaseFlags(f, "127.0.0.1:9466")
	pf := addProjectorFlags(f)
	nf := addNotifyFlags(f)
	if err := f.parse(args); err != nil {
		return err
	}
	p, err := b.open(ctx, e, "projector")
	if err != nil {
		return err
	}
	if err := p.addProjector(ctx, pf, b); err != nil {
		p.close()
		return err
	}
	if err := p.addNotifier(ctx, nf, *b.eventlog); err != nil {
		p.close()
		return err
	}
	return p.serve(ctx, *b.adminAddr)
}
