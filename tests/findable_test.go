package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	routingclient "github.com/ipfs/boxo/routing/http/client"
	"github.com/ipfs/boxo/routing/http/types"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/pickup-ipfs/pickup/internal/servetest"
)

// servePeer is the serving role's libp2p peer as it logs it at start.
type servePeer struct {
	ID      peer.ID
	Addrs   []multiaddr.Multiaddr // with /p2p/
	Gateway string
}

// peerOf reads the serving peer from the process's log ("serving
// bitswap").
func (p *process) peerOf(t testing.TB) servePeer {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(p.logText(t)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			Msg, Peer, Gateway string
			Addrs              []string
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Msg != "serving bitswap" {
			continue
		}
		id, err := peer.Decode(l.Peer)
		if err != nil {
			t.Fatalf("logged peer %q: %v", l.Peer, err)
		}
		sp := servePeer{ID: id, Gateway: l.Gateway}
		for _, a := range l.Addrs {
			sp.Addrs = append(sp.Addrs, multiaddr.StringCast(a))
		}
		return sp
	}
	t.Fatalf("%s logged no \"serving bitswap\" line", p.name)
	return servePeer{}
}

func cidsOf(bs []carBlock) []cid.Cid {
	out := make([]cid.Cid, len(bs))
	for i, b := range bs {
		out[i] = b.cid
	}
	return out
}

