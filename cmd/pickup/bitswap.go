package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/pickup-ipfs/pickup/fetcher/dag"
	"github.com/pickup-ipfs/pickup/fetcher/dag/bitswap"
	"github.com/pickup-ipfs/pickup/presence"
)

// libp2pFlags are the settings of the fetcher's libp2p host: where it
// listens and what it announces, its identity's seed, and its presence in
// the log.
type libp2pFlags struct {
	listen, announce *[]string
	seed, seedFile   *string
	publicIP         *string
	presenceTTL      *time.Duration
}

// defaultSeedFile is where a seed is kept when none is given.
const defaultSeedFile = "data/libp2p.seed"

func addLibp2pFlags(f *flags) *libp2pFlags {
	return &libp2pFlags{
		listen:      f.list("libp2p-listen", bitswap.DefaultListenAddrs(), "where the bitswap host listens, comma separated", "PICKUP_LIBP2P_LISTEN"),
		announce:    f.list("libp2p-announce", nil, "multiaddrs announced (as delegates, and to peers) instead of the listen addresses, comma separated; /p2p/<peer id> is added", "PICKUP_LIBP2P_ANNOUNCE"),
		seed:        f.string("libp2p-seed", "", "the seed of every fetcher's libp2p key (at least 32 bytes; each fetcher's key is derived from it and its slot); wins over --libp2p-seed-file", "PICKUP_LIBP2P_SEED"),
		seedFile:    f.string("libp2p-seed-file", defaultSeedFile, "file holding the libp2p seed; created once (mode 0600) when absent, never replaced", "PICKUP_LIBP2P_SEED_FILE"),
		publicIP:    f.string("libp2p-public-ip", "", `"ecs": announce the listen addresses at the task's public IPv4 (ECS task metadata, then EC2 DescribeNetworkInterfaces); empty: as they are`, "PICKUP_LIBP2P_PUBLIC_IP"),
		presenceTTL: f.duration("presence-ttl", presence.DefaultTTL, "how long a fetcher's announcement holds without a renewal (renewed every third of it, at most every minute)", []string{"PICKUP_PRESENCE_TTL"}),
	}
}

// seedBytes returns the libp2p seed: --libp2p-seed, or the seed file's,
// which is created (32 random bytes, hex) when absent. A seed shorter than
// bitswap.MinSeedBytes is a usage error.
func (lf *libp2pFlags) seedBytes() ([]byte, error) {
	if *lf.seed != "" {
		if len(*lf.seed) < bitswap.MinSeedBytes {
			return nil, fmt.Errorf("%w: --libp2p-seed (PICKUP_LIBP2P_SEED) is %d bytes: want at least %d", errUsage, len(*lf.seed), bitswap.MinSeedBytes)
		}
		return []byte(*lf.seed), nil
	}
	path := *lf.seedFile
	if path == "" {
		return nil, fmt.Errorf("%w: no libp2p seed: set --libp2p-seed or --libp2p-seed-file", errUsage)
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		b, err = createSeedFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("libp2p seed file: %w", err)
	}
	b = bytes.TrimRight(b, "\r\n")
	if len(b) < bitswap.MinSeedBytes {
		return nil, fmt.Errorf("%w: the libp2p seed in %s is %d bytes: want at least %d", errUsage, path, len(b), bitswap.MinSeedBytes)
	}
	return b, nil
}

// createSeedFile writes a new seed at path (writeOnce).
func createSeedFile(path string) ([]byte, error) {
	raw := make([]byte, bitswap.MinSeedBytes)
	rand.Read(raw)
	seed, _, err := writeOnce(path, []byte(hex.EncodeToString(raw)+"\n"))
	return seed, err
}

