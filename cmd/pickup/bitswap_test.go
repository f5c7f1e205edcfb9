package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/eventlog/embedded"
	"github.com/pickup-ipfs/pickup/fetcher/dag/bitswap"
	"github.com/pickup-ipfs/pickup/internal/telemetry/telemetrytest"
	"github.com/pickup-ipfs/pickup/presence"
)

// TestSeedFile: without --libp2p-seed, the seed file is created once
// (mode 0600) and read as it is afterwards, never regenerated; a seed under
// 32 bytes, given or in the file, is a usage error; --libp2p-seed wins.
func TestSeedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "libp2p.seed")
	seedOf := func(vars map[string]string) ([]byte, error) {
		e, _, _ := testEnv(vars)
		f := newFlags(e, "test")
		lf := addLibp2pFlags(f)
		if err := f.parse(nil); err != nil {
			t.Fatal(err)
		}
		return lf.seedBytes()
	}
	first, err := seedOf(map[string]string{"PICKUP_LIBP2P_SEED_FILE": path})
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 || len(first) < bitswap.MinSeedBytes {
		t.Errorf("seed file mode %v, seed of %d bytes; want 0600 and at least 32", info.Mode().Perm(), len(first))
	}
	again, err := seedOf(map[string]string{"PICKUP_LIBP2P_SEED_FILE": path})
	if err != nil || string(again) != string(first) {
		t.Errorf("second read %q (%v), want the first seed %q", again, err, first)
	}

	short := filepath.Join(t.TempDir(), "short.seed")
	os.WriteFile(short, []byte("too short\n"), 0o600)
	for name, vars := range map[string]map[string]string{
		"short file": {"PICKUP_LIBP2P_SEED_FILE": short},
		"short seed": {"PICKUP_LIBP2P_SEED": "0123456789"},
	} {
		if _, err := seedOf(vars); err == nil || !strings.Contains(err.Error(), "at least 32") {
			t.Errorf("%s: %v, want a usage error", name, err)
		}
	}
	if b, _ := os.ReadFile(short); string(b) != "too short\n" {
		t.Errorf("a refused seed file was rewritten: %q", b)
	}
	given := "a seed of more than thirty-two bytes, from Secrets Manager"
	if got, err := seedOf(map[string]string{"PICKUP_LIBP2P_SEED": given, "PICKUP_LIBP2P_SEED_FILE": short}); err != nil || string(got) != given {
		t.Errorf("--libp2p-seed: %q, %v", got, err)
	}
}

// ecsStandIns serve what PICKUP_LIBP2P_PUBLIC_IP=ecs asks, on loopback:
// the ECS task metadata endpoint v4 and EC2's Query API. Neither can run
// here; both answer as AWS documents them (a task's Networks, and
// DescribeNetworkInterfaces' XML). ec2Filters records the filters EC2 was
// asked with.
func ecsStandIns(t *testing.T, publicIP string) (metadataURI string, ec2Filters func() url.Values) {
	t.Helper()
	meta := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v4/abc/task" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"Cluster":"pickup","TaskARN":"arn:aws:ecs:us-east-1:123456789012:task/pickup/abc",
			"Containers":[{"Name":"fetcher","Networks":[{"NetworkMode":"awsvpc","IPv4Addresses":["10.0.1.5"]}]}]}`))
	}))
	t.Cleanup(meta.Close)
	var mu sync.Mutex
	var asked url.Values
	ec2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		mu.Lock()
		asked = r.PostForm
		mu.Unlock()
		if r.PostForm.Get("Action") != "DescribeNetworkInterfaces" || r.PostForm.Get("Filter.1.Value.1") != "10.0.1.5" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		association := ""
		if publicIP != "" {
			association = "<association><publicIp>" + publicIP + "</publicIp></association>"
		}
		w.Header().Set("Content-Type", "text/xml")
		w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?>
<DescribeNetworkInterfacesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</requestId>
  <networkInterfaceSet><item><networkInterfaceId>eni-0f7d8a0c0b1e2f3a4</networkInterfaceId>` + association + `
    <privateIpAddress>10.0.1.5</privateIpAddress></item></networkInterfaceSet>
</DescribeNetworkInterfacesResponse>`))
	}))
	t.Cleanup(ec2.Close)
	t.Setenv("AWS_ENDPOINT_URL_EC2", ec2.URL)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	return meta.URL + "/v4/abc", func() url.Values { mu.Lock(); defer mu.Unlock(); return asked }
}

