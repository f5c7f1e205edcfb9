package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/multiformats/go-multiaddr"

	"github.com/pickup-ipfs/pickup/fetcher/carstore"
	"github.com/pickup-ipfs/pickup/serve/ipni"
)

// ipniFlags are the serving role's settings of its IPNI advertisements.
type ipniFlags struct {
	on        *bool
	indexers  *[]string
	chunkSize *int
	batchSize *int
}

func addIPNIFlags(f *flags) *ipniFlags {
	return &ipniFlags{
		on:        f.boolean("ipni", true, "build and serve the IPNI advertisement chain of what the carpark serves (at /ipni/v1/ad/ of the serving listener), and announce it to --ipni-indexers", "PICKUP_IPNI"),
		indexers:  f.list("ipni-indexers", nil, "IPNI indexers told of each new head of the chain, comma separated (https://cid.contact; /announce is added to a URL without a path); none: nothing is announced", "PICKUP_IPNI_INDEXERS"),
		chunkSize: f.integer("ipni-chunk-size", ipni.DefaultChunkSize, "multihashes per entry chunk of an advertisement (new ads only)", "PICKUP_IPNI_CHUNK_SIZE"),
		batchSize: f.integer("ipni-batch", ipni.DefaultBatchSize, "log events decided per append to the chain (and per announcement) while catching up", "PICKUP_IPNI_BATCH"),
	}
}

// addIPNI adds the IPNI publisher as an actor: it follows the log for
// validated CARs and deleted roots, appends the chain's ads (stream
// ipni-ads), and announces each head; it returns the handler of the
// chain, to mount at ipni.HandlerPath (/ipni/v1/ad/) of the serving
// listener, whose HTTP multiaddr httpAddr is. The serve peer's key and
// libp2p addresses name the provider. Off (--ipni=false): no actor, a nil
// handler.
func (p *proc) addIPNI(ctx context.Context, fl *ipniFlags, cars ipni.Objects, key crypto.PrivKey, addrs []multiaddr.Multiaddr, httpAddr multiaddr.Multiaddr) (http.Handler, error) {
	if !*fl.on {
		return nil, nil
	}
	pub, err := ipni.New(ipni.Config{
		Key: key, Addrs: addrs, HTTPAddr: httpAddr, Indexers: *fl.indexers,
		ChunkSize: *fl.chunkSize, BatchSize: *fl.batchSize,
	}, ipni.Deps{
		Log: p.logAs("ipni"), Objects: cars, Actor: "ipni",
		IsNotFound: func(err error) bool { return errors.Is(err, carstore.ErrNotFound) },
		Logger:     p.logger,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	p.logger.InfoContext(ctx, "advertising to IPNI", "component", "ipni", "provider", pub.Peer().String(), "indexers", *fl.indexers)
	p.actor("ipni", pub.Run)
	return pub.Handler(), nil
}
