package awslambda_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdaurl"
	"github.com/google/uuid"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/gateway"
	"github.com/pickup-ipfs/pickup/gateway/awslambda"
	"github.com/pickup-ipfs/pickup/gateway/internal/gatewaytest"
	"github.com/pickup-ipfs/pickup/internal/telemetry"
	"github.com/pickup-ipfs/pickup/internal/telemetry/telemetrytest"
)

// event reads a testdata event (in the shape AWS documents for Function URLs
// and HTTP APIs, payload format 2.0) and fills in its placeholders.
func event(t *testing.T, name string, vars map[string]string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for k, v := range vars {
		s = strings.ReplaceAll(s, "{{"+k+"}}", v)
	}
	if i := strings.Index(s, "{{"); i >= 0 {
		t.Fatalf("%s: placeholder left at %q", name, s[i:min(i+20, len(s))])
	}
	return []byte(s)
}

// jsonString escapes s as the inside of a JSON string.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

func newCID(t *testing.T) string {
	h, err := mh.Sum([]byte(uuid.NewString()), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.DagProtobuf, h).String()
}

func invoke(t *testing.T, h *awslambda.Handler, payload []byte) events.APIGatewayV2HTTPResponse {
	t.Helper()
	out, err := h.Invoke(context.Background(), payload)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	var res events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("decode response %s: %v", out, err)
	}
	return res
}

