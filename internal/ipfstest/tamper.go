package ipfstest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multicodec"
	"github.com/multiformats/go-multihash"
	"github.com/multiformats/go-varint"
)

// Tamper says how a hostile server changes the CAR an honest one sends.
// Blocks are numbered from 1 in the order the honest server sends them;
// zero fields change nothing.
type Tamper struct {
	// Corrupt flips a byte of block n's data, keeping its CID.
	Corrupt int
	// Drop leaves block n out.
	Drop int
	// Duplicate sends block n twice.
	Duplicate int
	// Oversize replaces block n's data with OversizeBytes of junk.
	Oversize      int
	OversizeBytes int
	// StallAt stops before block n and holds the response open, sending
	// nothing more, until the client goes away.
	StallAt int
	// Extra appends a block that no link asks for.
	Extra bool
	// Root, if set, serves the DAG at Root whatever was asked for.
	Root cid.Cid
}

func (t Tamper) active() bool { return t != Tamper{} }

// tamperCAR copies the CARv1 in src to dst, changed as t says, flushing
// after every section so that the client sees blocks as they go.
func tamperCAR(ctx context.Context, dst io.Writer, src io.Reader, t Tamper) error {
	br := bufio.NewReader(src)
	header, err := readSection(br)
	if err != nil {
		return fmt.Errorf("tamper: read header: %w", err)
	}
	flush := func() {
		if f, ok := dst.(http.Flusher); ok {
			f.Flush()
		}
	}
	if err := writeSection(dst, header); err != nil {
		return err
	}
	flush()
	for n := 1; ; n++ {
		section, err := readSection(br)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("tamper: read block %d: %w", n, err)
		}
		if n == t.StallAt {
			<-ctx.Done()
			return ctx.Err()
		}
		cidLen, _, err := cid.CidFromBytes(section)
		if err != nil {
			return fmt.Errorf("tamper: block %d: %w", n, err)
		}
		switch n {
		case t.Drop:
			continue
		case t.Corrupt:
			section[cidLen+(len(section)-cidLen)/2] ^= 0xff
		case t.Oversize:
			junk := make([]byte, cidLen+t.OversizeBytes)
			copy(junk, section[:cidLen])
			section = junk
		}
		if err := writeSection(dst, section); err != nil {
			return err
		}
		if n == t.Duplicate {
			if err := writeSection(dst, section); err != nil {
				return err
			}
		}
		flush()
	}
	if t.Extra {
		data := []byte("a block nobody asked for")
		c, err := cid.Prefix{Version: 1, Codec: uint64(multicodec.Raw), MhType: multihash.SHA2_256, MhLength: -1}.Sum(data)
		if err != nil {
			return err
		}
		if err := writeSection(dst, append(c.Bytes(), data...)); err != nil {
			return err
		}
		flush()
	}
	if t.StallAt > 0 {
		// Asked to stall after the last block: hold the response open.
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func readSection(br *bufio.Reader) ([]byte, error) {
	n, err := varint.ReadUvarint(br)
	if err != nil {
		return nil, err
	}
	section := make([]byte, n)
	if _, err := io.ReadFull(br, section); err != nil {
		return nil, err
	}
	return section, nil
}

func writeSection(w io.Writer, section []byte) error {
	if _, err := w.Write(varint.ToUvarint(uint64(len(section)))); err != nil {
		return err
	}
	_, err := w.Write(section)
	return err
}
