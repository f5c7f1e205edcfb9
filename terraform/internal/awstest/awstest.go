// Package awstest holds loopback stand-ins for the parts of AWS a
// deployment of pickup talks to that cannot run here: Secrets Manager
// (GetSecretValue), EC2 (DescribeNetworkInterfaces), and an ECS task's
// metadata endpoint v4 and agent (task protection); and a Recorder, a
// proxy in front of a real S3 server that keeps what each request touched. They are hand-written
// fakes, each answering the one wire format the AWS SDK for Go (or the ECS
// agent's documented API) speaks, for what pickup's code asks and nothing
// more; S3 and PostgreSQL are real servers elsewhere (internal/s3test,
// internal/postgrestest).
//
// The deployment test (terraform/deploy_test.go) points each role at them
// with the SDK's own AWS_ENDPOINT_URL_SECRETS_MANAGER and
// AWS_ENDPOINT_URL_EC2, and ECS's own ECS_CONTAINER_METADATA_URI_V4 and
// ECS_AGENT_URI. Every request each one answers is kept, so that a test can
// check what was asked for.
package awstest

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Secret is one secret of the Secrets Manager stand-in.
type Secret struct {
	ARN   string
	Name  string
	Value string
}

// SecretsManager is a stand-in for Secrets Manager's GetSecretValue (the
// awsJson1_1 protocol: POST / with X-Amz-Target
// secretsmanager.GetSecretValue). Its methods are safe for concurrent use.
type SecretsManager struct {
	URL string

	mu      sync.Mutex
	secrets []Secret
	reads   []string // the ARN of every secret read, in order
}

// NewSecretsManager starts a stand-in holding secrets, stopped when the
// test ends.
func NewSecretsManager(t testing.TB, secrets ...Secret) *SecretsManager {
	sm := &SecretsManager{secrets: secrets}
	srv := httptest.NewServer(http.HandlerFunc(sm.serve))
	t.Cleanup(srv.Close)
	sm.URL = srv.URL
	return sm
}

// Put adds a secret, or replaces the value of the one with its ARN.
func (sm *SecretsManager) Put(s Secret) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	for i := range sm.secrets {
		if sm.secrets[i].ARN == s.ARN {
			sm.secrets[i] = s
			return
		}
	}
	sm.secrets = append(sm.secrets, s)
}

// Get finds a secret by ARN or name, as GetSecretValue's SecretId does
// (an ECS valueFrom's ":key:stage:id" suffix is not part of it).
func (sm *SecretsManager) Get(id string) (Secret, bool) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	for _, s := range sm.secrets {
		if s.ARN == id || s.Name == id {
			return s, true
		}
	}
	return Secret{}, false
}

// Secrets returns the secrets it holds now.
func (sm *SecretsManager) Secrets() []Secret {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	return append([]Secret(nil), sm.secrets...)
}

// Reads returns the ARNs of the secrets read so far, in order.
func (sm *SecretsManager) Reads() []string {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	return append([]string(nil), sm.reads...)
}

