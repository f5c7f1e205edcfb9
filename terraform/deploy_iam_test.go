package terraform

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/pickup-ipfs/pickup/internal/awsconfig"
	"github.com/pickup-ipfs/pickup/terraform/internal/awstest"
)

// IAM from the code: a small evaluator of IAM policy documents, enough for
// the policies the deployment writes (jsonencode'd, identity-based): Allow
// and Deny statements, Action and NotAction, Resource and NotResource, with
// IAM's wildcards * and ?. A statement with a Condition is taken as never
// allowing and always denying: the evaluator cannot tell what a condition
// holds at call time, so it takes the answer that cannot pass a missing
// permission.

type iamStatement struct {
	Sid         string
	Effect      string
	Action      []string
	NotAction   []string
	Resource    []string
	NotResource []string
	Condition   bool
}

type iamPolicy struct {
	name       string // where it comes from, for messages
	statements []iamStatement
}

// parsePolicy reads a policy document's JSON.
func parsePolicy(name, doc string) (iamPolicy, error) {
	var raw struct {
		Statement json.RawMessage
	}
	if err := json.Unmarshal([]byte(doc), &raw); err != nil {
		return iamPolicy{}, fmt.Errorf("%s: %w", name, err)
	}
	var list []map[string]json.RawMessage
	if err := json.Unmarshal(raw.Statement, &list); err != nil {
		var one map[string]json.RawMessage
		if err := json.Unmarshal(raw.Statement, &one); err != nil {
			return iamPolicy{}, fmt.Errorf("%s: Statement is neither a statement nor a list of them", name)
		}
		list = []map[string]json.RawMessage{one}
	}
	p := iamPolicy{name: name}
	for i, m := range list {
		var s iamStatement
		strs := func(key string) ([]string, error) {
			v, ok := m[key]
			if !ok {
				return nil, nil
			}
			var one string
			if json.Unmarshal(v, &one) == nil {
				return []string{one}, nil
			}
			var many []string
			if err := json.Unmarshal(v, &many); err != nil {
				return nil, fmt.Errorf("%s: statement %d: %s: %w", name, i, key, err)
			}
			return many, nil
		}
		var err error
		for key, dst := range map[string]*[]string{"Action": &s.Action, "NotAction": &s.NotAction, "Resource": &s.Resource, "NotResource": &s.NotResource} {
			if *dst, err = strs(key); err != nil {
				return iamPolicy{}, err
			}
		}
		if v, ok := m["Effect"]; !ok || json.Unmarshal(v, &s.Effect) != nil || (s.Effect != "Allow" && s.Effect != "Deny") {
			return iamPolicy{}, fmt.Errorf("%s: statement %d: Effect must be Allow or Deny", name, i)
		}
		if v, ok := m["Sid"]; ok {
			json.Unmarshal(v, &s.Sid)
		}
		if _, ok := m["Condition"]; ok {
			s.Condition = true
		}
		p.statements = append(p.statements, s)
	}
	return p, nil
}

// iamMatch reports whether value matches pattern, with * for any run of
// characters and ? for any one.
func iamMatch(pattern, value string) bool {
	if pattern == "" {
		return value == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(value); i++ {
			if iamMatch(pattern[1:], value[i:]) {
				return true
			}
		}
		return false
	case '?':
		return value != "" && iamMatch(pattern[1:], value[1:])
	}
	return value != "" && pattern[0] == value[0] && iamMatch(pattern[1:], value[1:])
}

func anyMatch(patterns []string, value string, fold bool) bool {
	for _, p := range patterns {
		if fold && iamMatch(strings.ToLower(p), strings.ToLower(value)) || !fold && iamMatch(p, value) {
			return true
		}
	}
	return false
}

// matches reports whether the statement applies to action on resource.
func (s iamStatement) matches(action, resource string) bool {
	// Actions are case-insensitive, resources are not.
	if s.Action != nil && !anyMatch(s.Action, action, true) || s.NotAction != nil && anyMatch(s.NotAction, action, true) {
		return false
	}
	if s.Action == nil && s.NotAction == nil {
		return false
	}
	if s.Resource != nil && !anyMatch(s.Resource, resource, false) || s.NotResource != nil && anyMatch(s.NotResource, resource, false) {
		return false
	}
	return s.Resource != nil || s.NotResource != nil
}