// The gateway on Lambda: real event documents through the real handler on
// the real log and views.
func TestEvents(t *testing.T) {
	s := gatewaytest.New(t, gateway.Config{})
	token := s.Token(t, "alice")
	var metrics, logs telemetrytest.Buffer
	// As cmd/pickup wires it: the request-id, metrics and log middleware
	// around the gateway, logging JSON through telemetry's handler.
	logger := slog.New(telemetry.NewHandler(slog.NewJSONHandler(&logs, nil)))
	gw, err := gateway.New(gateway.Config{Delegates: []string{gatewaytest.Delegate}},
		gateway.Deps{Log: s.Log, Views: s.Views, Tokens: s.Views, Checkpoints: s.Views, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	instrumented := telemetry.NewHTTP(gw, gateway.Route, nil, logger)
	h := awslambda.NewHandler(awslambda.WithMetrics(instrumented, awslambda.Config{Deployment: "test", Metrics: &metrics}))
	root := newCID(t)
	body := `{"cid":"` + root + `","name":"from lambda","meta":{"app":"lambda"}}`

	res := invoke(t, h, event(t, "function-url-post-pins.json", map[string]string{
		"TOKEN": token, "BODY": jsonString(body), "LENGTH": strconv.Itoa(len(body))}))
	if res.StatusCode != http.StatusAccepted || res.Headers["Content-Type"] != "application/json" || res.IsBase64Encoded {
		t.Fatalf("POST via Function URL: %+v", res)
	}
	var ps api.PinStatus
	if err := json.Unmarshal([]byte(res.Body), &ps); err != nil || ps.Status != "queued" || ps.Pin.CID != root || ps.Pin.Name != "from lambda" {
		t.Fatalf("POST body %s (%v)", res.Body, err)
	}

	res = invoke(t, h, event(t, "function-url-post-pins-base64.json", map[string]string{
		"TOKEN": token, "BODY64": base64.StdEncoding.EncodeToString([]byte(`{"cid":"` + newCID(t) + `","meta":{"app":"lambda"}}`))}))
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("POST with a base64 body: %+v", res)
	}

	res = invoke(t, h, event(t, "apigw-v2-get-pin.json", map[string]string{"TOKEN": token, "REQUESTID": ps.RequestID}))
	if res.StatusCode != http.StatusOK || !strings.Contains(res.Body, `"requestid":"`+ps.RequestID+`"`) || res.Headers["Cache-Control"] != "no-store" || res.Headers["X-Request-Id"] != "RxQ1xgzPoAMEVzw=" {
		t.Fatalf("GET via HTTP API: %+v", res)
	}

	res = invoke(t, h, event(t, "apigw-v2-list-pins.json", map[string]string{"TOKEN": token}))
	var list api.PinResults
	if err := json.Unmarshal([]byte(res.Body), &list); err != nil || res.StatusCode != http.StatusOK || list.Count != 2 {
		t.Fatalf("list via HTTP API: %+v (%v)", res, err)
	}

	res = invoke(t, h, event(t, "apigw-v2-cluster-post.json", map[string]string{
		"CID": root, "BASIC": base64.StdEncoding.EncodeToString([]byte("alice:" + token))}))
	if res.StatusCode != http.StatusOK || !strings.Contains(res.Body, `"cid":"`+root+`"`) || !strings.Contains(res.Body, `"type":"pin"`) {
		t.Fatalf("cluster POST via HTTP API: %+v", res)
	}

	res = invoke(t, h, event(t, "apigw-v2-unauthorized.json", nil))
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(res.Body, `"reason":"UNAUTHORIZED"`) || !strings.HasPrefix(res.Headers["Www-Authenticate"], "Bearer") {
		t.Fatalf("unauthorized: %+v", res)
	}

	// One metrics line per request, none an API error, each with its
	// latency, by deployment and by deployment and route.
	lines := metrics.Lines(t)
	if len(lines) != 6 {
		t.Fatalf("%d metrics lines, want 6", len(lines))
	}
	for _, l := range lines {
		aws := l["_aws"].(map[string]any)
		directive := aws["CloudWatchMetrics"].([]any)[0].(map[string]any)
		if directive["Namespace"] != "Pickup" || l["Deployment"] != "test" || l["Requests"] != 1.0 || l["ApiErrors"] != 0.0 || aws["Timestamp"].(float64) <= 0 {
			t.Fatalf("metrics line %v", l)
		}
		if dims := fmt.Sprint(directive["Dimensions"]); dims != "[[Deployment] [Deployment Route]]" {
			t.Fatalf("dimensions %s, want by deployment, and by deployment and route", dims)
		}
		if defs := fmt.Sprint(directive["Metrics"]); !strings.Contains(defs, "map[Name:Latency Unit:Milliseconds]") {
			t.Fatalf("metric definitions %s lack Latency in milliseconds", defs)
		}
		if ms, ok := l["Latency"].(float64); !ok || ms < 0 {
			t.Fatalf("metrics line %v: Latency %v, want a duration in milliseconds", l, l["Latency"])
		}
	}
	if lines[2]["Route"] != "/pins/{requestid}" || lines[4]["Route"] != "/pins/{cid}" || lines[5]["Status"] != 401.0 {
		t.Fatalf("metrics properties: %v", lines)
	}
	// Requests go by the event's request id (the client sent none): in the
	// answer, the metrics line and every log line of the request.
	getID := "RxQ1xgzPoAMEVzw=" // apigw-v2-get-pin.json's requestId
	if lines[2]["RequestId"] != getID {
		t.Errorf("GET's metrics line has RequestId %v, want the event's %s", lines[2]["RequestId"], getID)
	}
	logged := logs.Lines(t)
	found := map[string]bool{}
	for _, l := range logged {
		switch {
		case l["msg"] == "request" && l["request_id"] == getID && l["route"] == "/pins/{requestid}" && l["status"] == 200.0:
			found["the GET's request line"] = true
		case l["msg"] == "pin requested" && l["request_id"] == "5c3e6f1e-58a1-4c53-a0b2-0d3e2b1f9a77" && l["pin_request_id"] == ps.RequestID:
			found["the POST's pin line, with both ids"] = true
		}
	}
	for _, want := range []string{"the GET's request line", "the POST's pin line, with both ids"} {
		if !found[want] {
			t.Errorf("no log line for %s in %v", want, logged)
		}
	}

	// A failing store is an API error.
	s.StopRunner()
	s.Log.Close()
	res = invoke(t, h, event(t, "function-url-post-pins.json", map[string]string{
		"TOKEN": token, "BODY": jsonString(body), "LENGTH": strconv.Itoa(len(body))}))
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(res.Body, `"reason":"SERVICE_UNAVAILABLE"`) {
		t.Fatalf("POST on a closed log: %+v", res)
	}
	if l := metrics.Lines(t); l[len(l)-1]["ApiErrors"] != 1.0 {
		t.Fatalf("last metrics line %v, want an API error", l[len(l)-1])
	}
}

// A Function URL in RESPONSE_STREAM mode goes through lambdaurl.
func TestStreamingFunctionURL(t *testing.T) {
	s := gatewaytest.New(t, gateway.Config{})
	token := s.Token(t, "alice")
	body := `{"cid":"` + newCID(t) + `"}`
	var req events.LambdaFunctionURLRequest
	if err := json.Unmarshal(event(t, "function-url-post-pins.json", map[string]string{
		"TOKEN": token, "BODY": jsonString(body), "LENGTH": strconv.Itoa(len(body))}), &req); err != nil {
		t.Fatal(err)
	}
	res, err := lambdaurl.Wrap(awslambda.WithMetrics(s.Handler, awslambda.Config{}))(context.Background(), &req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusAccepted || res.Headers["Content-Type"] != "application/json" || !bytes.Contains(got, []byte(`"status":"queued"`)) {
		t.Fatalf("streamed answer %d %v %s", res.StatusCode, res.Headers, got)
	}
}

func TestRefusesOtherEvents(t *testing.T) {
	h := awslambda.NewHandler(http.NotFoundHandler())
	for _, payload := range []string{`{"version":"1.0","httpMethod":"GET","path":"/pins"}`, `[]`, `{"Records":[]}`} {
		if _, err := h.Invoke(context.Background(), []byte(payload)); err == nil {
			t.Errorf("Invoke(%s) succeeded, want a refusal", payload)
		}
	}
}