// TestFetcherAnnouncesPublicIP: `pickup fetcher` with
// PICKUP_LIBP2P_PUBLIC_IP=ecs claims slot 0 with the seed's slot-0 peer
// id and announces its listen port at the public IP EC2 names for the
// task's private address; stopped, it withdraws.
func TestFetcherAnnouncesPublicIP(t *testing.T) {
	metadata, filters := ecsStandIns(t, "203.0.113.25")
	dir := t.TempDir()
	seed := "a seed of more than thirty-two bytes for this test"
	e, _, errs := testEnv(map[string]string{
		"PICKUP_EVENTLOG": filepath.Join(dir, "events.db"), "PICKUP_VIEWS": filepath.Join(dir, "views.db"),
		"PICKUP_ADMIN_ADDR": "", "PICKUP_CAR_DIR": filepath.Join(dir, "cars"), "PICKUP_SOURCES": "bitswap",
		"PICKUP_LIBP2P_LISTEN": "/ip4/0.0.0.0/tcp/0", "PICKUP_LIBP2P_SEED": seed,
		"PICKUP_LIBP2P_PUBLIC_IP": "ecs", "ECS_CONTAINER_METADATA_URI_V4": metadata,
	})
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan int, 1)
	go func() { exited <- run(ctx, e, []string{"fetcher"}) }()
	log, err := embedded.Open(context.Background(), filepath.Join(dir, "events.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	key, _ := bitswap.SlotKey([]byte(seed), 0)
	peerID, _ := peer.IDFromPrivateKey(key)
	var slot presence.Slot
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		events, err := log.ReadStream(context.Background(), presence.Stream(0), eventlog.StreamEnd, eventlog.Backwards, 1)
		if err != nil {
			t.Fatal(err)
		}
		if slot = presence.SlotFrom(0, events); slot.Exists {
			break
		}
		select {
		case code := <-exited:
			t.Fatalf("the fetcher exited %d before announcing: %s", code, errs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no announcement")
		}
	}
	a, live := slot.Live(time.Now())
	if !live || a.PeerID != peerID.String() || len(a.Addrs) != 1 || !strings.HasPrefix(a.Addrs[0], "/ip4/203.0.113.25/tcp/") || !strings.HasSuffix(a.Addrs[0], "/p2p/"+peerID.String()) {
		t.Errorf("announced %+v (live %v), want slot 0's peer %s at 203.0.113.25", a, live, peerID)
	}
	if f := filters(); f.Get("Filter.1.Name") != "addresses.private-ip-address" {
		t.Errorf("EC2 asked with %v, want a filter on addresses.private-ip-address", f)
	}
	cancel()
	if code := <-exited; code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	events, _ := log.ReadStream(context.Background(), presence.Stream(0), eventlog.StreamEnd, eventlog.Backwards, 1)
	if len(events) != 1 || events[0].Type != presence.TypeWithdrawn {
		t.Errorf("after the stop, slot 0 ends with %v, want %s", events, presence.TypeWithdrawn)
	}
}

// TestPublicIPRefusals: without a public IP on the interface, outside ECS,
// or with a mode pickup does not know, the fetcher does not start, and
// says why.
func TestPublicIPRefusals(t *testing.T) {
	metadata, _ := ecsStandIns(t, "")
	for name, c := range map[string]struct {
		vars map[string]string
		want string
	}{
		"no public IP":    {map[string]string{"PICKUP_LIBP2P_PUBLIC_IP": "ecs", "ECS_CONTAINER_METADATA_URI_V4": metadata}, "has no public IP"},
		"not in ECS":      {map[string]string{"PICKUP_LIBP2P_PUBLIC_IP": "ecs"}, "ECS_CONTAINER_METADATA_URI_V4 is not set"},
		"an unknown mode": {map[string]string{"PICKUP_LIBP2P_PUBLIC_IP": "upnp"}, `want ecs or nothing`},
	} {
		dir := t.TempDir()
		c.vars["PICKUP_EVENTLOG"], c.vars["PICKUP_VIEWS"], c.vars["PICKUP_ADMIN_ADDR"] = filepath.Join(dir, "events.db"), filepath.Join(dir, "views.db"), ""
		c.vars["PICKUP_SOURCES"], c.vars["PICKUP_LIBP2P_SEED_FILE"], c.vars["PICKUP_CAR_DIR"] = "bitswap", filepath.Join(dir, "seed"), filepath.Join(dir, "cars")
		e, _, errs := testEnv(c.vars)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		code := run(ctx, e, []string{"fetcher"})
		cancel()
		if code == 0 || !strings.Contains(errs.String(), c.want) {
			t.Errorf("%s: exit %d, stderr %q; want a refusal saying %q", name, code, errs, c.want)
		}
	}
}

// TestFetcherWithoutSlot: with every slot held by a live fetcher, `pickup
// fetcher` still runs, with a new identity, announces nothing, and says so
// in a warning.
func TestFetcherWithoutSlot(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "events.db")
	log, err := embedded.Open(context.Background(), logPath, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	held := "12D3KooWLYddiuv1m7YvJzDiMuht5eLRXe2wZ52si7Hz7XpdhchL"
	for range presence.Slots {
		if _, err := presence.Acquire(context.Background(), presence.Config{}, presence.Deps{Log: log},
			func(context.Context, int) (presence.Endpoint, func(), error) {
				return presence.Endpoint{PeerID: held, Addrs: []string{"/ip4/127.0.0.1/tcp/4001/p2p/" + held}}, func() {}, nil
			}); err != nil {
			t.Fatal(err)
		}
	}
	head, _ := log.Head(context.Background())
	vars := map[string]string{
		"PICKUP_EVENTLOG": logPath, "PICKUP_VIEWS": filepath.Join(dir, "views.db"), "PICKUP_ADMIN_ADDR": "",
		"PICKUP_CAR_DIR": filepath.Join(dir, "cars"), "PICKUP_SOURCES": "bitswap", "PICKUP_LIBP2P_LISTEN": "/ip4/127.0.0.1/tcp/0",
		"PICKUP_LIBP2P_SEED_FILE": filepath.Join(dir, "seed"),
	}
	errs := &telemetrytest.Buffer{}
	e := &env{stdout: &telemetrytest.Buffer{}, stderr: errs, getenv: func(k string) string { return vars[k] }}
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan int, 1)
	go func() { exited <- run(ctx, e, []string{"fetcher"}) }()
	waitFor := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !strings.Contains(errs.String(), what); time.Sleep(10 * time.Millisecond) {
			select {
			case code := <-exited:
				t.Fatalf("exited %d: %s", code, errs)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the log: %s", what, errs)
			}
		}
	}
	waitFor("every fetcher slot is live")
	waitFor(`"msg":"libp2p host"`)
	cancel()
	if code := <-exited; code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if after, _ := log.Head(context.Background()); after != head {
		t.Errorf("the fetcher without a slot wrote to the log (head %d, then %d)", head, after)
	}
}

