package terraform

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The Lambda, run through the real Lambda Runtime API: the Runtime
// Interface Emulator (aws-lambda-rie, built by `make lambda-rie` into
// .tools/bin) starts the bootstrap with the function's environment, and
// each request is an invocation whose event is the API Gateway HTTP API's
// payload format 2.0, as the plan's integration wires it.

// rieBinary finds the emulator: in .tools/bin (make test builds it first),
// or on PATH.
func rieBinary(t *testing.T) string {
	t.Helper()
	p := filepath.Join(repoRoot(t), ".tools", "bin", "aws-lambda-rie")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return need(t, "aws-lambda-rie", "the Lambda runs under the Runtime Interface Emulator: make lambda-rie builds it into .tools/bin")
}

// lambdaFunction is a function running under the emulator.
type lambdaFunction struct {
	invokeURL string
	cmd       *exec.Cmd
	done      chan struct{} // closed when the emulator has exited
	requests  atomic.Int64
}

// startLambda runs bootstrap (a directory's "bootstrap", the handler) under
// the emulator with env, on loopback ports of its own.
func startLambda(t *testing.T, bootstrap string, env []string, logs io.Writer) *lambdaFunction {
	t.Helper()
	api, emu := freeLoopbackAddr(t), freeLoopbackAddr(t)
	cmd := exec.Command(rieBinary(t), "--runtime-api-address", api, "--runtime-interface-emulator-address", emu, bootstrap)
	cmd.Dir = filepath.Dir(bootstrap) // /var/task on Lambda: the package's root
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start aws-lambda-rie: %v", err)
	}
	fn := &lambdaFunction{invokeURL: "http://" + emu + "/2015-03-31/functions/function/invocations", cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(fn.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-fn.done
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + emu + "/")
		if err == nil {
			resp.Body.Close()
			return fn
		}
		if time.Now().After(deadline) {
			t.Fatalf("aws-lambda-rie does not listen on %s: %v", emu, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// apiGatewayV2 is an http.RoundTripper that sends each request to the
// function as API Gateway's HTTP API does with an AWS_PROXY integration of
// payload format 2.0 on the $default route and stage, and turns the
// function's answer back into a response.
type apiGatewayV2 struct {
	fn       *lambdaFunction
	apiID    string
	routeKey string
	stage    string
}

func (g *apiGatewayV2) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	n := g.fn.requests.Add(1)
	headers := map[string]string{}
	var cookies []string
	for k, vs := range r.Header {
		if strings.EqualFold(k, "Cookie") {
			for _, v := range vs {
				cookies = append(cookies, strings.Split(v, "; ")...)
			}
			continue
		}
		headers[strings.ToLower(k)] = strings.Join(vs, ",")
	}
	headers["host"] = r.URL.Host
	if len(body) > 0 {
		headers["content-length"] = fmt.Sprint(len(body))
	}
	query := map[string]string{}
	for k, vs := range r.URL.Query() {
		query[k] = strings.Join(vs, ",")
	}
	now := time.Now().UTC()
	event := map[string]any{
		"version":        "2.0",
		"routeKey":       g.routeKey,
		"rawPath":        r.URL.EscapedPath(),
		"rawQueryString": r.URL.RawQuery,
		"headers":        headers,
		"requestContext": map[string]any{
			"accountId":    "123456789012",
			"apiId":        g.apiID,
			"domainName":   r.URL.Host,
			"domainPrefix": strings.Split(r.URL.Host, ".")[0],
			"http": map[string]any{
				"method": r.Method, "path": r.URL.Path, "protocol": "HTTP/1.1",
				"sourceIp": "127.0.0.1", "userAgent": r.UserAgent(),
			},
			"requestId": fmt.Sprintf("deploy-test-%d", n),
			"routeKey":  g.routeKey,
			"stage":     g.stage,
			"time":      now.Format("02/Jan/2006:15:04:05 -0700"),
			"timeEpoch": now.UnixMilli(),
		},
		"isBase64Encoded": false,
	}
	if len(cookies) > 0 {
		event["cookies"] = cookies
	}
	if len(query) > 0 {
		event["queryStringParameters"] = query
	}
	if len(body) > 0 {
		event["body"] = base64.StdEncoding.EncodeToString(body)
		event["isBase64Encoded"] = true
	}
	payload, err := json.Marshal(event)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, g.fn.invokeURL, bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("invoke the function: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var answer struct {
		StatusCode      int               `json:"statusCode"`
		Headers         map[string]string `json:"headers"`
		Cookies         []string          `json:"cookies"`
		Body            string            `json:"body"`
		IsBase64Encoded bool              `json:"isBase64Encoded"`
		ErrorMessage    string            `json:"errorMessage"`
		ErrorType       string            `json:"errorType"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil || answer.StatusCode == 0 {
		// API Gateway answers 500 Internal Server Error when the function
		// fails or answers something else than a response.
		return nil, fmt.Errorf("the function did not answer a response (invoke status %s): %s", resp.Status, bytes.TrimSpace(raw))
	}
	out := answer.Body
	outBytes := []byte(out)
	if answer.IsBase64Encoded {
		if outBytes, err = base64.StdEncoding.DecodeString(out); err != nil {
			return nil, fmt.Errorf("the function's body is not base64: %w", err)
		}
	}
	h := http.Header{}
	for k, v := range answer.Headers {
		h.Set(k, v)
	}
	for _, c := range answer.Cookies {
		h.Add("Set-Cookie", c)
	}
	return &http.Response{
		StatusCode: answer.StatusCode, Status: fmt.Sprintf("%d %s", answer.StatusCode, http.StatusText(answer.StatusCode)),
		Header: h, Body: io.NopCloser(bytes.NewReader(outBytes)), ContentLength: int64(len(outBytes)),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Request: r,
	}, nil
}