// allows evaluates action on resource against a role's policies: allowed
// if a statement allows it and none denies it. why names the deciding
// statement, or says none allows it.
func allows(policies []iamPolicy, action, resource string) (ok bool, why string) {
	for _, p := range policies {
		for _, s := range p.statements {
			// A Deny's condition is taken to hold.
			if s.Effect == "Deny" && s.matches(action, resource) {
				return false, fmt.Sprintf("denied by %s statement %q", p.name, s.Sid)
			}
		}
	}
	for _, p := range policies {
		for _, s := range p.statements {
			if s.Effect == "Allow" && !s.Condition && s.matches(action, resource) {
				return true, fmt.Sprintf("allowed by %s statement %q", p.name, s.Sid)
			}
		}
	}
	var names []string
	for _, p := range policies {
		names = append(names, p.name)
	}
	return false, fmt.Sprintf("no statement of %q allows it", names)
}

// TestIAMEvaluator checks the evaluator on hand-written policies.
func TestIAMEvaluator(t *testing.T) {
	p, err := parsePolicy("p", `{"Version":"2012-10-17","Statement":[
		{"Sid":"Objects","Effect":"Allow","Action":["s3:GetObject","s3:Put*"],"Resource":"arn:aws:s3:::b/staging/*"},
		{"Sid":"Bucket","Effect":"Allow","Action":"s3:ListBucket","Resource":["arn:aws:s3:::b"]},
		{"Sid":"Secret","Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"arn:aws:secretsmanager:us-east-1:1:secret:app-??????"},
		{"Sid":"NoDelete","Effect":"Deny","Action":"s3:PutObject","Resource":"arn:aws:s3:::b/staging/locked/*"},
		{"Sid":"Conditional","Effect":"Allow","Action":"sns:Publish","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}
	]}`)
	if err != nil {
		t.Fatal(err)
	}
	one, err := parsePolicy("one", `{"Statement":{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}}`)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		policies         []iamPolicy
		action, resource string
		want             bool
	}{
		{[]iamPolicy{p}, "s3:GetObject", "arn:aws:s3:::b/staging/x/y.json", true},
		{[]iamPolicy{p}, "S3:getobject", "arn:aws:s3:::b/staging/x", true},         // actions ignore case
		{[]iamPolicy{p}, "s3:GetObject", "arn:aws:s3:::b/Staging/x", false},        // resources do not
		{[]iamPolicy{p}, "s3:PutObjectTagging", "arn:aws:s3:::b/staging/x", true},  // s3:Put*
		{[]iamPolicy{p}, "s3:GetObject", "arn:aws:s3:::b/carpark/x", false},        // another prefix
		{[]iamPolicy{p}, "s3:GetObject", "arn:aws:s3:::b", false},                  // the bucket is no object
		{[]iamPolicy{p}, "s3:ListBucket", "arn:aws:s3:::b", true},                  //
		{[]iamPolicy{p}, "s3:ListBucket", "arn:aws:s3:::b2", false},                // another bucket
		{[]iamPolicy{p}, "s3:PutObject", "arn:aws:s3:::b/staging/locked/k", false}, // denied
		{[]iamPolicy{p}, "secretsmanager:GetSecretValue", "arn:aws:secretsmanager:us-east-1:1:secret:app-AbCdEf", true},
		{[]iamPolicy{p}, "secretsmanager:GetSecretValue", "arn:aws:secretsmanager:us-east-1:1:secret:app-AbCdE", false}, // ? is one character
		{[]iamPolicy{p}, "sns:Publish", "arn:aws:sns:us-east-1:1:t", false},                                             // conditions never allow
		{[]iamPolicy{one}, "s3:GetObject", "arn:aws:s3:::b/x", true},
		{[]iamPolicy{one}, "iam:PassRole", "arn:aws:iam::1:role/r", false}, // NotAction
		{[]iamPolicy{one, p}, "s3:PutObject", "arn:aws:s3:::b/staging/locked/k", false},
		{nil, "s3:GetObject", "arn:aws:s3:::b/x", false},
	} {
		if got, why := allows(tc.policies, tc.action, tc.resource); got != tc.want {
			t.Errorf("%s on %s: %v (%s), want %v", tc.action, tc.resource, got, why, tc.want)
		}
	}
	if _, err := parsePolicy("bad", `{"Statement":[{"Effect":"Maybe","Action":"s3:*","Resource":"*"}]}`); err == nil {
		t.Errorf("an Effect of Maybe was accepted")
	}
}