// publicIPv4 is the address --libp2p-public-ip selects, if any.
func (lf *libp2pFlags) publicIPv4(ctx context.Context, p *proc) (netip.Addr, error) {
	switch *lf.publicIP {
	case "":
		return netip.Addr{}, nil
	case "ecs":
		ip, err := publicIPFromECS(ctx, p.getenv)
		if err != nil {
			return netip.Addr{}, err
		}
		p.logger.Info("public IPv4 from ECS", "ip", ip)
		return ip, nil
	}
	return netip.Addr{}, fmt.Errorf("%w: --libp2p-public-ip %q: want ecs or nothing", errUsage, *lf.publicIP)
}

// bitswapSource starts the fetcher's libp2p host with a bitswap client,
// with the key of the slot it leases in the log (package presence), and
// returns its announced addresses, each with its /p2p/ identity: what the
// gateway answers as delegates while the lease lives. When every slot is
// live, the host runs with a new identity, unannounced.
func (p *proc) bitswapSource(ctx context.Context, lf *libp2pFlags, allowPrivate bool) (dag.Source, []string, error) {
	seed, err := lf.seedBytes()
	if err != nil {
		return nil, nil, err
	}
	public, err := lf.publicIPv4(ctx, p)
	if err != nil {
		return nil, nil, err
	}
	cfg := bitswap.Config{ListenAddrs: *lf.listen, AnnounceAddrs: *lf.announce, PublicIPv4: public, AllowPrivate: allowPrivate}
	if err := cfg.WithDefaults().Validate(); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	leaseCfg := presence.Config{TTL: *lf.presenceTTL, Instance: instanceName(p)}
	if err := leaseCfg.Validate(); err != nil {
		return nil, nil, fmt.Errorf("%w: --presence-ttl: %v", errUsage, err)
	}
	var src *bitswap.Source
	bind := func(_ context.Context, slot int) (presence.Endpoint, func(), error) {
		key, err := bitswap.SlotKey(seed, slot)
		if err != nil {
			return presence.Endpoint{}, nil, err
		}
		c := cfg
		c.PrivateKey = key
		s, err := bitswap.New(c, p.logger)
		if err != nil {
			return presence.Endpoint{}, nil, err
		}
		addrs := addrStrings(s)
		if len(addrs) == 0 {
			s.Close()
			return presence.Endpoint{}, nil, fmt.Errorf("%w: the libp2p host has no address to announce (listening at %v; a public IP replaces non-loopback addresses only)", errUsage, *lf.listen)
		}
		src = s
		return presence.Endpoint{PeerID: s.Host().ID().String(), Addrs: addrs}, func() { s.Close(); src = nil }, nil
	}
	lease, err := presence.Acquire(ctx, leaseCfg, presence.Deps{Log: p.log, Logger: p.logger}, bind)
	var announced []string
	switch {
	case errors.Is(err, presence.ErrNoSlot):
		p.logger.Warn("every fetcher slot is live: this fetcher runs with a new libp2p identity and is not announced as a delegate", "slots", presence.Slots)
		if src, err = bitswap.New(cfg, p.logger); err != nil {
			return nil, nil, err
		}
	case err != nil:
		return nil, nil, err
	default:
		announced = lease.Endpoint().Addrs
		p.actor("presence", lease.Run)
	}
	p.closers = append(p.closers, src.Close)
	slot := -1
	if lease != nil {
		slot = lease.Slot()
		// A process that stops before its actors run (a later setting
		// refused) still frees its slot; after Run, this writes nothing.
		p.closers = append(p.closers, func() error {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			return lease.Withdraw(ctx)
		})
	}
	p.logger.Info("libp2p host", "peer", src.Host().ID(), "addrs", addrStrings(src), "slot", slot, "announced", len(announced) > 0)
	return src, announced, nil
}

func addrStrings(s *bitswap.Source) []string {
	var addrs []string
	for _, a := range s.Addrs() {
		addrs = append(addrs, a.String())
	}
	return addrs
}

// instanceName names this process in its announcements: the host and the
// process id.
func instanceName(p *proc) string {
	host, _ := os.Hostname()
	return host + "/" + strconv.Itoa(os.Getpid()) + "/" + p.role
}