// TestFindable: what pickup pins is fetched over bitswap from its serving
// role by boxo's client (every block, byte for byte), and found through
// its delegated routing endpoint (boxo's routing client: the serving peer
// for every block, with its libp2p and gateway addresses); kubo, with no
// bootstrap peers and pickup as its only router, finds pickup's peer
// through the endpoint and fetches the DAG from it over bitswap (`ipfs dag
// export` is the carpark's CAR). A block never pinned, a damaged stored
// block and the blocks of a removed pin are not sent (DONT_HAVE), and
// the endpoint names no provider for them.
func TestFindable(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	gw := c.start("gateway", []string{"gateway"})
	c.start("projector", []string{"projector"})
	c.start("fetcher", []string{"fetcher"})
	srv := c.startServe()
	cl := c.client(gw.api())
	base := srv.serveURL()
	sp := srv.peerOf(t)
	if want := "/ip4/127.0.0.1/tcp/" + base[strings.LastIndex(base, ":")+1:] + "/http"; sp.Gateway != want {
		t.Errorf("gateway address %s, want %s", sp.Gateway, want)
	}

	root, reqID := c.pinAndServe(t, cl, base, 3<<20+4321, 41)
	car := c.object(c.carpark, root.String()+"/"+root.String()+".car")
	blks := blocksOf(t, car)
	unpinned := c.file(500<<10, 42) // the origin has it; pickup never pinned it

	bs := servetest.NewClient(t)
	server, err := bs.Connect(servetest.Within(t, 10*time.Second), sp.Addrs)
	if err != nil || server != sp.ID {
		t.Fatalf("connect to the serving peer: %s, %v", server, err)
	}

	t.Run("boxo's bitswap client fetches every block", func(t *testing.T) {
		got, err := bs.Fetch(servetest.Within(t, 60*time.Second), cidsOf(blks))
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blks {
			if !bytes.Equal(got[b.cid], b.data) {
				t.Fatalf("block %s: %d bytes, want its %d", b.cid, len(got[b.cid]), len(b.data))
			}
		}
	})

	rc, err := routingclient.New(base)
	if err != nil {
		t.Fatal(err)
	}
	providers := func(t *testing.T, k cid.Cid) []*types.PeerRecord {
		t.Helper()
		it, err := rc.FindProviders(servetest.Within(t, 20*time.Second), k)
		if err != nil {
			t.Fatalf("providers of %s: %v", k, err)
		}
		defer it.Close()
		var out []*types.PeerRecord
		for it.Next() {
			r := it.Val()
			if r.Err != nil {
				t.Fatalf("providers of %s: %v", k, r.Err)
			}
			pr, ok := r.Val.(*types.PeerRecord)
			if !ok {
				t.Fatalf("providers of %s: a %T record", k, r.Val)
			}
			out = append(out, pr)
		}
		return out
	}

	t.Run("delegated routing names the serving peer", func(t *testing.T) {
		var want []string
		for _, a := range sp.Addrs {
			transport, _ := peer.SplitAddr(a)
			want = append(want, transport.String())
		}
		want = append(want, sp.Gateway)
		for _, b := range blks {
			recs := providers(t, b.cid)
			if len(recs) != 1 || recs[0].ID == nil || *recs[0].ID != sp.ID {
				t.Fatalf("providers of %s: %+v, want the serving peer %s alone", b.cid, recs, sp.ID)
			}
			var got []string
			for _, a := range recs[0].Addrs {
				got = append(got, a.String())
			}
			if !slices.Equal(got, want) || !slices.Equal(recs[0].Protocols, []string{"transport-bitswap", "transport-ipfs-gateway-http"}) {
				t.Fatalf("providers of %s: addrs %v (want %v), protocols %v", b.cid, got, want, recs[0].Protocols)
			}
		}
		if recs := providers(t, unpinned); len(recs) != 0 {
			t.Errorf("providers of a CID never pinned: %+v, want none", recs)
		}
	})

	t.Run("kubo with pickup as its router fetches the DAG over bitswap", func(t *testing.T) {
		k := startRoutedKubo(t, base)
		exported := k.run(t, "dag", "export", root.String())
		if !bytes.Equal(exported, car) {
			t.Fatalf("kubo's dag export: %d bytes, want the carpark's CAR (%d)", len(exported), len(car))
		}
		if peers := string(k.run(t, "swarm", "peers")); !strings.Contains(peers, sp.ID.String()) {
			t.Fatalf("kubo is not connected to the serving peer %s: %s", sp.ID, peers)
		}
	})

	ask := func(t *testing.T, wantBlock bool, ks ...cid.Cid) map[cid.Cid]servetest.Answer {
		t.Helper()
		got, err := bs.Ask(servetest.Within(t, 20*time.Second), sp.ID, wantBlock, ks...)
		if err != nil {
			t.Fatalf("ask %v: %v (answers %+v)", ks, err, got)
		}
		return got
	}

	t.Run("a block never pinned is DONT_HAVE", func(t *testing.T) {
		for _, wantBlock := range []bool{false, true} {
			if a := ask(t, wantBlock, unpinned)[unpinned]; !a.DontHave {
				t.Errorf("want-block %v of a block never pinned: %+v, want DONT_HAVE", wantBlock, a)
			}
		}
	})

	t.Run("a damaged stored block is not sent", func(t *testing.T) {
		root2, _ := c.pinAndServe(t, cl, base, 1<<20+9, 43)
		key := root2.String() + "/" + root2.String() + ".car"
		car2 := c.object(c.carpark, key)
		blks2 := blocksOf(t, car2)
		bad := blks2[2]
		damaged := bytes.Clone(car2)
		damaged[bytes.Index(car2, bad.data)+100] ^= 0x01
		c.put(c.carpark, key, damaged)
		if a := ask(t, true, bad.cid)[bad.cid]; !a.DontHave || a.Block != nil {
			t.Fatalf("want-block of a damaged block: %+v, want DONT_HAVE and no block", a)
		}
		sound := blks2[1]
		if a := ask(t, true, sound.cid)[sound.cid]; !bytes.Equal(a.Block, sound.data) {
			t.Errorf("a sound block of the damaged CAR: %+v, want its bytes", a)
		}
	})

	t.Run("a removed pin's blocks are not served nor found", func(t *testing.T) {
		cl.remove(reqID)
		waitUntil(t, 30*time.Second, "the removed root answered DONT_HAVE", func() bool {
			a, err := bs.Ask(servetest.Within(t, 10*time.Second), sp.ID, false, root)
			return err == nil && a[root].DontHave
		})
		for _, b := range blks {
			if a := ask(t, true, b.cid)[b.cid]; !a.DontHave {
				t.Fatalf("want-block of %s of a removed pin: %+v, want DONT_HAVE", b.cid, a)
			}
			if recs := providers(t, b.cid); len(recs) != 0 {
				t.Fatalf("providers of %s of a removed pin: %+v, want none", b.cid, recs)
			}
		}
	})
}