// rolePolicies returns the policy documents of the IAM role whose ARN is
// arn in the plan: its inline policies (aws_iam_role_policy, inline_policy
// blocks) and the customer managed policies attached to it
// (aws_iam_role_policy_attachment, managed_policy_arns). An AWS managed
// policy cannot be read here: the test fails naming it.
func rolePolicies(t *testing.T, d *deployment, arn string) []iamPolicy {
	t.Helper()
	role, ok := d.byAttr("aws_iam_role", "arn", arn)
	if !ok {
		t.Fatalf("envs/%s: no aws_iam_role with ARN %q", d.env, arn)
	}
	name := role.str("name")
	var out []iamPolicy
	add := func(where, doc string) {
		p, err := parsePolicy(where, doc)
		if err != nil {
			t.Fatalf("envs/%s: %v", d.env, err)
		}
		out = append(out, p)
	}
	for _, rp := range d.all("aws_iam_role_policy") {
		if r := rp.str("role"); r == name || r == role.str("id") {
			add(rp.Address, rp.str("policy"))
		}
	}
	for _, ip := range role.list("inline_policy") {
		if m, ok := ip.(map[string]any); ok {
			if doc, _ := m["policy"].(string); doc != "" {
				add(role.Address+" inline_policy", doc)
			}
		}
	}
	var attached []string
	for _, a := range d.all("aws_iam_role_policy_attachment") {
		if a.str("role") == name {
			attached = append(attached, a.str("policy_arn"))
		}
	}
	for _, m := range role.list("managed_policy_arns") {
		if s, ok := m.(string); ok {
			attached = append(attached, s)
		}
	}
	for _, pa := range attached {
		pol, ok := d.byAttr("aws_iam_policy", "arn", pa)
		if !ok {
			t.Fatalf("envs/%s: role %s has policy %s attached, which is not in the plan (an AWS managed policy cannot be checked here)", d.env, name, pa)
		}
		add(pol.Address, pol.str("policy"))
	}
	return out
}

// secretResource is the ARN an ECS `secrets` valueFrom reads: a Secrets
// Manager ARN without the JSON key, version stage and version id suffix
// (arn:aws:secretsmanager:region:account:secret:name-XXXXXX[:key:stage:id]),
// with the IAM action that reads it.
func secretResource(valueFrom string) (action, arn string) {
	parts := strings.Split(valueFrom, ":")
	if len(parts) >= 7 && parts[2] == "secretsmanager" {
		return "secretsmanager:GetSecretValue", strings.Join(parts[:7], ":")
	}
	if len(parts) >= 6 && parts[2] == "ssm" {
		return "ssm:GetParameters", valueFrom
	}
	return "", valueFrom
}

