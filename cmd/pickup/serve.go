package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multiaddr"

	"github.com/pickup-ipfs/pickup/fetcher/carstore"
	"github.com/pickup-ipfs/pickup/serve"
	servebitswap "github.com/pickup-ipfs/pickup/serve/bitswap"
	"github.com/pickup-ipfs/pickup/serve/ipni"
	"github.com/pickup-ipfs/pickup/serve/locate"
	locatepostgres "github.com/pickup-ipfs/pickup/serve/locate/postgres"
	locatesqlite "github.com/pickup-ipfs/pickup/serve/locate/sqlite"
	"github.com/pickup-ipfs/pickup/serve/routing"
)

// runServe runs the serving role, top to bottom: flags; the process
// (logger, registry, log, views: b.open); the block lookup, its loader and
// the trustless gateway over the carpark (addServe); the run group.
func runServe(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "serve")
	b := addBaseFlags(f, "127.0.0.1:9467")
	sf := addServeFlags(f)
	if err := f.parse(args); err != nil {
		return err
	}
	p, err := b.open(ctx, e, "serve")
	if err != nil {
		return err
	}
	if _, err := p.addServe(ctx, sf, b); err != nil {
		p.close()
		return err
	}
	return p.serve(ctx, b)
}

type serveFlags struct {
	addr         *string
	maxRequests  *int
	timeout      *time.Duration
	maxDuration  *time.Duration
	maxDAG       *int64
	deserialized *bool
	locate       *string
	rebuild      *bool
	carpark      *carparkFlags
	p2p          *serveP2PFlags
	ipni         *ipniFlags
}

func addServeFlags(f *flags) *serveFlags {
	return &serveFlags{
		addr:         f.string("serve-addr", "127.0.0.1:8080", "where the trustless gateway (GET/HEAD /ipfs/{cid}) listens", "PICKUP_SERVE_ADDR"),
		maxRequests:  f.integer("serve-max-requests", 256, "requests the gateway serves at once; beyond, 429 with Retry-After", "PICKUP_SERVE_MAX_REQUESTS"),
		timeout:      f.duration("serve-timeout", 30*time.Second, "longest wait for a response's first byte, and between its writes (504, or a CAR cut short, beyond)", []string{"PICKUP_SERVE_TIMEOUT"}),
		maxDuration:  f.duration("serve-max-duration", time.Hour, "longest whole request", []string{"PICKUP_SERVE_MAX_DURATION"}),
		maxDAG:       f.bytesize("serve-max-dag-bytes", 1<<30, "largest DAG of a deserialized (UnixFS) response; beyond, 410 Gone (trustless raw and CAR responses are not capped)", "PICKUP_SERVE_MAX_DAG_BYTES"),
		deserialized: f.boolean("serve-deserialized", false, "also serve UnixFS files and directories, deserialized (a web gateway), besides raw blocks and CARs", "PICKUP_SERVE_DESERIALIZED"),
		locate:       f.string("locate", "", "the block-location lookup: a file (embedded; default: locate.db beside the views) or, with PostgreSQL views, their database (the default)", "PICKUP_LOCATE"),
		rebuild:      f.boolean("locate-rebuild", false, "rebuild the block lookup from the carpark's index objects at start (after pickup reindex), before following the log; an empty lookup is always rebuilt", "PICKUP_LOCATE_REBUILD"),
		carpark:      f.carparkFlags(),
		p2p:          addServeP2PFlags(f),
		ipni:         addIPNIFlags(f),
	}
}

// serving is the serving role once started: its HTTP server (the
// trustless gateway, /routing/v1/), its libp2p peer (bitswap), and the
// provider both announce.
type serving struct {
	http     *httpServer
	peer     *servebitswap.Server
	provider servebitswap.Provider
}

