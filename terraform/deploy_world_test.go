package terraform

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/pickup-ipfs/pickup/internal/postgrestest"
	"github.com/pickup-ipfs/pickup/internal/s3test"
	"github.com/pickup-ipfs/pickup/terraform/internal/awstest"
)

// The world a deployment runs in, on loopback: what stands in for each AWS
// service and outside party the plan names.
//
//	plan's                       here
//	S3 buckets                   versitygw (internal/s3test), the plan's bucket names created
//	Aurora writers, RDS Proxy    one throwaway PostgreSQL (internal/postgrestest), TLS on (the plan's
//	                             URLs say sslmode=require), each cluster's database and master user
//	                             created (CREATEROLE and CREATEDB: RDS's master is no superuser
//	                             either): the views' cluster and, when the plan selects the
//	                             PostgreSQL event log, the log's, which the roles then use as wired
//	Secrets Manager              awstest.SecretsManager: the secrets the plan creates, with values made
//	                             as the plan makes them (below), and each RDS-managed master secret;
//	                             the serve peer's key, which the operator writes once: what the
//	                             tasks' binary prints for `pickup serve-key`, as README.md's
//	                             Deploying steps have it
//	EC2 DescribeNetworkInterfaces awstest.EC2: every task's address 127.0.0.1 has public IP 127.0.0.1
//	ECS task metadata and agent  awstest.ECSTask, one per task
//	EventStoreDB (eventlog=esdb) cannot run here: the embedded log, one SQLite file all roles share
//	                             (all roles run on one machine), named by the event log secret
//	the IPFS network             a trustless gateway on loopback (internal/ipfstest) holding the DAG
//	IPNI indexers (cid.contact)  one HTTP server on loopback answering every announcement 204, each
//	                             logged (rewriteEnv points PICKUP_IPNI_INDEXERS at it)
//
// The hosts of the plan's database endpoints are mapped to the PostgreSQL
// server's loopback address by hostTable, the one rewrite of the plan's
// values besides those rewriteEnv lists.
type world struct {
	dir      string
	s3       *s3test.Server
	pg       *postgrestest.Server
	pgAddr   string // 127.0.0.1:PORT
	secrets  *awstest.SecretsManager
	ec2      *awstest.EC2
	eventlog string
	// hostTable maps each database endpoint of the plan (host:port) to
	// pgAddr.
	hostTable map[string]string
	// master is the views cluster's RDS-managed master login.
	masterUser, masterPassword string
	// appUser is the views app role's name, as the plan's URLs give it;
	// appSecretARN the secret holding its login.
	appUser, appSecretARN string
	// logUser is the PostgreSQL event log's app role, as PICKUP_EVENTLOG
	// names it ("" when the plan selects EventStoreDB); logSecretARN the
	// secret holding its login.
	logUser, logSecretARN string
	// pickup is the tasks' binary, which makes the serve peer's key as the
	// operator does (`pickup serve-key`).
	pickup string
	// indexer stands in for every IPNI indexer the plan names; announced
	// holds each request it took ("METHOD /path body").
	indexer     *httptest.Server
	announcedMu sync.Mutex
	announced   []string
}