// TestIAMFromCode evaluates each role's policies in the plans of envs/dev
// and envs/prod against every call of its table (internal/awsconfig), on
// the resources its wiring names, and each ECS execution role against the
// secrets its task's containers are given; and once more for dev with the
// projector notifying an SNS topic (notify_on_pinned), the one call the
// defaults do not wire, with EventStoreDB as the event log (eventlog=esdb:
// its connection string injected, no events-setup), and with private
// fetchers and static delegates.
func TestIAMFromCode(t *testing.T) {
	for _, v := range []struct {
		env   string
		extra []string
	}{
		{"dev", nil}, {"prod", nil},
		{"dev", []string{"notify_on_pinned=true"}},
		{"dev", []string{"eventlog=esdb"}},
		{"dev", []string{"fetchers_public=false", `delegates=["/ip4/203.0.113.7/tcp/4001/p2p/12D3KooWR3DeCKahEqXtP8KvuG3XBeLZTU55yktXSmy8g4Phh6BV"]`}},
	} {
		env := v.env
		t.Run(strings.Join(append([]string{env}, v.extra...), ","), func(t *testing.T) {
			t.Parallel()
			d := planFor(t, env, v.extra...)
			roles := wiredRoles(t, d)
			seen := map[string]bool{}
			for _, w := range roles {
				seen[w.role] = true
				t.Run(w.where, func(t *testing.T) {
					checkRolePolicies(t, d, w)
				})
			}
			want := []string{awsconfig.RoleGateway, awsconfig.RoleFetcher, awsconfig.RoleProjector, awsconfig.RoleViewsSetup, awsconfig.RoleServe}
			if !strings.Contains(strings.Join(v.extra, ","), "eventlog=esdb") {
				want = append(want, awsconfig.RoleEventsSetup)
			}
			for _, r := range want {
				if !seen[r] {
					t.Errorf("envs/%s wires no %s (a container or function whose command runs it)", env, r)
				}
			}
			for _, w := range roles {
				if w.role == awsconfig.RoleServe {
					checkReadOnly(t, d, w, roles)
					checkInjectedOnly(t, d, w)
				}
			}
			checkUploadsArea(t, d, roles)
			if strings.HasPrefix(strings.Join(v.extra, ","), "notify_on_pinned") {
				wired := false
				for _, w := range roles {
					wired = wired || w.role == awsconfig.RoleProjector && w.env["PICKUP_NOTIFY_TOPIC_ARN"] != ""
				}
				if !wired {
					t.Errorf("with %q the projector is given no PICKUP_NOTIFY_TOPIC_ARN", v.extra)
				}
			}
		})
	}
}

// checkReadOnly checks that a role which only reads the carpark (the
// serving role) can do nothing else to S3: no write, delete, abort or tag
// of a carpark object, nothing in staging (the buckets as the fetcher is
// given them), and no S3 action on every resource.
func checkReadOnly(t *testing.T, d *deployment, w wiredRole, roles []wiredRole) {
	t.Helper()
	policies := rolePolicies(t, d, w.roleARN)
	var staging, carpark string
	for _, f := range roles {
		if f.role == awsconfig.RoleFetcher {
			staging, carpark = f.env["PICKUP_STAGING_BUCKET"], f.env["PICKUP_CARPARK_BUCKET"]
		}
	}
	if staging == "" || carpark == "" || w.env["PICKUP_CARPARK_BUCKET"] != carpark {
		t.Fatalf("%s: carpark %q, the fetcher's carpark %q and staging %q: want the fetcher's carpark, and a staging bucket to check against", w.where, w.env["PICKUP_CARPARK_BUCKET"], carpark, staging)
	}
	if _, set := w.env["PICKUP_STAGING_BUCKET"]; set {
		t.Errorf("%s is given PICKUP_STAGING_BUCKET: it has no business in staging", w.where)
	}
	object := "arn:aws:s3:::" + carpark + "/bafyexample/bafyexample.car"
	for _, action := range []string{"s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:AbortMultipartUpload", "s3:PutObjectTagging", "s3:PutObjectAcl", "s3:RestoreObject"} {
		if ok, why := allows(policies, action, object); ok {
			t.Errorf("%s's role may %s on %s (%s): it only reads the carpark", w.where, action, object, why)
		}
	}
	for _, c := range []struct{ action, resource string }{
		{"s3:GetObject", "arn:aws:s3:::" + staging + "/staging/request-1/attempt-1.json"},
		{"s3:ListBucket", "arn:aws:s3:::" + staging},
		{"s3:PutBucketPolicy", "arn:aws:s3:::" + carpark},
		{"s3:DeleteBucket", "arn:aws:s3:::" + carpark},
		{"s3:GetObject", "*"},
	} {
		if ok, why := allows(policies, c.action, c.resource); ok {
			t.Errorf("%s's role may %s on %s (%s): it only reads the carpark", w.where, c.action, c.resource, why)
		}
	}
}

