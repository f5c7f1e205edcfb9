// The fetcher role: the pool that takes pins from the log and moves their
// bytes into the carpark.

package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/pickup-ipfs/pickup/carupload"
	"github.com/pickup-ipfs/pickup/fetcher"
	"github.com/pickup-ipfs/pickup/fetcher/carstore"
	"github.com/pickup-ipfs/pickup/fetcher/dag"
	"github.com/pickup-ipfs/pickup/fetcher/dag/kubo"
	"github.com/pickup-ipfs/pickup/fetcher/dag/trustless"
	"github.com/pickup-ipfs/pickup/fetcher/dag/upload"
	"github.com/pickup-ipfs/pickup/internal/telemetry"
)

// runFetcher runs the fetcher role, top to bottom: flags; the process
// (logger, registry, stores: b.open); the pool and its sources
// (addFetcher); the run group (p.serve).
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
	return p.serve(ctx, b)
}

type fetcherFlags struct {
	batch                      *int
	maxCAR                     *int64
	uploads                    *string
	uploadsBucket              *uploadsBucketFlags
	fetchTimeout, chunkTimeout *time.Duration
	lease                      *time.Duration
	sources, gateways          *[]string
	kuboRPC                    *string
	libp2p                     *libp2pFlags
	*carparkFlags
	staging, prefix *string
	partSize        *int64
	s3Concurrency   *int
	allowPrivate    *bool
}

func addFetcherFlags(f *flags) *fetcherFlags {
	return &fetcherFlags{
		allowPrivate:  f.allowPrivateOrigins(),
		batch:         f.integer("batch-size", 10, "pins fetched at once by this process", "PICKUP_BATCH_SIZE", "BATCH_SIZE"),
		maxCAR:        f.maxCARBytes(),
		uploads:       f.uploadsDirFlag(),
		uploadsBucket: f.uploadsBucketFlags(),
		fetchTimeout:  f.duration("fetch-timeout", dag.DefaultFetchTimeout, "longest attempt", []string{"PICKUP_FETCH_TIMEOUT", "FETCH_TIMEOUT"}, "FETCH_TIMEOUT_MS"),
		chunkTimeout:  f.duration("fetch-chunk-timeout", dag.DefaultChunkTimeout, "longest wait without a byte", []string{"PICKUP_FETCH_CHUNK_TIMEOUT", "FETCH_CHUNK_TIMEOUT"}, "FETCH_CHUNK_TIMEOUT_MS"),
		lease:         f.duration("lease", 30*time.Second, "how long a claim lasts without a progress report", []string{"PICKUP_LEASE"}),
		sources:       f.list("sources", []string{"gateway", "bitswap"}, "DAG sources in the order tried: gateway, bitswap, kubo", "PICKUP_SOURCES"),
		gateways:      f.list("trustless-gateways", []string{"https://trustless-gateway.link"}, "trustless gateway base URLs, comma separated", "PICKUP_TRUSTLESS_GATEWAYS"),
		kuboRPC:       f.string("kubo-rpc", "", "kubo RPC base URL, for the kubo source's dag/export", "PICKUP_KUBO_RPC"),
		libp2p:        addLibp2pFlags(f),
		carparkFlags:  f.carparkFlags(),
		staging:       f.string("staging-bucket", "", "S3 staging bucket; setting it selects the S3 store", "PICKUP_STAGING_BUCKET"),
		prefix:        f.string("staging-prefix", "staging/", "prefix of staged objects in the staging bucket", "PICKUP_STAGING_PREFIX"),
		partSize:      f.bytesize("s3-part-size", 8<<20, "multipart part size; a CAR upload holds (concurrency+1) parts in memory", "PICKUP_S3_PART_SIZE"),
		s3Concurrency: f.integer("s3-concurrency", 2, "parts uploaded at once per CAR", "PICKUP_S3_CONCURRENCY"),
	}
}

// maxCARBytes defines --max-car-bytes once per flag set: the fetcher's
// limit on a CAR, which the gateway applies to CAR uploads as they arrive.
func (f *flags) maxCARBytes() *int64 {
	if f.maxCAR == nil {
		f.maxCAR = f.bytesize("max-car-bytes", dag.DefaultMaxCARBytes, "bigger DAGs fail permanently as too_big (and bigger CAR uploads are refused, 413)", "PICKUP_MAX_CAR_BYTES", "MAX_CAR_BYTES")
	}
	return f.maxCAR
}

// uploadsDirFlag defines --uploads-dir once per flag set: where the
// gateway keeps CAR uploads and the fetchers read them.
func (f *flags) uploadsDirFlag() *string {
	if f.uploads == nil {
		f.uploads = f.string("uploads-dir", "", "directory of CAR uploads, shared by the gateway and the fetchers (default for pickup run and the fetcher: received/ in --car-dir with a directory carpark, none with --carpark-bucket; for pickup gateway: none; none: CAR uploads refused)", "PICKUP_UPLOADS_DIR")
	}
	return f.uploads
}

