package terraform

import (
	"archive/zip"
	"context"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/ipfs/go-cid"
	carv2 "github.com/ipld/go-car/v2"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pickup-ipfs/pickup/fetcher/carstore"
	"github.com/pickup-ipfs/pickup/internal/awsconfig"
)

// What the deployment test checks of a running deployment, beside the
// pins themselves.

// checkViewsEndpoints checks which database endpoint each role is given,
// which the world cannot tell apart (both are one server here): the
// Lambda the RDS Proxy (its many short-lived instances would exhaust the
// cluster's connections), views-setup the cluster's writer (an RDS Proxy
// pins, and refuses some, of the statements it runs), and no role a reader.
func (r *deploymentRun) checkViewsEndpoints() {
	t := r.t
	cluster := r.d.one(t, "aws_rds_cluster", "views.aws_rds_cluster.this")
	proxies := r.d.all("aws_db_proxy")
	hostOf := func(w wiredRole) string {
		u, err := url.Parse(w.env["PICKUP_VIEWS"])
		if err != nil {
			return ""
		}
		return u.Hostname()
	}
	for _, w := range r.roles {
		host := hostOf(w)
		switch {
		case host == "":
			continue
		case host == cluster.str("reader_endpoint"):
			t.Errorf("%s is given the cluster's reader endpoint %s: the views are written", w.where, host)
		case w.role == awsconfig.RoleGateway && (len(proxies) == 0 || host != proxies[0].str("endpoint")):
			t.Errorf("the Lambda's views are at %s, not the RDS Proxy", host)
		case w.role == awsconfig.RoleViewsSetup && host != cluster.str("endpoint"):
			t.Errorf("views-setup connects to %s, not the cluster's writer endpoint %s", host, cluster.str("endpoint"))
		}
	}
}

// checkEventLogEndpoints checks, when the plan selects the PostgreSQL
// event log, that every role is given the log's cluster's writer (the
// subscribers hold a LISTEN connection, which an RDS Proxy would pin; the
// Lambda's few connections go there too), never a proxy, a reader or the
// views' cluster, and the log's app role's secret, never a master secret.
func (r *deploymentRun) checkEventLogEndpoints() {
	t := r.t
	if r.w.logUser == "" {
		return
	}
	cluster := r.d.one(t, "aws_rds_cluster", "eventlog[0].aws_rds_cluster.this")
	masters := map[string]bool{}
	for _, c := range r.d.all("aws_rds_cluster") {
		if arn, _ := c.block("master_user_secret")["secret_arn"].(string); arn != "" {
			masters[arn] = true
		}
	}
	for _, w := range r.roles {
		at, ok := w.env["PICKUP_EVENTLOG"]
		if !ok {
			if w.role != awsconfig.RoleViewsSetup {
				t.Errorf("%s (%s) is given no PICKUP_EVENTLOG", w.where, w.role)
			}
			continue
		}
		u, err := url.Parse(at)
		if err != nil || u.Hostname() != cluster.str("endpoint") {
			t.Errorf("%s (%s) reaches the event log at %q, not its cluster's writer endpoint %s", w.where, w.role, at, cluster.str("endpoint"))
		}
		if _, set := u.User.Password(); set {
			t.Errorf("%s (%s): PICKUP_EVENTLOG holds a password", w.where, w.role)
		}
		if w.role != awsconfig.RoleEventsSetup && (w.env["PICKUP_EVENTLOG_SECRET_ARN"] == "" || masters[w.env["PICKUP_EVENTLOG_SECRET_ARN"]]) {
			t.Errorf("%s (%s): PICKUP_EVENTLOG_SECRET_ARN %q: want the log's app role's secret", w.where, w.role, w.env["PICKUP_EVENTLOG_SECRET_ARN"])
		}
	}
}

// checkProtection checks that each fetcher task's protection was set and
// is lifted now that its pins are done.
func (r *deploymentRun) checkProtection() {
	r.mu.Lock()
	defer r.mu.Unlock()
	checked := 0
	for _, w := range r.roles {
		if w.role != awsconfig.RoleFetcher || r.tasks[w.family] == nil {
			continue
		}
		checked++
		on, changes := r.tasks[w.family].Protection()
		if changes < 2 || on {
			r.t.Errorf("task %s: scale-in protection changed %d times, on now: %v; want set while fetching and lifted after", w.family, changes, on)
		}
	}
	if checked == 0 {
		r.t.Error("no fetcher task ran")
	}
}

// checkZipHolds checks that the Lambda zip holds the handler at its root,
// executable.
func checkZipHolds(t *testing.T, zipPath, handler string) {
	t.Helper()
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		t.Fatalf("%s: %v", zipPath, err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		if f.Name == handler && f.Mode().Perm()&0o111 != 0 {
			return
		}
	}
	t.Errorf("%s holds no executable %q at its root: the provided runtime runs the handler named there", zipPath, handler)
}