// checkUploadsArea checks the uploads area's two sides: the gateway and
// every fetcher are given the same bucket and prefix; the gateway's role
// may put and delete CAR uploads there (its table's calls, checked by
// checkRolePolicies) and nothing else of S3: no read of an upload, no key
// outside the uploads prefix (staged markers, CARs), no bucket action,
// nothing on "*"; the fetchers' roles, which read, delete and sweep the
// uploads, may not write there.
func checkUploadsArea(t *testing.T, d *deployment, roles []wiredRole) {
	t.Helper()
	var gateway *wiredRole
	var fetchers []wiredRole
	for i, w := range roles {
		switch w.role {
		case awsconfig.RoleGateway:
			gateway = &roles[i]
		case awsconfig.RoleFetcher:
			fetchers = append(fetchers, w)
		}
	}
	if gateway == nil || len(fetchers) == 0 {
		t.Fatalf("the plan wires the gateway: %v, fetchers: %d; want both sides of the uploads area", gateway != nil, len(fetchers))
	}
	bucket, prefix := gateway.env["PICKUP_UPLOADS_BUCKET"], gateway.env["PICKUP_UPLOADS_PREFIX"]
	if bucket == "" || prefix == "" {
		t.Fatalf("%s is given no uploads area (PICKUP_UPLOADS_BUCKET %q, PICKUP_UPLOADS_PREFIX %q)", gateway.where, bucket, prefix)
	}
	upload := "arn:aws:s3:::" + bucket + "/" + prefix + "0b6f7c3e-2d5a-4c1b-9e8f-7a6b5c4d3e2f.1a2b3c4d.car"
	policies := rolePolicies(t, d, gateway.roleARN)
	for _, f := range fetchers {
		if f.env["PICKUP_UPLOADS_BUCKET"] != bucket || f.env["PICKUP_UPLOADS_PREFIX"] != prefix {
			t.Errorf("%s's uploads area (%q, %q) is not the gateway's (%q, %q): the fetchers could not read what it receives", f.where, f.env["PICKUP_UPLOADS_BUCKET"], f.env["PICKUP_UPLOADS_PREFIX"], bucket, prefix)
		}
		denied := []struct{ action, resource string }{
			{"s3:GetObject", "arn:aws:s3:::" + f.env["PICKUP_STAGING_BUCKET"] + "/" + f.env["PICKUP_STAGING_PREFIX"] + "request-1/attempt-1.json"},
			{"s3:PutObject", "arn:aws:s3:::" + f.env["PICKUP_STAGING_BUCKET"] + "/" + f.env["PICKUP_STAGING_PREFIX"] + "request-1/attempt-1.json"},
			{"s3:PutObject", "arn:aws:s3:::" + f.env["PICKUP_CARPARK_BUCKET"] + "/bafyexample/bafyexample.car"},
			{"s3:GetObject", "arn:aws:s3:::" + f.env["PICKUP_CARPARK_BUCKET"] + "/bafyexample/bafyexample.car"},
			{"s3:DeleteObject", "arn:aws:s3:::" + f.env["PICKUP_CARPARK_BUCKET"] + "/bafyexample/bafyexample.car"},
		}
		for _, c := range denied {
			if ok, why := allows(policies, c.action, c.resource); ok {
				t.Errorf("%s's role may %s on %s (%s): it writes CAR uploads and nothing else of S3", gateway.where, c.action, c.resource, why)
			}
		}
		if ok, why := allows(rolePolicies(t, d, f.roleARN), "s3:PutObject", upload); ok {
			t.Errorf("%s's role may s3:PutObject on %s (%s): the fetchers read, delete and sweep CAR uploads, never write there", f.where, upload, why)
		}
	}
	for _, c := range []struct{ action, resource string }{
		{"s3:GetObject", upload},
		{"s3:PutObject", "arn:aws:s3:::" + bucket + "/elsewhere/k.car"},
		{"s3:ListBucket", "arn:aws:s3:::" + bucket},
		{"s3:ListBucketMultipartUploads", "arn:aws:s3:::" + bucket},
		{"s3:PutBucketPolicy", "arn:aws:s3:::" + bucket},
		{"s3:PutObject", "*"},
		{"s3:GetObject", "*"},
	} {
		if ok, why := allows(policies, c.action, c.resource); ok {
			t.Errorf("%s's role may %s on %s (%s): it writes CAR uploads and nothing else of S3", gateway.where, c.action, c.resource, why)
		}
	}
}