// startWorld starts every stand-in for d; pickup is the tasks' binary.
func startWorld(t *testing.T, d *deployment, roles []wiredRole, pickup string) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{dir: t.TempDir(), hostTable: map[string]string{}, pickup: pickup}
	w.eventlog = filepath.Join(w.dir, "eventlog", "events.db")
	if err := os.MkdirAll(filepath.Dir(w.eventlog), 0o777); err != nil {
		t.Fatal(err)
	}

	// S3: the plan's buckets.
	w.s3 = s3test.Start(t)
	buckets := d.all("aws_s3_bucket")
	if len(buckets) == 0 {
		t.Fatalf("envs/%s has no S3 bucket", d.env)
	}
	for _, b := range buckets {
		if _, err := w.s3.Client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b.str("bucket"))}); err != nil {
			t.Fatalf("create bucket %s (%s): %v", b.str("bucket"), b.Address, err)
		}
	}

	// PostgreSQL for the cluster and its proxy.
	pg, err := postgrestest.Start(ctx, postgrestest.Options{Passwords: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Stop() })
	w.pg = pg
	super, err := url.Parse(pg.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	w.pgAddr = super.Host
	conn, err := pgx.Connect(ctx, super.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// Every cluster of the plan: its master user and database, on the one
	// server (their names differ, as the modules make them).
	masters := map[string]string{}
	for _, cluster := range d.all("aws_rds_cluster") {
		user, dbName := cluster.str("master_username"), cluster.str("database_name")
		if user == "" || dbName == "" {
			t.Fatalf("%s: master_username %q, database_name %q: want both", cluster.Address, user, dbName)
		}
		if _, dup := masters[user]; dup {
			t.Fatalf("%s: master user %q is another cluster's too: on one server they would share a password", cluster.Address, user)
		}
		password := randomString(t, 32)
		masters[user] = password
		for _, q := range []string{
			fmt.Sprintf("CREATE ROLE %s LOGIN CREATEROLE CREATEDB PASSWORD '%s'", pgx.Identifier{user}.Sanitize(), password),
			fmt.Sprintf("CREATE DATABASE %s OWNER %s", pgx.Identifier{dbName}.Sanitize(), pgx.Identifier{user}.Sanitize()),
		} {
			if _, err := conn.Exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	cluster := d.one(t, "aws_rds_cluster", "views.aws_rds_cluster.this")
	w.masterUser = cluster.str("master_username")
	w.masterPassword = masters[w.masterUser]
	enableTLS(t, ctx, conn, super.String())
	for _, r := range d.all("aws_rds_cluster") {
		for _, attr := range []string{"endpoint", "reader_endpoint"} {
			w.hostTable[net.JoinHostPort(r.str(attr), portOf(r))] = w.pgAddr
		}
	}
	for _, r := range d.all("aws_db_proxy") {
		w.hostTable[net.JoinHostPort(r.str("endpoint"), "5432")] = w.pgAddr
	}

	// The app role's name, from the URLs the roles are given.
	for _, r := range roles {
		if u, err := url.Parse(r.env["PICKUP_VIEWS"]); err == nil && u.User != nil && u.User.Username() != w.masterUser {
			w.appUser = u.User.Username()
		}
	}
	if w.appUser == "" {
		w.appUser = "pickup_app"
	}
	for _, r := range roles {
		if u, err := url.Parse(r.env["PICKUP_EVENTLOG"]); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") && u.User != nil {
			w.logUser = u.User.Username()
		}
	}

	// Secrets Manager: the RDS-managed master secret, and every secret the
	// plan creates, each with the value the plan's wiring makes it for.
	w.secrets = awstest.NewSecretsManager(t)
	for _, c := range d.all("aws_rds_cluster") {
		master, _ := c.block("master_user_secret")["secret_arn"].(string)
		if master == "" {
			t.Fatalf("%s has no master_user_secret (manage_master_user_password)", c.Address)
		}
		user := c.str("master_username")
		w.secrets.Put(awstest.Secret{ARN: master, Name: strings.SplitN(master, ":", 7)[6], Value: mustJSON(t, map[string]string{"username": user, "password": masters[user]})})
	}
	for _, s := range d.all("aws_secretsmanager_secret") {
		w.secrets.Put(awstest.Secret{ARN: s.str("arn"), Name: s.str("name"), Value: w.secretValue(t, d, s, roles)})
	}

	w.ec2 = awstest.NewEC2(t, map[string]string{"127.0.0.1": "127.0.0.1"})
	w.indexer = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		t.Logf("indexer stand-in: %s %s (%d bytes)", req.Method, req.URL.Path, len(body))
		w.announcedMu.Lock()
		w.announced = append(w.announced, req.Method+" "+req.URL.Path+" "+string(body))
		w.announcedMu.Unlock()
		rw.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(w.indexer.Close)
	return w
}

// secretValue makes the value of a secret the plan creates: the value its
// version holds when the state has it; otherwise (a write-only value, or
// one left to the operator) a value of the kind the setting it is injected
// as takes, random where the plan draws it from
// aws_secretsmanager_random_password (of that data source's length).
func (w *world) secretValue(t *testing.T, d *deployment, s tfResource, roles []wiredRole) string {
	t.Helper()
	for _, v := range d.all("aws_secretsmanager_secret_version") {
		if v.str("secret_id") == s.str("arn") || v.str("secret_id") == s.str("id") {
			if known := v.str("secret_string"); known != "" {
				return known
			}
		}
	}
	arn := s.str("arn")
	var uses []string
	for _, r := range roles {
		for k, v := range r.env {
			if v == arn {
				uses = append(uses, k)
			}
		}
		for _, sec := range r.secrets {
			if _, ref := secretResource(sec.ValueFrom); ref == arn {
				uses = append(uses, sec.Name)
			}
		}
	}
	// The random password the plan draws for it: the data source keyed
	// (or named) as the secret's name ends.
	length := 40
	last := s.str("name")[strings.LastIndex(s.str("name"), "/")+1:]
	for _, r := range d.resources {
		if r.Mode != "data" || r.Type != "aws_secretsmanager_random_password" {
			continue
		}
		if key, _ := r.Index.(string); key == last || key == "" && strings.HasSuffix(last, r.Name) {
			if n, ok := r.Values["password_length"].(float64); ok && n > 0 {
				length = int(n)
			}
		}
	}
	for _, use := range uses {
		switch use {
		case "PICKUP_EVENTLOG", "PICKUP_EVENTLOG_SECRET_ARN", "PICKUP_EVENTLOG_APP_SECRET", "PICKUP_EVENTLOG_APP_SECRET_ARN":
			if w.logUser != "" {
				// The PostgreSQL log's app role, as for the views.
				w.logSecretARN = arn
				return mustJSON(t, map[string]string{"username": w.logUser, "password": randomString(t, length)})
			}
			// EventStoreDB cannot run here: the embedded log's file.
			return w.eventlog
		case "PICKUP_VIEWS_SECRET_ARN", "PICKUP_VIEWS_APP_SECRET", "PICKUP_VIEWS_APP_SECRET_ARN":
			w.appSecretARN = arn
			return mustJSON(t, map[string]string{"username": w.appUser, "password": randomString(t, length)})
		case "PICKUP_WEBHOOK_KEY", "PICKUP_LIBP2P_SEED":
			return randomString(t, length)
		case "PICKUP_SERVE_LIBP2P_KEY":
			// Created empty; what the operator writes.
			return w.serveKey(t)
		}
	}
	t.Fatalf("secret %s (%s) is used as %q: the test knows no value for it", s.str("name"), s.Address, uses)
	return ""
}

// serveKey runs `pickup serve-key` as README.md's Deploying steps do and
// returns what it printed, which must be a libp2p private key, base64 of
// its protobuf form (kubo's Identity.PrivKey): the serve task then starts
// with it, or the deployment test fails.
func (w *world) serveKey(t *testing.T) string {
	t.Helper()
	cmd := exec.Command(w.pickup, "serve-key")
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"HOME=" + cmd.Dir, "PATH=" + os.Getenv("PATH")}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pickup serve-key (README.md's step that writes the serve peer's key): %v\n%s", err, stderr.String())
	}
	key := strings.TrimSpace(string(out))
	b, err := base64.StdEncoding.DecodeString(key)
	if err == nil {
		_, err = crypto.UnmarshalPrivateKey(b)
	}
	if err != nil {
		t.Fatalf("pickup serve-key printed %q, not a base64 libp2p private key: %v", key, err)
	}
	return key
}