// TestServeIdentity: the serving peer's key is kept: a restart with the
// same key file is the same peer; PICKUP_SERVE_LIBP2P_KEY names the key
// outright; a key file that does not decode stops `pickup serve` with a
// clear error, and is left as it was.
func TestServeIdentity(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	first := c.startServe()
	id := first.peerOf(t).ID
	keyFile := filepath.Join(c.dir, "serve-libp2p.key")
	st, err := os.Stat(keyFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the key file beside the log: %v, %v; want it, mode 0600", st, err)
	}
	first.stop(t)
	if again := c.startServe().peerOf(t).ID; again != id {
		t.Fatalf("restarted with the same key file: peer %s, want %s", again, id)
	}

	out, err := exec.Command(pickupBin, "serve-key").Output()
	if err != nil {
		t.Fatalf("pickup serve-key: %v", err)
	}
	key := strings.TrimSpace(string(out))
	fromEnv := c.startServe("PICKUP_SERVE_LIBP2P_KEY=" + key).peerOf(t).ID
	if again := c.startServe("PICKUP_SERVE_LIBP2P_KEY=" + key).peerOf(t).ID; again != fromEnv || fromEnv == id {
		t.Fatalf("PICKUP_SERVE_LIBP2P_KEY: peers %s then %s (the file's %s); want one peer, not the file's", fromEnv, again, id)
	}

	bad := filepath.Join(c.dir, "bad.key")
	if err := os.WriteFile(bad, []byte("this is not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(pickupBin, "serve")
	cmd.Env = append(c.env(), "PICKUP_SERVE_LIBP2P_KEY_FILE="+bad)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Signal(syscall.SIGKILL)
		t.Fatalf("pickup serve with a corrupt key file still runs after 60s")
	}
	if err == nil || !strings.Contains(stderr.String(), bad) || !strings.Contains(stderr.String(), "not a libp2p private key") {
		t.Fatalf("a corrupt key file: exit %v, stderr %q; want a failure naming the file", err, stderr.String())
	}
	if b, _ := os.ReadFile(bad); string(b) != "this is not a key\n" {
		t.Fatalf("the corrupt key file was changed: %q", b)
	}
}

// routedKubo is a kubo daemon, online, with no bootstrap peers: its only
// router a pickup's delegated routing endpoint (startRoutedKubo), or none.
type routedKubo struct {
	bin, repo string
}

// startRoutedKubo starts kubo online (a swarm on loopback, no bootstrap
// peers, no DHT) with Routing.Type=custom: one http router, endpoint
// the serving role's base URL, for every method kubo 0.43 requires
// (find-providers and find-peers are what a fetch asks; provide, get-ipns
// and put-ipns are answered unsupported). HTTP retrieval is off, so that
// what it fetches comes over bitswap.
func startRoutedKubo(t *testing.T, endpoint string) *routedKubo {
	t.Helper()
	k := &routedKubo{bin: kuboBin(t), repo: filepath.Join(t.TempDir(), "ipfs")}
	k.run(t, "init", "--profile=test", "--empty-repo")
	methods := map[string]any{}
	for _, m := range []string{"find-providers", "find-peers", "provide", "get-ipns", "put-ipns"} {
		methods[m] = map[string]string{"RouterName": "pickup"}
	}
	routing, _ := json.Marshal(map[string]any{
		"Type":    "custom",
		"Routers": map[string]any{"pickup": map[string]any{"Type": "http", "Parameters": map[string]string{"Endpoint": endpoint}}},
		"Methods": methods,
	})
	k.run(t, "config", "--json", "Routing", string(routing))
	k.run(t, "config", "--json", "HTTPRetrieval.Enabled", "false")
	k.run(t, "config", "--json", "Provide.Enabled", "false")
	k.daemon(t)
	return k
}

// daemon starts the daemon online and waits until it is ready; it is
// stopped when t ends.
func (k *routedKubo) daemon(t testing.TB) {
	t.Helper()
	startKuboDaemon(t, k.bin, k.env())
}

func (k *routedKubo) env() []string { return append(os.Environ(), "IPFS_PATH="+k.repo) }

// run runs an ipfs command (against the daemon, once it runs) with a
// deadline, and returns its stdout.
func (k *routedKubo) run(t testing.TB, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, k.bin, args...)
	cmd.Env = k.env()
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	if err := cmd.Run(); err != nil {
		t.Fatalf("ipfs %s: %v: %s", strings.Join(args, " "), err, errs.String())
	}
	return out.Bytes()
}
