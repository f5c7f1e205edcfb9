package main

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/fluent/qp"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	"github.com/multiformats/go-multicodec"
	"github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
)

// percentLine is the percentage in a line --wait prints while a DAG whose
// root declares its size is fetched.
var percentLine = regexp.MustCompile(`(?m)^pinning: attempt 1, .* so far from gateway\b.*, ([0-9.]+)% of 3\.0 MiB(, about \S+ left)?$`)

// `pickup pin add --wait` against a real `pickup run`: a UnixFS DAG's
// lines show the percentage of the size its root declares rising, with
// the time left, and the pinned pin shows 100; a dag-cbor root's lines
// show bytes and no percentage, and a raw root's no percentage either; a root that declares more than the limit fails
// at once as too_big.
func TestPinAddWaitShowsPercent(t *testing.T) {
	ctx := context.Background()
	bs := ipfstest.NewMemBlockstore()
	origin := ipfstest.NewGateway(t, bs, ipfstest.GatewayOptions{})
	s := startPinStack(t, ipfstest.Throttled(t, origin.URL(), 1<<20), map[string]string{"PICKUP_MAX_CAR_BYTES": "4MiB"})
	file, err := ipfstest.File(ctx, bs, ipfstest.FileOptions{Size: 3 << 20, Seed: 11, CIDv1: true})
	if err != nil {
		t.Fatal(err)
	}
	big, err := ipfstest.File(ctx, bs, ipfstest.FileOptions{Size: 8 << 20, Seed: 12, CIDv1: true})
	if err != nil {
		t.Fatal(err)
	}
	// A dag-cbor root over four raw blocks of 512 KiB: no sizes anywhere.
	var leaves []cid.Cid
	for i := range 4 {
		data := make([]byte, 512<<10)
		if _, err := io.ReadFull(ipfstest.Random(uint64(13+i)), data); err != nil {
			t.Fatal(err)
		}
		leaf, err := ipfstest.PutRaw(ctx, bs, uint64(multicodec.Raw), multihash.SHA2_256, data)
		if err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, leaf)
	}
	node, err := qp.BuildList(basicnode.Prototype.Any, -1, func(la datamodel.ListAssembler) {
		for _, l := range leaves {
			qp.ListEntry(la, qp.Link(cidlink.Link{Cid: l}))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	cbor, err := ipfstest.Put(ctx, bs, multicodec.DagCbor, multihash.SHA2_256, node)
	if err != nil {
		t.Fatal(err)
	}
	// A raw root: one block, whose bytes show only once it has all come.
	rawData := make([]byte, 1<<20)
	if _, err := io.ReadFull(ipfstest.Random(17), rawData); err != nil {
		t.Fatal(err)
	}
	raw, err := ipfstest.PutRaw(ctx, bs, uint64(multicodec.Raw), multihash.SHA2_256, rawData)
	if err != nil {
		t.Fatal(err)
	}
	var car bytes.Buffer
	if _, err := ipfstest.Export(ctx, bs, file, &car); err != nil {
		t.Fatal(err)
	}
	declared, err := ipfstest.BlockBytes(car.Bytes())
	if err != nil {
		t.Fatal(err)
	}

	type result struct {
		code      int
		out, errs string
	}
	var wg sync.WaitGroup
	var dagpb, noSizes, rawRoot, tooBig result
	wg.Go(func() { dagpb.code, dagpb.out, dagpb.errs = s.pinCLI(t, nil, "add", file.String(), "--wait") })
	wg.Go(func() { noSizes.code, noSizes.out, noSizes.errs = s.pinCLI(t, nil, "add", cbor.String(), "--wait") })
	wg.Go(func() { rawRoot.code, rawRoot.out, rawRoot.errs = s.pinCLI(t, nil, "add", raw.String(), "--wait") })
	wg.Go(func() { tooBig.code, tooBig.out, tooBig.errs = s.pinCLI(t, nil, "add", big.String(), "--wait") })
	wg.Wait()

	if dagpb.code != 0 || field(dagpb.out, "status") != "pinned" {
		t.Fatalf("pin add --wait of a UnixFS DAG: exit %d\nstdout:\n%s\nstderr:\n%s", dagpb.code, dagpb.out, dagpb.errs)
	}
	var percents []float64
	left := false
	for _, m := range percentLine.FindAllStringSubmatch(dagpb.errs, -1) {
		p, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		percents = append(percents, p)
		left = left || m[2] != ""
	}
	rising := len(percents) >= 2 && percents[len(percents)-1] > percents[0]
	for i := 1; i < len(percents); i++ {
		rising = rising && percents[i] >= percents[i-1] && percents[i] <= 100
	}
	if !rising || !left {
		t.Errorf("--wait showed percentages %v (time left: %v), want them rising with the time left:\n%s", percents, left, dagpb.errs)
	}
	if field(dagpb.out, api.InfoPercent) != "100" || field(dagpb.out, api.InfoExpectedBytes) != strconv.FormatInt(declared, 10) {
		t.Errorf("pinned: percent %q, expected_bytes %q; want 100 and the CAR's %d block bytes\n%s",
			field(dagpb.out, api.InfoPercent), field(dagpb.out, api.InfoExpectedBytes), declared, dagpb.out)
	}

	if noSizes.code != 0 || field(noSizes.out, "status") != "pinned" {
		t.Fatalf("pin add --wait of a dag-cbor DAG: exit %d\nstdout:\n%s\nstderr:\n%s", noSizes.code, noSizes.out, noSizes.errs)
	}
	moved := false
	for _, m := range progressLine.FindAllStringSubmatch(noSizes.errs, -1) {
		moved = moved || m[2] != "0"
	}
	if !moved || strings.Contains(noSizes.errs, "%") || field(noSizes.out, api.InfoPercent) != "" || field(noSizes.out, api.InfoExpectedBytes) != "" {
		t.Errorf("a dag-cbor root: want lines with bytes moving and no percentage\nstdout:\n%s\nstderr:\n%s", noSizes.out, noSizes.errs)
	}

	if rawRoot.code != 0 || field(rawRoot.out, "status") != "pinned" || strings.Contains(rawRoot.errs, "%") ||
		field(rawRoot.out, api.InfoPercent) != "" || field(rawRoot.out, api.InfoExpectedBytes) != "" {
		t.Errorf("a raw root: want it pinned with no percentage\nstdout:\n%s\nstderr:\n%s", rawRoot.out, rawRoot.errs)
	}

	if tooBig.code != 1 || !strings.Contains(tooBig.errs, "too_big") || !strings.Contains(tooBig.errs, "the root declares a DAG of") {
		t.Errorf("a root declaring more than the limit: exit %d, want 1, too_big from the root\nstdout:\n%s\nstderr:\n%s", tooBig.code, tooBig.out, tooBig.errs)
	}
}

// The progress bar shows the percentage and the time left of a DAG whose
// root declares its size, and neither of one whose root declares none.
func TestProgressBarShowsPercent(t *testing.T) {
	var out bytes.Buffer
	bar := newProgressBar(&out)
	bar.show(api.PinStatus{Status: api.StatusPinning, Info: map[string]string{"attempt": "1", "bytes": "1048876", "blocks": "5",
		"expected_bytes": "4194304", "percent": "25", "seconds_left": "75"}})
	bar.show(api.PinStatus{Status: api.StatusPinning, Info: map[string]string{"attempt": "2", "bytes": "2048", "blocks": "1"}})
	bar.done()
	frames := out.String()
	if !strings.Contains(frames, "pinning, attempt 1: 5 blocks, 25% of 4.0 MiB, 1m15s left") {
		t.Errorf("no frame shows the percentage and time left:\n%q", frames)
	}
	if !regexp.MustCompile(`pinning, attempt 2: 1 blocks \(`).MatchString(frames) {
		t.Errorf("a root without a size: want its blocks and bytes only:\n%q", frames)
	}
	if !barFrame.MatchString(frames) {
		t.Errorf("frames %q do not match what TestPinCommands reads", frames)
	}
}
