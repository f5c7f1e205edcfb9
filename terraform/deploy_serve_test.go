package terraform

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ipni/go-libipni/announce/message"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pickup-ipfs/pickup/fetcher/carstore"
	"github.com/pickup-ipfs/pickup/internal/awsconfig"
)

// The serving role, as its load balancer reaches it: the target group's
// health check on the serve container's port, then the pinned root's CAR,
// which must be the carpark's object byte for byte.

// serveContainer returns the running serve container and the address it
// serves on (its PICKUP_SERVE_ADDR, moved to loopback by rewriteEnv).
func (r *deploymentRun) serveContainer() (*container, string) {
	t := r.t
	for _, c := range r.all() {
		if c.role != awsconfig.RoleServe {
			continue
		}
		select {
		case <-c.done:
			r.fail("%s exited (%v): nothing serves the pins", c.name, c.err)
		default:
		}
		for _, kv := range c.env {
			if v, ok := strings.CutPrefix(kv, "PICKUP_SERVE_ADDR="); ok {
				return c, v
			}
		}
		t.Fatalf("%s runs `pickup serve` without PICKUP_SERVE_ADDR", c.name)
	}
	r.fail("envs/%s runs no serve task (a service whose container runs `pickup serve`)", r.d.env)
	return nil, ""
}

