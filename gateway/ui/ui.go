// Package ui is pickup's status page: the page the gateway serves at /, for
// a tenant who signs in with a token, showing its pins with their status,
// a live progress bar for pins being fetched, a pin's timeline from its
// events, and the last hour's throughput.
//
// The page is server-rendered HTML with one small script and one
// stylesheet, all embedded in the binary: nothing is fetched from anywhere
// else, so it works offline and needs no build step. The script talks to
// the Pinning Service API itself with the token as a bearer token, so a
// tenant sees through the page exactly what the API lets it see. The token
// is kept in sessionStorage only: never in a cookie (the gateway reads none,
// so no other site can act with it) nor in a URL. A strict
// Content-Security-Policy allows the page's own script and nothing else.
//
// Besides the page, the package shapes the two reads only the page needs,
// which the gateway serves under the tenant's authorization: a pin's
// timeline (TimelineOf) and the throughput chart (ThroughputOf).
//
// The package builds for GOOS=js and GOOS=wasip1 like the rest of the
// gateway; the page's browser test lives in tests/ui_test.go.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed page.html
var pageTemplate string

//go:embed static
var static embed.FS

// PollInterval is how often the page asks for the tenant's pins and the
// selected pin's timeline: often enough that a fetch is seen moving, rare
// enough that a page left open costs the API one listing a second.
const PollInterval = time.Second

// ThroughputEvery is how many polls pass between two reads of the
// throughput chart, which changes by the minute.
const ThroughputEvery = 10

// AssetPrefix is where the page's script and stylesheet are served.
const AssetPrefix = "/ui/"

// contentSecurityPolicy lets the page run its own script, style and
// requests, and nothing else: no inline script, no other origin, no
// framing, no form submitted anywhere (the forms are the script's).
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"

// Page serves the status page and its assets. It is safe for concurrent
// use.
type Page struct {
	html   asset
	assets map[string]asset
}

// asset is a file served as is, with the ETag of its content.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// contentType is the type of one of the page's files, fixed here rather
// than read from the machine's mime.types, which differ between machines.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	return "application/octet-stream"
}

func newAsset(name string, body []byte) asset {
	sum := sha256.Sum256(body)
	return asset{body: body, contentType: contentType(name), etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
}

// pageData is what the page's template is rendered with.
type pageData struct {
	Title           string
	PollMillis      int64
	ThroughputEvery int
	Script, Style   string
}

// New renders the page and loads its assets.
func New() (*Page, error) {
	p := &Page{assets: map[string]asset{}}
	err := fs.WalkDir(static, "static", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(name)
		if err != nil {
			return err
		}
		p.assets[AssetPrefix+strings.TrimPrefix(name, "static/")] = newAsset(name, b)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ui: load assets: %w", err)
	}
	t, err := template.New("page").Parse(pageTemplate)
	if err != nil {
		return nil, fmt.Errorf("ui: parse page: %w", err)
	}
	// The asset URLs carry their ETag, so that a page always loads the
	// script it was rendered with, even across a deploy.
	version := func(name string) string {
		a := p.assets[AssetPrefix+name]
		return AssetPrefix + name + "?v=" + strings.Trim(a.etag, `"`)
	}
	var buf bytes.Buffer
	err = t.Execute(&buf, pageData{Title: "pickup", PollMillis: PollInterval.Milliseconds(), ThroughputEvery: ThroughputEvery,
		Script: version("app.js"), Style: version("app.css")})
	if err != nil {
		return nil, fmt.Errorf("ui: render page: %w", err)
	}
	p.html = newAsset("index.html", buf.Bytes())
	return p, nil
}

// Has reports whether the page serves path: / or one of its assets.
func (p *Page) Has(path string) bool {
	_, ok := p.lookup(path)
	return ok
}

func (p *Page) lookup(path string) (asset, bool) {
	if path == "/" {
		return p.html, true
	}
	a, ok := p.assets[path]
	return a, ok
}

// ServeHTTP serves the page at / and its assets under AssetPrefix, to GET
// and HEAD; anything else is 404. The page holds nothing of any tenant, so
// it may be cached, as long as it is revalidated (by its ETag).
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a, ok := p.lookup(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("ETag", a.etag)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if r.URL.Path == "/" {
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