// addServe adds the serving role: the lookup (kept up to date from the
// log's CarValidated events by its loader); one checked blockstore over
// the carpark, which the trustless gateway, the bitswap server and
// delegated routing all read; the libp2p peer with its configured identity.
func (p *proc) addServe(ctx context.Context, sf *serveFlags, b *baseFlags) (*serving, error) {
	cars, err := sf.carpark.open(ctx, p)
	if err != nil {
		return nil, err
	}
	lookup, err := p.openLocate(ctx, sf, b)
	if err != nil {
		return nil, err
	}
	loader, err := locate.NewLoader(locate.LoaderConfig{Log: p.logAs("locate"), Objects: cars, Store: lookup, Logger: p.logger,
		IsNotFound: func(err error) bool { return errors.Is(err, carstore.ErrNotFound) }})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	rebuild := *sf.rebuild
	if !rebuild {
		// A lookup that never followed the log starts from the carpark:
		// CARs indexed by pickup reindex are named by no event.
		from, err := lookup.Checkpoint(ctx)
		if err != nil {
			return nil, err
		}
		rebuild = from == 0
	}
	p.actor("locate", func(ctx context.Context) error {
		if rebuild {
			stats, err := loader.Rebuild(ctx, carparkLister{cars})
			if err != nil && ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				// The loader still takes every new CAR; the rebuild is tried
				// again at the next start.
				p.logger.Error("rebuilding the block lookup from the carpark failed", "component", "locate", "err", err)
			} else {
				p.logger.Info("block lookup rebuilt from the carpark", "component", "locate", "added", stats.Added, "known", stats.Known, "bad_index", stats.BadIndex, "no_index", stats.NoIndex)
			}
		}
		return loader.Run(ctx)
	})
	cfg := serve.Config{
		MaxRequests: *sf.maxRequests, Timeout: *sf.timeout, MaxDuration: *sf.maxDuration,
		MaxDAGBytes: *sf.maxDAG, Deserialized: *sf.deserialized,
	}
	deps := serve.Deps{
		Locator: lookup, Carpark: cars, Pins: p.views,
		Reporter: serve.LogReporter{Log: p.log, Actor: "serve", Logger: p.logger},
		Logger:   p.logger, Metrics: p.reg,
	}
	if deps.Blockstore, err = serve.NewServingBlockstore(cfg, deps); err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	srvCfg, err := b.serverConfig(connLimits{max: defaultAPIConns(nofile())})
	if err != nil {
		return nil, err
	}
	// A whole CAR takes as long as it takes: the gateway bounds the time
	// to its first byte and between writes, and the whole request.
	srvCfg.write = 0
	// Listening first tells the gateway's address, which delegated
	// routing answers; nothing is served before the group runs.
	srv, err := listen("serve", *sf.addr, srvCfg, nil, p.conns, p.logger)
	if err != nil {
		return nil, err
	}
	s, err := p.addServePeer(sf, b, deps.Blockstore, srv)
	if err != nil {
		srv.ln.Close()
		return nil, err
	}
	routes, err := routing.New(routing.Config{Provider: s.provider}, routing.Deps{Blocks: deps.Blockstore, Logger: p.logger, Metrics: p.reg})
	if err != nil {
		srv.ln.Close()
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	deps.Handlers = map[string]http.Handler{"/routing/v1/": routes}
	adverts, err := p.addIPNI(ctx, sf.ipni, cars, s.provider.Key, s.provider.Addrs, s.provider.Gateway)
	if err != nil {
		srv.ln.Close()
		return nil, err
	}
	if adverts != nil {
		deps.Handlers[ipni.HandlerPath] = adverts
	}
	h, err := serve.New(cfg, deps)
	if err != nil {
		srv.ln.Close()
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	srv.srv.Handler = h
	p.group.Add(srv.execute, srv.interrupt)
	return s, nil
}

// addServePeer starts the serving role's libp2p peer, bitswap over blocks,
// with the configured key, and returns it with the provider it is: its
// addresses and the gateway's, which srv serves.
func (p *proc) addServePeer(sf *serveFlags, b *baseFlags, blocks servebitswap.Blocks, srv *httpServer) (*serving, error) {
	gw, err := servebitswap.GatewayAddr(sf.p2p.gatewayURL(srv.Addr()))
	if err != nil {
		return nil, fmt.Errorf("%w: --serve-public-url (PICKUP_SERVE_PUBLIC_URL): %v", errUsage, err)
	}
	key, err := sf.p2p.privateKey(*b.eventlog, p.logger)
	if err != nil {
		return nil, err
	}
	cfg := servebitswap.Config{PrivateKey: key, ListenAddrs: *sf.p2p.listen, AnnounceAddrs: *sf.p2p.announce, MaxPeers: *sf.p2p.maxPeers}
	if err := cfg.WithDefaults().Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	peer, err := servebitswap.New(cfg, servebitswap.Deps{Blocks: blocks, Logger: p.logger})
	if err != nil {
		return nil, err
	}
	p.closers = append(p.closers, peer.Close)
	s := &serving{http: srv, peer: peer, provider: servebitswap.Provider{Key: key, Addrs: peer.Addrs(), Gateway: gw}}
	p.logger.Info("serving bitswap", "component", "bitswap-server", "peer", peer.ID().String(), "addrs", multiaddrStrings(peer.P2pAddrs()), "gateway", gw.String())
	return s, nil
}

// multiaddrStrings are the addresses as text.
func multiaddrStrings(addrs []multiaddr.Multiaddr) []string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, a.String())
	}
	return out
}