// checkInjectedOnly checks that what ECS injects into a container (its
// `secrets`: for the serving role its libp2p key) is read by its execution
// role alone: the process's own role may not read it, so that nothing the
// process runs can fetch the key again, or another's.
func checkInjectedOnly(t *testing.T, d *deployment, w wiredRole) {
	t.Helper()
	if len(w.secrets) == 0 {
		t.Errorf("%s is given no secret through ECS: the serve peer's key (PICKUP_SERVE_LIBP2P_KEY) must be", w.where)
	}
	policies := rolePolicies(t, d, w.roleARN)
	for _, s := range w.secrets {
		action, arn := secretResource(s.ValueFrom)
		if ok, why := allows(policies, action, arn); ok {
			t.Errorf("%s's task role may %s on %s, the secret ECS injects as %s (%s): only its execution role may", w.where, action, arn, s.Name, why)
		}
	}
}

// checkRolePolicies checks one wired role's IAM: the calls of its table on
// the resources its settings name, and its secrets through the execution
// role.
func checkRolePolicies(t *testing.T, d *deployment, w wiredRole) {
	policies := rolePolicies(t, d, w.roleARN)
	setting := func(name string) string { return w.env[name] }
	checked := 0
	for _, c := range awsconfig.Calls(w.role) {
		if c.When != "" && w.env[c.When] == "" {
			t.Logf("%s: not wired (%s unset), cannot be called", c.Operation, c.When)
			continue
		}
		key := "bafyexample/bafyexample.car"
		switch {
		case strings.HasSuffix(string(c.Resource), ":staging"):
			key = "request-1/attempt-1.json"
		case strings.HasSuffix(string(c.Resource), ":uploads"):
			key = "0b6f7c3e-2d5a-4c1b-9e8f-7a6b5c4d3e2f.1a2b3c4d.car"
		}
		arn, ok, err := c.Resource.ARN(setting, key)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Logf("%s on %s: not wired (%s), cannot be called", c.Operation, c.Resource, c.Why)
			continue
		}
		checked++
		if ok, why := allows(policies, c.Action, arn); !ok {
			t.Errorf("%s needs %s on %s (%s; %s): %s", c.Operation, c.Action, arn, c.Resource, c.Why, why)
		}
	}
	t.Logf("%d calls of the %s table allowed by %s", checked, w.role, w.roleARN)
	if w.executionRoleARN == "" {
		return
	}
	exec := rolePolicies(t, d, w.executionRoleARN)
	for _, s := range w.secrets {
		action, arn := secretResource(s.ValueFrom)
		if action == "" {
			t.Errorf("secret %s: valueFrom %q is neither a Secrets Manager secret nor an SSM parameter", s.Name, s.ValueFrom)
			continue
		}
		if ok, why := allows(exec, action, arn); !ok {
			t.Errorf("secret %s (%s): the execution role %s cannot %s on %s: %s", s.Name, s.ValueFrom, w.executionRoleARN, action, arn, why)
		}
	}
}

