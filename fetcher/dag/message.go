package dag

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/pickup-ipfs/pickup/internal/publicnet/publichttp"
	"github.com/pickup-ipfs/pickup/pin"
)

// What reaches a pin's failure message, and what stays in the logs: see
// Failure.

// Phrase names the kind of failure err is in words fit for the tenant,
// never with err's own text: a connection refused, a timeout, a redirect
// refused, and so on.
func Phrase(err error) string {
	var (
		dns    *net.DNSError
		ne     net.Error
		cert   *tls.CertificateVerificationError
		record tls.RecordHeaderError
		alert  tls.AlertError
	)
	switch {
	case err == nil:
		return "no error"
	case errors.Is(err, publichttp.ErrNotPublic):
		return "refused to reach an address that is not public"
	case errors.Is(err, publichttp.ErrRedirect):
		return "refused to follow a redirect (too many, or not http)"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &dns):
		return "the name did not resolve"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to the host"
	case errors.As(err, &cert), errors.As(err, &record), errors.As(err, &alert):
		return "TLS failed"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the connection closed early"
	case errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	}
	return "the request failed"
}

// StatusText names an HTTP answer by its code and the standard text for it,
// never the reason phrase the remote sent ("500 Internal Server Error").
func StatusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return strconv.Itoa(code) + " " + t
	}
	return strconv.Itoa(code)
}

// FailRequest is the *Failure of a request that got no answer (sources
// failed): what went wrong as a Phrase, the error's own text as Detail.
func FailRequest(what string, err error) error {
	return FailDetail(pin.ReasonSourcesFailed, err.Error(), "%s: %s", what, Phrase(err))
}

// phrased is an error whose text may quote a remote, shown as a phrase: its
// Error is the phrase, and the original stays in the chain for errors.Is
// and for the logs.
type phrased struct {
	phrase string
	err    error
}

func (p *phrased) Error() string { return p.phrase }
func (p *phrased) Unwrap() error { return p.err }

// tenantSafe returns err if it is a *Failure (whose text sources keep to
// their own words), and otherwise err behind its Phrase.
func tenantSafe(err error) error {
	if _, ok := errors.AsType[*Failure](err); ok || err == nil {
		return err
	}
	var p *phrased
	if errors.As(err, &p) {
		return err
	}
	return &phrased{phrase: Phrase(err), err: err}
}

// asFailure turns what a try ended with into the source's *Failure, its
// message fit for the tenant and its details kept for the logs.
func asFailure(err error, source string) *Failure {
	if inner, ok := errors.AsType[*Failure](err); ok {
		return &Failure{Reason: inner.Reason, Source: source, Err: inner.Err, Detail: inner.Detail}
	}
	return &Failure{Reason: pin.ReasonSourcesFailed, Source: source, Err: tenantSafe(err)}
}

// maxLogDetail bounds what of a remote's words a log line carries.
const maxLogDetail = 512

// details gathers, for the logs, what err's chain kept out of its message:
// every Failure's Detail and the text behind every phrase, truncated to
// maxLogDetail bytes and quoted, so that a control character or a
// terminal escape reaches no one's terminal through a log.
func details(err error) string {
	var parts []string
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
			return
		case *Failure:
			if e.Detail != "" {
				parts = append(parts, e.Detail)
			}
		case *phrased:
			if _, ok := errors.AsType[*Failure](e.err); !ok {
				parts = append(parts, e.err.Error())
				return
			}
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	if len(parts) == 0 {
		return ""
	}
	s := strings.Join(parts, "; ")
	if len(s) > maxLogDetail {
		cut := maxLogDetail
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + fmt.Sprintf("... (%d bytes)", len(s))
	}
	return strconv.Quote(s)
}