// TestRefusedStartFreesItsSlot: a fetcher refused after its host claimed a
// slot (a later setting is wrong) withdraws before it exits, so its slot
// is free at once, not held for a TTL by a process that never ran.
func TestRefusedStartFreesItsSlot(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "events.db")
	e, _, errs := testEnv(map[string]string{
		"PICKUP_EVENTLOG": logPath, "PICKUP_VIEWS": filepath.Join(dir, "views.db"), "PICKUP_ADMIN_ADDR": "",
		"PICKUP_SOURCES": "bitswap", "PICKUP_LIBP2P_LISTEN": "/ip4/127.0.0.1/tcp/0", "PICKUP_LIBP2P_SEED_FILE": filepath.Join(dir, "seed"),
		"PICKUP_STAGING_BUCKET": "staging", // and no carpark bucket
	})
	if code := run(context.Background(), e, []string{"fetcher"}); code != 2 || !strings.Contains(errs.String(), "without --carpark-bucket") {
		t.Fatalf("exit %d, stderr %q; want the usage error", code, errs)
	}
	log, err := embedded.Open(context.Background(), logPath, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	events, _ := log.ReadStream(context.Background(), presence.Stream(0), 0, eventlog.Forwards, 10)
	if len(events) != 2 || events[0].Type != presence.TypeAnnounced || events[1].Type != presence.TypeWithdrawn {
		t.Fatalf("slot 0 holds %v, want an announcement and its withdrawal", events)
	}
}

// FuzzTaskIPv4: whatever the metadata endpoint answers, taskIPv4 returns
// an IPv4 address or an error, never a panic or another family.
func FuzzTaskIPv4(f *testing.F) {
	f.Add([]byte(`{"Containers":[{"Networks":[{"IPv4Addresses":["10.0.1.5"]}]}]}`))
	f.Add([]byte(`{"Containers":[{"Networks":[{"IPv4Addresses":["::1","fe80::1"]}]}]}`))
	f.Add([]byte(`{"Containers":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ip, err := taskIPv4(body)
		if err == nil && !ip.Is4() {
			t.Fatalf("%q: %v, not IPv4", body, ip)
		}
	})
}

// TestNothingToAnnounce: a fetcher whose announced addresses would be
// empty (listening on loopback only, with a public IP that replaces
// non-loopback addresses) refuses to start rather than announce a bare
// /p2p/<peer id> nobody can dial, and claims no slot.
func TestNothingToAnnounce(t *testing.T) {
	metadata, _ := ecsStandIns(t, "203.0.113.25")
	dir := t.TempDir()
	logPath := filepath.Join(dir, "events.db")
	e, _, errs := testEnv(map[string]string{
		"PICKUP_EVENTLOG": logPath, "PICKUP_VIEWS": filepath.Join(dir, "views.db"), "PICKUP_ADMIN_ADDR": "",
		"PICKUP_CAR_DIR": filepath.Join(dir, "cars"), "PICKUP_SOURCES": "bitswap", "PICKUP_LIBP2P_LISTEN": "/ip4/127.0.0.1/tcp/0",
		"PICKUP_LIBP2P_SEED_FILE": filepath.Join(dir, "seed"), "PICKUP_LIBP2P_PUBLIC_IP": "ecs", "ECS_CONTAINER_METADATA_URI_V4": metadata,
	})
	if code := run(context.Background(), e, []string{"fetcher"}); code != 2 || !strings.Contains(errs.String(), "no address to announce") {
		t.Fatalf("exit %d, stderr %q; want a usage error saying there is no address to announce", code, errs)
	}
	log, err := embedded.Open(context.Background(), logPath, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	if head, _ := log.Head(context.Background()); head != 0 {
		t.Errorf("the refused fetcher wrote to the log (head %d)", head)
	}
}
