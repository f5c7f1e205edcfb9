package main

import (
	"context"

	"github.com/pickup-ipfs/pickup/fetcher/dag"
	"github.com/pickup-ipfs/pickup/fetcher/dag/bitswap"
)

// bitswapSource starts the fetcher's libp2p host with a bitswap client, and
// returns its addresses, each with its /p2p/ identity: the delegates the
// API reports, so that clients can connect their nodes to it.
func (p *proc) bitswapSource(ctx context.Context, listen []string, allowPrivate bool) (dag.Source, []string, error) {
	s, err := bitswap.New(bitswap.Config{ListenAddrs: listen, AllowPrivate: allowPrivate}, p.logger)
	if err != nil {
		return nil, nil, err
	}
	p.closers = append(p.closers, s.Close)
	var addrs []string
	for _, a := range s.Addrs() {
		addrs = append(addrs, a.String())
	}
	p.logger.Info("libp2p host", "peer", s.Host().ID(), "addrs", addrs)
	return s, addrs, nil
}