func (sm *SecretsManager) serve(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	if r.Method != http.MethodPost || target != "secretsmanager.GetSecretValue" {
		jsonError(w, http.StatusBadRequest, "UnknownOperationException", fmt.Sprintf("the stand-in answers secretsmanager.GetSecretValue only, not %s %q", r.Method, target))
		return
	}
	var in struct {
		SecretID     string `json:"SecretId"`
		VersionStage string `json:"VersionStage"`
		VersionID    string `json:"VersionId"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in); err != nil {
		jsonError(w, http.StatusBadRequest, "InvalidRequestException", err.Error())
		return
	}
	if in.VersionID != "" || (in.VersionStage != "" && in.VersionStage != "AWSCURRENT") {
		jsonError(w, http.StatusBadRequest, "InvalidRequestException", "the stand-in holds the current version only")
		return
	}
	s, ok := sm.Get(in.SecretID)
	if !ok {
		jsonError(w, http.StatusBadRequest, "ResourceNotFoundException", "Secrets Manager can't find the specified secret: "+in.SecretID)
		return
	}
	sm.mu.Lock()
	sm.reads = append(sm.reads, s.ARN)
	sm.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	json.NewEncoder(w).Encode(map[string]any{
		"ARN": s.ARN, "Name": s.Name, "SecretString": s.Value, "VersionId": "00000000-0000-0000-0000-000000000001",
		"VersionStages": []string{"AWSCURRENT"}, "CreatedDate": float64(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix()),
	})
}

func jsonError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}

// EC2 is a stand-in for EC2's DescribeNetworkInterfaces (the ec2 query
// protocol), filtered by addresses.private-ip-address: every interface has
// the public IP it is given for its private address.
type EC2 struct {
	URL string

	mu       sync.Mutex
	publicIP map[string]string
	asked    []string
}

// NewEC2 starts a stand-in whose interfaces are publicIP's keys (private
// addresses) with its values (public addresses), stopped when the test
// ends.
func NewEC2(t testing.TB, publicIP map[string]string) *EC2 {
	e := &EC2{publicIP: publicIP}
	srv := httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(srv.Close)
	e.URL = srv.URL
	return e
}

// Asked returns the private addresses asked about so far.
func (e *EC2) Asked() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.asked...)
}

type ec2Interface struct {
	ID          string `xml:"networkInterfaceId"`
	PrivateIP   string `xml:"privateIpAddress"`
	Association *struct {
		PublicIP string `xml:"publicIp"`
	} `xml:"association,omitempty"`
}

func (e *EC2) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.Form.Get("Action") != "DescribeNetworkInterfaces" {
		ec2Error(w, "InvalidAction", fmt.Sprintf("the stand-in answers DescribeNetworkInterfaces only, not %q", r.Form.Get("Action")))
		return
	}
	var wanted []string
	for i := 1; r.Form.Get(fmt.Sprintf("Filter.%d.Name", i)) != ""; i++ {
		name := r.Form.Get(fmt.Sprintf("Filter.%d.Name", i))
		if name != "addresses.private-ip-address" {
			ec2Error(w, "InvalidParameterValue", "the stand-in filters by addresses.private-ip-address only, not "+name)
			return
		}
		for j := 1; r.Form.Get(fmt.Sprintf("Filter.%d.Value.%d", i, j)) != ""; j++ {
			wanted = append(wanted, r.Form.Get(fmt.Sprintf("Filter.%d.Value.%d", i, j)))
		}
	}
	e.mu.Lock()
	e.asked = append(e.asked, wanted...)
	var found []ec2Interface
	for n, private := range wanted {
		if public, ok := e.publicIP[private]; ok {
			ni := ec2Interface{ID: fmt.Sprintf("eni-%017d", n+1), PrivateIP: private}
			ni.Association = &struct {
				PublicIP string `xml:"publicIp"`
			}{public}
			found = append(found, ni)
		}
	}
	e.mu.Unlock()
	type response struct {
		XMLName    xml.Name       `xml:"DescribeNetworkInterfacesResponse"`
		Xmlns      string         `xml:"xmlns,attr"`
		RequestID  string         `xml:"requestId"`
		Interfaces []ec2Interface `xml:"networkInterfaceSet>item"`
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	io.WriteString(w, xml.Header)
	xml.NewEncoder(w).Encode(response{Xmlns: "http://ec2.amazonaws.com/doc/2016-11-15/", RequestID: "00000000-0000-0000-0000-000000000001", Interfaces: found})
}

func ec2Error(w http.ResponseWriter, code, msg string) {
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprintf(w, "%s<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>1</RequestID></Response>", xml.Header, code, escapeXML(msg))
}

func escapeXML(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// ECSTask is a stand-in for one task's metadata endpoint v4
// (ECS_CONTAINER_METADATA_URI_V4: GET /task) and its agent's task
// protection (ECS_AGENT_URI: PUT /task-protection/v1/state).
type ECSTask struct {
	// MetadataURI and AgentURI are the values of ECS_CONTAINER_METADATA_URI_V4
	// and ECS_AGENT_URI for the task's containers.
	MetadataURI string
	AgentURI    string

	mu        sync.Mutex
	protected bool
	changes   int
}

// NewECSTask starts the endpoints of a task of family in cluster whose
// containers have privateIP on the task's network, stopped when the test
// ends.
func NewECSTask(t testing.TB, cluster, family string, containers []string, privateIP string) *ECSTask {
	task := &ECSTask{}
	arn := fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:task/%s/0123456789abcdef0123456789abcdef", cluster)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v4/task", func(w http.ResponseWriter, r *http.Request) {
		var cs []map[string]any
		for _, name := range containers {
			cs = append(cs, map[string]any{
				"Name": name, "DesiredStatus": "RUNNING", "KnownStatus": "RUNNING",
				"Networks": []map[string]any{{"NetworkMode": "awsvpc", "IPv4Addresses": []string{privateIP}}},
			})
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"Cluster": cluster, "TaskARN": arn, "Family": family, "Revision": "1",
			"DesiredStatus": "RUNNING", "KnownStatus": "RUNNING", "LaunchType": "FARGATE", "Containers": cs,
		})
	})
	mux.HandleFunc("PUT /agent/task-protection/v1/state", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			ProtectionEnabled *bool
			ExpiresInMinutes  int
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&in); err != nil || in.ProtectionEnabled == nil {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"Code": "InvalidParameterException", "Message": "ProtectionEnabled is required"}})
			return
		}
		task.mu.Lock()
		task.protected = *in.ProtectionEnabled
		task.changes++
		task.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"protection": map[string]any{"ProtectionEnabled": *in.ProtectionEnabled, "TaskArn": arn}})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	task.MetadataURI = srv.URL + "/v4"
	task.AgentURI = srv.URL + "/agent"
	return task
}

// Protection tells whether the task is protected now and how many times
// its protection was set.
func (t *ECSTask) Protection() (on bool, changes int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.protected, t.changes
}

// S3Request is one request a Recorder passed on.
type S3Request struct {
	Method   string
	Path     string // the unescaped path: /bucket or /bucket/key (path-style)
	Query    url.Values
	CopyFrom string // x-amz-copy-source, for a copy
}

// Recorder is a reverse proxy in front of an S3 server that keeps every
// request it passes on (method, path, query), so that a test can tell
// which buckets and keys a process touched. The Host header is passed on
// as the client sent it, so SigV4 signatures still verify.
type Recorder struct {
	URL string

	mu   sync.Mutex
	reqs []S3Request
}

// NewRecorder starts a proxy to target (http://host:port), stopped when
// the test ends.
func NewRecorder(t testing.TB, target string) *Recorder {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rec := &Recorder{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, S3Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), CopyFrom: r.Header.Get("X-Amz-Copy-Source")})
		rec.mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	rec.URL = srv.URL
	return rec
}

// Requests returns the requests passed on so far, in order.
func (rec *Recorder) Requests() []S3Request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]S3Request(nil), rec.reqs...)
}
