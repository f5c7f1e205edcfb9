package ipni

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/ipni/go-libipni/announce/httpsender"
	"github.com/ipni/go-libipni/announce/message"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

// announceURL parses an indexer's URL.
func announceURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return nil, err
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, errors.New("want an http or https URL")
	case u.Host == "":
		return nil, errors.New("no host")
	}
	return u, nil
}

// announcer tells the indexers of the latest head: one announcement at a
// time, the latest head first (an indexer syncing a head takes every ad
// before it), retried with backoff until it is sent or a newer head is.
type announcer struct {
	sender  *httpsender.Sender
	addrs   []multiaddr.Multiaddr
	retry   time.Duration
	timeout time.Duration
	logger  *slog.Logger

	mu      sync.Mutex
	pending cid.Cid
	wake    chan struct{}
	sent    cid.Cid
}

func newAnnouncer(cfg Config, id peer.ID, logger *slog.Logger) (*announcer, error) {
	urls := make([]*url.URL, len(cfg.Indexers))
	for i, s := range cfg.Indexers {
		u, err := announceURL(s)
		if err != nil {
			return nil, err
		}
		urls[i] = u
	}
	s, err := httpsender.New(urls, id, httpsender.WithTimeout(cfg.AnnounceTimeout), httpsender.WithUserAgent("pickup"))
	if err != nil {
		return nil, fmt.Errorf("ipni: announce: %w", err)
	}
	return &announcer{sender: s, addrs: []multiaddr.Multiaddr{cfg.HTTPAddr}, retry: cfg.RetryDelay, timeout: cfg.AnnounceTimeout,
		logger: logger, wake: make(chan struct{}, 1)}, nil
}

// tell asks for head to be announced; it never blocks.
func (a *announcer) tell(head cid.Cid) {
	a.mu.Lock()
	a.pending = head
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// run announces until ctx is done.
func (a *announcer) run(ctx context.Context) {
	defer a.sender.Close()
	wait := a.retry
	for {
		a.mu.Lock()
		head := a.pending
		a.mu.Unlock()
		if !head.Defined() || head.Equals(a.sent) {
			select {
			case <-ctx.Done():
				return
			case <-a.wake:
			}
			continue
		}
		msg := message.Message{Cid: head}
		msg.SetAddrs(a.addrs)
		actx, cancel := context.WithTimeout(ctx, a.timeout)
		err := a.sender.Send(actx, msg)
		cancel()
		if err == nil {
			a.logger.InfoContext(ctx, "announced", "head", head)
			a.sent, wait = head, a.retry
			continue
		}
		if ctx.Err() != nil {
			return
		}
		a.logger.WarnContext(ctx, "announcing failed; trying again", "head", head, "err", err, "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-a.wake:
			t.Stop()
		}
		wait = min(2*wait, time.Minute)
	}
}