// sortedKeys lists a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// s3Action is the IAM action and resource of one path-style S3 request, as
// S3 authorizes it (docs: "Actions, resources, and condition keys for
// Amazon S3"). A HEAD or GET of an object needs s3:GetObject; the parts of
// a multipart upload, its creation and completion need s3:PutObject.
func s3Action(req awstest.S3Request) (action, resource string, err error) {
	bucket, key, _ := strings.Cut(strings.TrimPrefix(req.Path, "/"), "/")
	if bucket == "" {
		return "", "", fmt.Errorf("%s %s: no bucket (ListBuckets?)", req.Method, req.Path)
	}
	has := func(q string) bool { _, ok := req.Query[q]; return ok }
	if key == "" {
		res := "arn:aws:s3:::" + bucket
		switch {
		case req.Method == http.MethodGet && has("uploads"):
			return "s3:ListBucketMultipartUploads", res, nil
		case req.Method == http.MethodGet && (has("list-type") || len(req.Query) == 0 || has("prefix") || has("delimiter")),
			req.Method == http.MethodHead:
			return "s3:ListBucket", res, nil
		}
		return "", "", fmt.Errorf("%s %s?%s: a bucket request the test does not map", req.Method, req.Path, req.Query.Encode())
	}
	res := "arn:aws:s3:::" + bucket + "/" + key
	switch req.Method {
	case http.MethodHead:
		return "s3:GetObject", res, nil
	case http.MethodGet:
		switch {
		case has("uploadId"):
			return "s3:ListMultipartUploadParts", res, nil
		case has("tagging"):
			return "s3:GetObjectTagging", res, nil
		}
		return "s3:GetObject", res, nil
	case http.MethodPut:
		switch {
		case has("tagging"):
			return "s3:PutObjectTagging", res, nil
		case req.CopyFrom != "":
			return "", "", fmt.Errorf("PUT %s: a copy (from %s): the test does not map it", req.Path, req.CopyFrom)
		}
		return "s3:PutObject", res, nil // a PUT, or a part of an upload
	case http.MethodPost:
		if has("uploads") || has("uploadId") {
			return "s3:PutObject", res, nil // create or complete an upload
		}
	case http.MethodDelete:
		if has("uploadId") {
			return "s3:AbortMultipartUpload", res, nil
		}
		if has("tagging") {
			return "s3:DeleteObjectTagging", res, nil
		}
		return "s3:DeleteObject", res, nil
	}
	return "", "", fmt.Errorf("%s %s?%s: an object request the test does not map", req.Method, req.Path, req.Query.Encode())
}

// TestS3Action checks the mapping of S3 requests to IAM actions.
func TestS3Action(t *testing.T) {
	q := func(s string) url.Values { v, _ := url.ParseQuery(s); return v }
	for _, tc := range []struct {
		method, path, query, action, resource string
	}{
		{"HEAD", "/c/r/r.car", "", "s3:GetObject", "arn:aws:s3:::c/r/r.car"},
		{"GET", "/c/r/r.car", "", "s3:GetObject", "arn:aws:s3:::c/r/r.car"},
		{"GET", "/c/r/r.car", "uploadId=u", "s3:ListMultipartUploadParts", "arn:aws:s3:::c/r/r.car"},
		{"GET", "/c/r/r.car", "tagging=", "s3:GetObjectTagging", "arn:aws:s3:::c/r/r.car"},
		{"PUT", "/c/r/r.car", "partNumber=1&uploadId=u", "s3:PutObject", "arn:aws:s3:::c/r/r.car"},
		{"PUT", "/c/r/r.car", "tagging=", "s3:PutObjectTagging", "arn:aws:s3:::c/r/r.car"},
		{"POST", "/c/r/r.car", "uploads=", "s3:PutObject", "arn:aws:s3:::c/r/r.car"},
		{"POST", "/c/r/r.car", "uploadId=u", "s3:PutObject", "arn:aws:s3:::c/r/r.car"},
		{"DELETE", "/c/r/r.car", "uploadId=u", "s3:AbortMultipartUpload", "arn:aws:s3:::c/r/r.car"},
		{"DELETE", "/s/staging/m.json", "", "s3:DeleteObject", "arn:aws:s3:::s/staging/m.json"},
		{"GET", "/s", "uploads=&prefix=staging/", "s3:ListBucketMultipartUploads", "arn:aws:s3:::s"},
		{"GET", "/s", "list-type=2&prefix=staging/", "s3:ListBucket", "arn:aws:s3:::s"},
	} {
		action, resource, err := s3Action(awstest.S3Request{Method: tc.method, Path: tc.path, Query: q(tc.query)})
		if err != nil || action != tc.action || resource != tc.resource {
			t.Errorf("%s %s?%s: %s %s %v, want %s %s", tc.method, tc.path, tc.query, action, resource, err, tc.action, tc.resource)
		}
	}
	if _, _, err := s3Action(awstest.S3Request{Method: "PUT", Path: "/c/k", CopyFrom: "/s/k"}); err == nil {
		t.Errorf("a copy was mapped")
	}
}