// checkServe asks the serve container what its load balancer would: the
// target group's health check path, then GET /ipfs/<root>?format=car,
// until the block lookup has taken the root's CarValidated in; the answer
// must be the CAR the carpark holds at the root's key.
func (r *deploymentRun) checkServe(ctx context.Context, rootCID cid.Cid) {
	t := r.t
	c, addr := r.serveContainer()
	if _, _, err := net.SplitHostPort(addr); err != nil {
		r.fail("%s: PICKUP_SERVE_ADDR %q: %v", c.name, addr, err)
	}
	tg := r.d.one(t, "aws_lb_target_group", "serve.aws_lb_target_group.this")
	path, _ := tg.block("health_check")["path"].(string)
	if path == "" {
		r.fail("%s has no health check path", tg.Address)
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := hc.Get("http://" + addr + path)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if time.Now().After(deadline) {
			r.fail("%s: the load balancer's health check GET %s: %v", c.name, path, err)
		}
		time.Sleep(500 * time.Millisecond)
	}

	var carpark string
	for _, kv := range c.env {
		if v, ok := strings.CutPrefix(kv, "PICKUP_CARPARK_BUCKET="); ok {
			carpark = v
		}
	}
	obj, err := r.w.s3.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(carpark), Key: aws.String(carstore.RootKey(rootCID))})
	if err != nil {
		r.fail("the CAR of %s in the serve role's carpark %q: %v", rootCID, carpark, err)
	}
	want, err := io.ReadAll(obj.Body)
	obj.Body.Close()
	if err != nil {
		t.Fatal(err)
	}

	url := "http://" + addr + "/ipfs/" + rootCID.String() + "?format=car"
	deadline = time.Now().Add(time.Minute)
	for {
		got, status, ctype, err := getBody(ctx, hc, url)
		if err == nil && status == http.StatusOK {
			if !bytes.Equal(got, want) {
				r.fail("GET %s from %s: %d bytes (sha256 %x), want the carpark's %d (sha256 %x)", url, c.name, len(got), sha256.Sum256(got), len(want), sha256.Sum256(want))
			}
			if !strings.HasPrefix(ctype, "application/vnd.ipld.car") {
				t.Errorf("GET %s: Content-Type %q, want application/vnd.ipld.car", url, ctype)
			}
			t.Logf("serve: GET /ipfs/%s?format=car from %s is the carpark's CAR (%d bytes)", rootCID, c.name, len(got))
			id := r.checkServePeer(ctx, c)
			r.checkAnnounced(c, id)
			return
		}
		if err == nil {
			err = fmt.Errorf("status %d: %.200s", status, got)
		}
		// Not found until the lookup has loaded the root's index.
		if time.Now().After(deadline) || err != nil && status != http.StatusNotFound && status != 0 {
			r.fail("GET %s from %s: %v", url, c.name, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// checkServePeer connects to the serve container's libp2p host as the
// network load balancer would send a peer: on each address it listens on
// (PICKUP_SERVE_LIBP2P_LISTEN, TCP and QUIC, on loopback here: the one part
// missing is the load balancer its announced addresses name), expecting
// the peer id of the key ECS injected (PICKUP_SERVE_LIBP2P_KEY, the secret
// the operator wrote): the identity every serve task shares.
func (r *deploymentRun) checkServePeer(ctx context.Context, c *container) peer.ID {
	t := r.t
	var listen, key string
	for _, kv := range c.env {
		if v, ok := strings.CutPrefix(kv, "PICKUP_SERVE_LIBP2P_LISTEN="); ok {
			listen = v
		}
		if v, ok := strings.CutPrefix(kv, "PICKUP_SERVE_LIBP2P_KEY="); ok {
			key = v
		}
	}
	b, err := base64.StdEncoding.DecodeString(key)
	if err != nil || key == "" {
		r.fail("%s: PICKUP_SERVE_LIBP2P_KEY %q: %v", c.name, key, err)
	}
	sk, err := crypto.UnmarshalPrivateKey(b)
	if err != nil {
		r.fail("%s: PICKUP_SERVE_LIBP2P_KEY: %v", c.name, err)
	}
	id, err := peer.IDFromPrivateKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	h, err := libp2p.New(libp2p.NoListenAddrs)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	protocols := map[string]bool{}
	for _, a := range strings.Split(listen, ",") {
		addr, err := ma.NewMultiaddr(strings.Replace(a, "/ip4/0.0.0.0/", "/ip4/127.0.0.1/", 1))
		if err != nil {
			r.fail("%s: PICKUP_SERVE_LIBP2P_LISTEN %q: %v", c.name, listen, err)
		}
		dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err = h.Connect(dctx, peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{addr}})
		cancel()
		if err != nil {
			r.fail("%s: no libp2p connection to %s at %s, the peer of the injected key: %v", c.name, id, addr, err)
		}
		conns := h.Network().ConnsToPeer(id)
		if len(conns) != 1 || !conns[0].RemoteMultiaddr().Equal(addr) {
			r.fail("%s: connected to %s through %v, want %s alone", c.name, id, conns, addr)
		}
		for _, p := range addr.Protocols() {
			protocols[p.Name] = true
		}
		if err := h.Network().ClosePeer(id); err != nil {
			t.Fatal(err)
		}
		h.Peerstore().ClearAddrs(id)
		t.Logf("serve peer %s at %s: connected", id, addr)
	}
	if !protocols["tcp"] || !protocols["quic-v1"] {
		r.fail("%s listens for libp2p at %q: want TCP and QUIC, as the load balancer forwards both", c.name, listen)
	}
	return id
}

// checkAnnounced: a serve container given IPNI indexers (prod's
// cid.contact, the world's stand-in here) announces its chain's head to
// them once a CAR is validated: a PUT /announce naming the serving peer.
// Without indexers (dev) it announces nothing.
func (r *deploymentRun) checkAnnounced(c *container, id peer.ID) {
	indexers := false
	for _, kv := range c.env {
		indexers = indexers || strings.HasPrefix(kv, "PICKUP_IPNI_INDEXERS=")
	}
	// announcedBy reports how many requests the stand-in took, and
	// whether one is an announcement (go-libipni's, CBOR) whose addresses
	// name id as the publisher.
	announcedBy := func() (int, bool) {
		r.w.announcedMu.Lock()
		defer r.w.announcedMu.Unlock()
		for _, a := range r.w.announced {
			body, ok := strings.CutPrefix(a, "PUT /announce ")
			var m message.Message
			if !ok || m.UnmarshalCBOR(strings.NewReader(body)) != nil {
				continue
			}
			addrs, _ := m.GetAddrs()
			for _, addr := range addrs {
				if _, p := peer.SplitAddr(addr); p == id {
					return len(r.w.announced), true
				}
			}
		}
		return len(r.w.announced), false
	}
	if !indexers {
		if n, _ := announcedBy(); n != 0 {
			r.fail("%s has no IPNI indexers, yet the indexer stand-in took %d requests", c.name, n)
		}
		return
	}
	deadline := time.Now().Add(time.Minute)
	for {
		n, ok := announcedBy()
		if ok {
			r.t.Logf("serve: %s announced its IPNI head as %s", c.name, id)
			return
		}
		if time.Now().After(deadline) {
			r.fail("%s: no PUT /announce naming %s reached the indexers within a minute (%d requests)", c.name, id, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// getBody GETs url, returning the body, status and Content-Type.
func getBody(ctx context.Context, hc *http.Client, url string) ([]byte, int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, "", err
	}
	req.Header.Set("Accept", "application/vnd.ipld.car")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return b, resp.StatusCode, resp.Header.Get("Content-Type"), err
}