// checkCAR reads the root's CAR from the carpark bucket: a CARv1 whose one
// root is root.
func (r *deploymentRun) checkCAR(ctx context.Context, rootCID cid.Cid) {
	root := rootCID.String()
	t := r.t
	var carpark string
	for _, w := range r.roles {
		if b := w.env["PICKUP_CARPARK_BUCKET"]; b != "" {
			carpark = b
		}
	}
	if carpark == "" {
		t.Fatal("no role is given PICKUP_CARPARK_BUCKET")
	}
	key := carstore.RootKey(rootCID)
	obj, err := r.w.s3.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(carpark), Key: aws.String(key)})
	if err != nil {
		r.fail("the CAR of %s in the carpark bucket %s (%s): %v", root, carpark, key, err)
	}
	defer obj.Body.Close()
	br, err := carv2.NewBlockReader(obj.Body)
	if err != nil {
		r.fail("s3://%s/%s is no CAR: %v", carpark, key, err)
	}
	if len(br.Roots) != 1 || br.Roots[0].String() != root {
		r.fail("s3://%s/%s has roots %v, want %s", carpark, key, br.Roots, root)
	}
	n := 0
	for {
		_, err := br.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			r.fail("s3://%s/%s: block %d: %v", carpark, key, n, err)
		}
		n++
	}
	if n < 2 {
		r.fail("s3://%s/%s holds %d blocks: a 3 MiB file has more", carpark, key, n)
	}
	t.Logf("carpark: s3://%s/%s, %d blocks, root %s", carpark, key, n, root)
}

// checkSecretsRead checks that every secret a process read is one its
// role's table names through a setting, as that process's settings name
// it: the calls TestIAMFromCode checks against the policies are the calls
// made, down to the resource.
func (r *deploymentRun) checkSecretsRead(c *container) {
	env := map[string]string{}
	for _, kv := range c.env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for _, arn := range c.secrets.Reads() {
		ok := false
		for _, call := range awsconfig.Calls(c.role) {
			if call.Operation != "Secrets Manager GetSecretValue" {
				continue
			}
			if got, set, err := call.Resource.ARN(func(n string) string { return env[n] }, ""); err == nil && set && got == arn {
				ok = true
			}
		}
		if !ok {
			r.t.Errorf("%s (%s) read secret %s, which no GetSecretValue entry of its table names through its settings", c.name, c.role, arn)
		}
	}
}

// checkS3Requests evaluates every S3 request a process made, on the very
// bucket and key, against the policies of the IAM role it runs with in the
// plan: what the table's resource forms stand for is what the code does.
func (r *deploymentRun) checkS3Requests(c *container) {
	reqs := c.s3.Requests()
	if len(reqs) == 0 {
		return
	}
	policies := rolePolicies(r.t, r.d, c.roleARN)
	denied := map[string]bool{}
	for _, req := range reqs {
		action, resource, err := s3Action(req)
		if err != nil {
			r.t.Errorf("%s: %v", c.name, err)
			continue
		}
		if ok, why := allows(policies, action, resource); !ok && !denied[action+" "+resource] {
			denied[action+" "+resource] = true
			r.t.Errorf("%s made %s %s: %s on %s is not allowed by %s: %s", c.name, req.Method, req.Path, action, resource, c.roleARN, why)
		}
	}
	r.t.Logf("%s: %d S3 requests, each allowed by %s", c.name, len(reqs), c.roleARN)
}

// checkDelegates checks the delegates a pin's answer names: the static
// list the function is given (PICKUP_DELEGATES), if any; otherwise each a
// multiaddr with a peer id, at which a libp2p host on loopback connects
// to that very peer (a live fetcher's libp2p host).
func (r *deploymentRun) checkDelegates(ctx context.Context, delegates []string) {
	t := r.t
	if len(delegates) == 0 {
		r.fail("POST /pins answered no delegates")
	}
	for _, w := range r.roles {
		if static := w.env["PICKUP_DELEGATES"]; w.role == awsconfig.RoleGateway && static != "" {
			want := strings.Split(static, ",")
			if !slices.Equal(slices.Sorted(slices.Values(delegates)), slices.Sorted(slices.Values(want))) {
				r.fail("POST /pins answered delegates %q; the function is given PICKUP_DELEGATES %q", delegates, want)
			}
			t.Logf("delegates: the static list %q", want)
			return
		}
	}
	h, err := libp2p.New(libp2p.NoListenAddrs)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, d := range delegates {
		ai, err := peer.AddrInfoFromString(d)
		if err != nil {
			r.fail("delegate %q: %v", d, err)
		}
		dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err = h.Connect(dctx, *ai)
		cancel()
		if err != nil {
			r.fail("delegate %q: no libp2p connection to %s: %v", d, ai.ID, err)
		}
		t.Logf("delegate %s: connected", d)
	}
}

// checkCalls checks each role's recorded AWS calls against its table, and
// that the fetcher's S3 calls, and the gateway's into the uploads area,
// were recorded at all.
func (r *deploymentRun) checkCalls() {
	t := r.t
	made := map[string]map[string]bool{}
	for _, c := range r.all() {
		r.checkSecretsRead(c)
		r.checkS3Requests(c)
		b, err := os.ReadFile(c.calls)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if line == "" {
				continue
			}
			if made[c.role] == nil {
				made[c.role] = map[string]bool{}
			}
			made[c.role][line] = true
			role := c.role
			if !awsconfig.Allows(role, line) {
				t.Errorf("%s (%s) called %q, which is not in internal/awsconfig's table for %s: add it there, and to the role's policy", c.name, c.role, line, role)
			}
		}
	}
	for role, ops := range made {
		t.Logf("AWS calls made by %s: %q", role, sortedKeys(ops))
	}
	if !made[awsconfig.RoleFetcher]["S3 CreateMultipartUpload"] {
		t.Errorf("no S3 CreateMultipartUpload recorded for the fetcher: was %s set?", awsconfig.RecordEnv)
	}
	// The CAR upload (pinCAR) went into the uploads bucket through the
	// Lambda's own S3 client.
	if !made[awsconfig.RoleGateway]["S3 PutObject"] {
		t.Errorf("no S3 PutObject recorded for the gateway: did the CAR upload go into the uploads bucket?")
	}
}