// uploadsDir is the uploads directory (where --uploads-bucket is not
// set): --uploads-dir, or else, for a directory carpark, beside its
// directories in the CAR store's directory. An S3 carpark has none unless
// told (a gateway and its fetchers on several machines share no disk: they
// share --uploads-bucket instead): CAR uploads are refused there.
func uploadsDir(c *carparkFlags, dir string) string {
	switch {
	case dir != "":
		return dir
	case *c.carpark != "":
		return ""
	}
	return filepath.Join(*c.carDir, "received")
}

// openUploads opens the uploads area in dir, nil for none ("").
func (p *proc) openUploads(dir string, maxCAR int64) (*carupload.Dir, error) {
	if dir == "" {
		return nil, nil
	}
	return carupload.NewDir(dir, carupload.Limits{MaxCARBytes: maxCAR}, p.logger)
}

// carStore opens the CAR store the flags select.
func (ff *fetcherFlags) carStore(ctx context.Context, p *proc) (fetcher.CARStore, error) {
	if *ff.staging == "" {
		if *ff.carpark != "" {
			return nil, fmt.Errorf("%w: --carpark-bucket without --staging-bucket", errUsage)
		}
		d, err := carstore.NewDir(*ff.carDir, p.logger)
		if err != nil {
			return nil, err
		}
		p.closers = append(p.closers, d.Close)
		return d, nil
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

// addFetcher adds the fetcher pool and returns the multiaddrs it announced
// in the log (the gateway's delegates), if it runs a libp2p host that
// holds a slot.
func (p *proc) addFetcher(ctx context.Context, ff *fetcherFlags) ([]string, error) {
	limits := dag.Limits{MaxCARBytes: *ff.maxCAR, FetchTimeout: *ff.fetchTimeout, ChunkTimeout: *ff.chunkTimeout}
	var sources []dag.Source
	var addrs []string
	for _, name := range *ff.sources {
		switch name {
		case "gateway":
			for _, u := range *ff.gateways {
				s, err := trustless.New(trustless.Config{URL: u, AllowPrivate: *ff.allowPrivate})
				if err != nil {
					return nil, fmt.Errorf("%w: trustless gateway %q: %v", errUsage, u, err)
				}
				sources = append(sources, s)
			}
		case "kubo":
			if *ff.kuboRPC == "" {
				return nil, fmt.Errorf("%w: source kubo needs --kubo-rpc", errUsage)
			}
			s, err := kubo.New(kubo.Config{URL: *ff.kuboRPC, AllowPrivate: *ff.allowPrivate})
			if err != nil {
				return nil, fmt.Errorf("%w: kubo RPC %q: %v", errUsage, *ff.kuboRPC, err)
			}
			sources = append(sources, s)
		case "bitswap":
			s, listening, err := p.bitswapSource(ctx, ff.libp2p, *ff.allowPrivate)
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
	if uri := p.getenv("ECS_AGENT_URI"); uri != "" {
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
	var step func(context.Context, string)
	if at := p.getenv("PICKUP_TEST_KILL_AT"); at != "" {
		step = killAt(p.logger, at)
	}
	deps := fetcher.Deps{Log: p.logAs("fetcher"), Queue: p.views, DAG: d, CARs: cars, Index: p.views, Protector: protector, Metrics: fetchMetrics, Step: step, Logger: p.logger}
	uploads, err := p.openUploadsArea(ctx, ff.uploadsBucket, uploadsDir(ff.carparkFlags, *ff.uploads), *ff.maxCAR)
	if err != nil {
		return nil, err
	}
	if uploads != nil {
		src, err := upload.New(uploads)
		if err != nil {
			return nil, err
		}
		if deps.Uploads, err = dag.New([]dag.Source{src}, limits, p.logger); err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		deps.Received = uploads
	}
	pool, err := fetcher.New(fetcher.Config{BatchSize: *ff.batch, Lease: *ff.lease}, deps)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	p.actor("fetcher", pool.Run)
	return addrs, nil
}

// killAt is a fetcher.Deps.Step that kills the process (SIGKILL on Unix),
// as a crash would, when an attempt reaches the step named at (one of
// fetcher's or carstore's Step*): the end-to-end tests set
// PICKUP_TEST_KILL_AT to count what a crash at each step leaves behind.
func killAt(logger *slog.Logger, at string) func(context.Context, string) {
	return func(ctx context.Context, step string) {
		if step != at {
			return
		}
		logger.WarnContext(ctx, "PICKUP_TEST_KILL_AT: killing this process", "step", step)
		if self, err := os.FindProcess(os.Getpid()); err == nil {
			self.Kill()
		}
		select {} // the kill is on its way
	}
}
