package ipni

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"

	"github.com/ipfs/go-cid"
	headschema "github.com/ipni/go-libipni/dagsync/ipnisync/head"
	"github.com/multiformats/go-multihash"
)

// HandlerPath is where Handler expects to be mounted: the ipnisync
// protocol's path, which indexers append to the publisher's HTTP address.
const HandlerPath = "/ipni/v1/ad/"

// ErrNotFound: no ad or entry chunk of the chain has the CID asked for
// (or its CAR's index object is gone: the CAR was deleted).
var ErrNotFound = errors.New("not in the advertisement chain")

// Handler serves the chain as go-libipni's ipnisync publisher does (the
// protocol storetheindex's HTTP sync reads): GET …/ipni/v1/ad/head is the
// head, signed by the publisher's key (204 before the first ad); GET
// …/ipni/v1/ad/{cid} is the dag-json of an ad or an entry chunk (404 for
// any other CID). It reads the chain as this process has folded it, and
// rebuilds an entry chunk from its CAR's index object, checked against
// the chunk's CID before it is sent. Until Run has read the chain, every
// request is answered 503 (Retry-After: 1).
func (p *Publisher) Handler() http.Handler { return http.HandlerFunc(p.serveHTTP) }

func (p *Publisher) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	dir, ask := path.Split(r.URL.Path)
	if !strings.HasSuffix(dir, HandlerPath) {
		http.NotFound(w, r)
		return
	}
	if !p.ready.Load() {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "the advertisement chain is being read", http.StatusServiceUnavailable)
		return
	}
	var body []byte
	if ask == "head" {
		head := p.chain.tip().head
		if !head.Defined() {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		signed, err := headschema.NewSignedHead(head, "", p.cfg.Key)
		if err == nil {
			body, err = signed.Encode()
		}
		if err != nil {
			p.logger.ErrorContext(r.Context(), "signing the head failed", "err", err)
			http.Error(w, "cannot sign the head", http.StatusInternalServerError)
			return
		}
	} else {
		c, err := cid.Parse(ask)
		if err != nil {
			http.Error(w, "not a CID", http.StatusBadRequest)
			return
		}
		body, err = p.Block(r.Context(), c)
		switch {
		case errors.Is(err, ErrNotFound):
			http.Error(w, "cid not found", http.StatusNotFound)
			return
		case err != nil:
			p.logger.ErrorContext(r.Context(), "serving from the chain failed", "cid", c, "err", err)
			http.Error(w, "unable to load data for cid", http.StatusInternalServerError)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}

// Block returns the dag-json bytes of an ad or entry chunk of the chain by
// its CID: ErrNotFound for any other CID, or a chunk whose CAR's index
// object is gone; an error if the bytes rebuilt do not hash to c.
func (p *Publisher) Block(ctx context.Context, c cid.Cid) ([]byte, error) {
	if rev, ok := p.chain.ad(c); ok {
		ad, err := read(ctx, p.d.Log, rev)
		if err != nil {
			return nil, err
		}
		b, got, err := adBytes(ad)
		if err != nil {
			return nil, err
		}
		if !got.Equals(c) {
			return nil, fmt.Errorf("ad %s rebuilt as %s", c, got)
		}
		return b, nil
	}
	ref, ok := p.chain.chunk(c)
	if !ok {
		return nil, fmt.Errorf("%s: %w", c, ErrNotFound)
	}
	ad, mhs, err := p.cachedMultihashes(ctx, ref.rev)
	if err != nil {
		if p.d.IsNotFound(err) {
			return nil, fmt.Errorf("%s: the index object of CAR %s: %w", c, ad.CarCID, ErrNotFound)
		}
		return nil, err
	}
	next := cid.Undef
	if ref.index+1 < len(ad.Chunks) {
		if next, err = cid.Parse(ad.Chunks[ref.index+1]); err != nil {
			return nil, err
		}
	}
	b, got, err := chunkOf(mhs, ad.ChunkSize, ref.index, next)
	if err != nil {
		return nil, err
	}
	if !got.Equals(c) {
		return nil, fmt.Errorf("entry chunk %s of CAR %s rebuilt as %s: the index object changed", c, ad.CarCID, got)
	}
	return bytes.Clone(b), nil
}

// cachedMultihashes returns the ad at revision rev and the multihashes
// of its CAR, read once for the chunks fetched one after another. The
// ad is returned with an error too, when it was read.
func (p *Publisher) cachedMultihashes(ctx context.Context, rev uint64) (Advertised, []multihash.Multihash, error) {
	p.cache.Lock()
	defer p.cache.Unlock()
	if p.cache.mhs != nil && p.cache.rev == rev {
		return p.cache.ad, p.cache.mhs, nil
	}
	ad, err := read(ctx, p.d.Log, rev)
	if err != nil {
		return ad, nil, err
	}
	mhs, err := multihashes(ctx, p.d.Objects, indexObject{key: ad.Index, bytes: ad.IndexBytes, sha256: ad.IndexSHA256, carBytes: ad.CarBytes})
	if err != nil {
		return ad, nil, err
	}
	if len(mhs) != ad.Multihashes || ad.ChunkSize <= 0 || (len(mhs)+ad.ChunkSize-1)/ad.ChunkSize != len(ad.Chunks) {
		return ad, nil, fmt.Errorf("the index object of CAR %s names %d blocks, its ad %d in %d chunks", ad.CarCID, len(mhs), ad.Multihashes, len(ad.Chunks))
	}
	p.cache.rev, p.cache.ad, p.cache.mhs = rev, ad, mhs
	return ad, mhs, nil
}