// lookupStore is the block-location lookup as the serving role uses it.
type lookupStore interface {
	locate.Store
	Close() error
}

// openLocate opens the lookup the flags name: --locate, or else where the
// views are: their PostgreSQL database (its own schema, set up by `pickup
// views setup`, opened as the views' app role), or locate.db beside the
// embedded views.
func (p *proc) openLocate(ctx context.Context, sf *serveFlags, b *baseFlags) (lookupStore, error) {
	s, err := openLocateAt(ctx, *sf.locate, b)
	if err != nil {
		return nil, err
	}
	p.closers = append(p.closers, s.Close)
	return s, nil
}

func openLocateAt(ctx context.Context, at string, b *baseFlags) (lookupStore, error) {
	switch {
	case at == "" && isPostgresURL(*b.views) && *b.viewsSecret != "":
		url, creds, err := viewsLocation(ctx, *b.viewsSecret, *b.views)
		if err != nil {
			return nil, fmt.Errorf("views secret: %w", err)
		}
		return locatepostgres.Open(ctx, url, locatepostgres.Options{Credentials: locatepostgres.Credentials(creds)})
	case at == "" && isPostgresURL(*b.views):
		at = *b.views
	case at == "":
		return locatesqlite.Open(ctx, filepath.Join(filepath.Dir(*b.views), "locate.db"), locatesqlite.Options{})
	case !isPostgresURL(at):
		return locatesqlite.Open(ctx, at, locatesqlite.Options{})
	}
	s, err := locatepostgres.Open(ctx, at, locatepostgres.Options{})
	if errors.Is(err, locatepostgres.ErrNotSetUp) {
		// A role that may create the schema (the database's owner, on a
		// developer's PostgreSQL) gets it, as the views do.
		if serr := locatepostgres.Setup(ctx, at, locatepostgres.SetupOptions{}); serr == nil {
			s, err = locatepostgres.Open(ctx, at, locatepostgres.Options{})
		}
	}
	return s, err
}

// carparkFlags say where the carpark is, once per flag set: the fetcher
// writes it, the serving role and reindex read it.
type carparkFlags struct {
	carDir, carpark      *string
	s3Endpoint, s3Region *string
}

// carparkFlags defines the carpark's flags once per flag set (pickup run
// has both the fetcher and the serving role).
func (f *flags) carparkFlags() *carparkFlags {
	if f.carpark == nil {
		s3 := f.s3Flags()
		f.carpark = &carparkFlags{
			carDir:     f.string("car-dir", "data/cars", "local CAR store (used when no bucket is set)", "PICKUP_CAR_DIR"),
			carpark:    f.string("carpark-bucket", "", "S3 carpark bucket", "PICKUP_CARPARK_BUCKET"),
			s3Endpoint: s3.endpoint,
			s3Region:   s3.region,
		}
	}
	return f.carpark
}

// carpark is the carpark as the serving role reads it and the garbage
// collector deletes from it (carstore.Dir and carstore.S3): never the
// fetcher's write path.
type carpark interface {
	ReadRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
	ListCars(ctx context.Context, after string, fn func(carstore.Stored) error) error
	DeleteRoot(ctx context.Context, root cid.Cid) (int, error)
}

// open opens the carpark the flags name: the directory, or the bucket.
func (c *carparkFlags) open(ctx context.Context, p *proc) (carpark, error) {
	if *c.carpark == "" {
		d, err := carstore.NewDir(*c.carDir, p.logger)
		if err != nil {
			return nil, err
		}
		p.closers = append(p.closers, d.Close)
		return d, nil
	}
	// The S3 store's staging bucket is never touched by these calls: the
	// carpark's stands in for it, under a prefix no CAR key has.
	return carstore.NewS3(ctx, carstore.S3Config{
		StagingBucket: *c.carpark, CarparkBucket: *c.carpark, StagingPrefix: "unused-by-readers/",
		Endpoint: *c.s3Endpoint, Region: *c.s3Region,
	}, p.logger)
}

// carparkLister lists the carpark's CARs as the lookup's rebuild takes
// them.
type carparkLister struct{ cars carpark }

func (l carparkLister) ListCars(ctx context.Context, after string, fn func(locate.CAR) error) error {
	return l.cars.ListCars(ctx, after, func(st carstore.Stored) error {
		return fn(locate.CAR{CarCID: st.CarCID, Root: st.Root, Key: st.Key, Bytes: st.Bytes})
	})
}