// portOf is a cluster's port ("5432" by default).
func portOf(r tfResource) string {
	if p, ok := r.Values["port"].(float64); ok && p > 0 {
		return strconv.Itoa(int(p))
	}
	return "5432"
}

// mapHosts rewrites every endpoint of hostTable in s to its loopback
// address.
func (w *world) mapHosts(s string) string {
	for from, to := range w.hostTable {
		s = strings.ReplaceAll(s, from, to)
	}
	return s
}

// enableTLS turns TLS on in the throwaway server, with a self-signed
// certificate (sslmode=require checks none), as Aurora has it.
func enableTLS(t *testing.T, ctx context.Context, conn *pgx.Conn, superURL string) {
	t.Helper()
	var dataDir string
	if err := conn.QueryRow(ctx, "SHOW data_directory").Scan(&dataDir); err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "views.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	for name, block := range map[string]*pem.Block{"server.crt": {Type: "CERTIFICATE", Bytes: der}, "server.key": {Type: "EC PRIVATE KEY", Bytes: keyDER}} {
		p := filepath.Join(dataDir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, int(st.Uid), int(st.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{"ALTER SYSTEM SET ssl = on", "SELECT pg_reload_conf()"} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// The reload is asynchronous: wait until a new connection gets TLS.
	tlsURL := superURL + "?sslmode=require"
	if strings.Contains(superURL, "?") {
		tlsURL = superURL + "&sslmode=require"
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := pgx.Connect(ctx, tlsURL)
		if err == nil {
			c.Close(ctx)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("PostgreSQL does not take TLS connections after ssl = on: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func randomString(t *testing.T, n int) string {
	b := make([]byte, (n+1)/2)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)[:n]
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// freeLoopbackAddr returns a TCP address on 127.0.0.1 that was free.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// freeLoopbackPort returns a port free on 127.0.0.1 for both TCP and UDP.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no port free for both TCP and UDP on 127.0.0.1")
	return 0
}

// buildPickup builds ./cmd/pickup for this machine into dir/name with
// extra flags.
func buildPickup(t *testing.T, out string, args ...string) {
	t.Helper()
	cmd := exec.Command("go", append(append([]string{"build"}, args...), "-o", out, "./cmd/pickup")...)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/pickup: %v\n%s", err, b)
	}
}
