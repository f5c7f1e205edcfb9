package awsconfig

import (
	"fmt"
	"slices"
	"strings"
)

// The AWS calls each role's code can make, the IAM action each needs and
// what it acts on: the one table IAM policies are written from. The
// deployment test (terraform/deploy_test.go) checks it both ways: every
// call a role makes against real stand-ins, recorded through RecordEnv, is
// an Operation of that role here; and every entry here is allowed by the
// role's policy in the Terraform plan, on the resource built from the
// role's settings in the plan. A change of the code that calls AWS changes
// this table, and the test then says which policy lacks what.

// Roles are the processes that run with an IAM role of their own.
const (
	RoleGateway     = "gateway"      // pickup gateway, on Lambda
	RoleFetcher     = "fetcher"      // pickup fetcher, an ECS task
	RoleProjector   = "projector"    // pickup projector, an ECS task
	RoleViewsSetup  = "views-setup"  // pickup views setup, in the projector task before the projector
	RoleEventsSetup = "events-setup" // pickup events setup, the projector task's first container with the PostgreSQL event log
	RoleAdmin       = "admin"        // the operator's one-off commands (pickup tokens, webhooks, audit), an ECS task
	RoleServe       = "serve"        // pickup serve, the trustless gateway over the carpark, an ECS task behind a load balancer
)

// Call is one AWS operation a role's code can make on one kind of
// resource. An operation acting on several resources (a HEAD in either
// bucket) has an entry for each.
type Call struct {
	// Operation is "<service id> <operation>", as RecordEnv records it.
	Operation string
	// Action is the IAM action the operation needs on Resource.
	Action string
	// Resource is what the call acts on (see Resource).
	Resource Resource
	// Why says when the code makes the call.
	Why string
	// When, if set, names the setting without which the code never makes
	// the call (a role wired without it needs no permission for it).
	When string
}

// Resource names what a call acts on in terms of the role's settings, so
// that a test can build its ARN from a deployment's wiring:
//
//   - "bucket:<area>" is the bucket of area ("staging", "carpark" or
//     "uploads": the bucket PICKUP_STAGING_BUCKET, PICKUP_CARPARK_BUCKET or
//     PICKUP_UPLOADS_BUCKET names);
//   - "object:<area>" is an object in it (under PICKUP_STAGING_PREFIX for
//     staging, PICKUP_UPLOADS_PREFIX, default "uploads/", for uploads);
//   - "setting:<NAME>" is the ARN the setting NAME holds (a secret, a
//     topic);
//   - "*" is every resource: the action has no resource-level permission.
type Resource string

// Buckets' settings, by area.
var areaSettings = map[string]string{"staging": "PICKUP_STAGING_BUCKET", "carpark": "PICKUP_CARPARK_BUCKET", "uploads": "PICKUP_UPLOADS_BUCKET"}

// defaultUploadsPrefix is PICKUP_UPLOADS_PREFIX's default
// (carupload.DefaultS3Prefix).
const defaultUploadsPrefix = "uploads/"

// ARN returns the resource's ARN (partition aws) from the role's settings,
// read through setting; for an object, the ARN of an object key in the
// place the code writes (key, relative to the area's prefix). ok is false
// when a setting it needs is unset: the role cannot make that call.
func (r Resource) ARN(setting func(string) string, key string) (arn string, ok bool, err error) {
	kind, arg, _ := strings.Cut(string(r), ":")
	switch kind {
	case "*":
		return "*", true, nil
	case "setting":
		v := setting(arg)
		return v, v != "", nil
	case "bucket", "object":
		name, known := areaSettings[arg]
		if !known {
			return "", false, fmt.Errorf("resource %q: no area %q", r, arg)
		}
		bucket := setting(name)
		if bucket == "" {
			return "", false, nil
		}
		if kind == "bucket" {
			return "arn:aws:s3:::" + bucket, true, nil
		}
		prefix := ""
		switch arg {
		case "staging":
			prefix = setting("PICKUP_STAGING_PREFIX")
		case "uploads":
			if prefix = setting("PICKUP_UPLOADS_PREFIX"); prefix == "" {
				prefix = defaultUploadsPrefix
			}
		}
		return "arn:aws:s3:::" + bucket + "/" + prefix + key, true, nil
	}
	return "", false, fmt.Errorf("resource %q: want bucket:, object:, setting: or *", r)
}

// secretCalls are the Secrets Manager reads every long-running role makes
// at start (and, for the views, on each new connection) when its settings
// name secrets.
var secretCalls = []Call{
	{"Secrets Manager GetSecretValue", "secretsmanager:GetSecretValue", "setting:PICKUP_EVENTLOG_SECRET_ARN", "the event log's connection string, at start; for a PostgreSQL log its app role's password, by each new connection", ""},
	{"Secrets Manager GetSecretValue", "secretsmanager:GetSecretValue", "setting:PICKUP_VIEWS_SECRET_ARN", "the views' app role password, by each new connection", ""},
}

// s3Calls are the fetcher's calls into the two buckets (fetcher/carstore).
var s3Calls = []Call{
	{"S3 CreateMultipartUpload", "s3:PutObject", "object:carpark", "a CAR's upload, at its key in the carpark", ""},
	{"S3 UploadPart", "s3:PutObject", "object:carpark", "the CAR's parts", ""},
	{"S3 CompleteMultipartUpload", "s3:PutObject", "object:carpark", "validation completes the upload", ""},
	{"S3 AbortMultipartUpload", "s3:AbortMultipartUpload", "object:carpark", "a failed or discarded attempt's upload", ""},
	{"S3 AbortMultipartUpload", "s3:AbortMultipartUpload", "object:staging", "uploads older versions left in staging", ""},
	{"S3 ListParts", "s3:ListMultipartUploadParts", "object:carpark", "validation reads the parts the server holds", ""},
	{"S3 ListMultipartUploads", "s3:ListBucketMultipartUploads", "bucket:carpark", "open uploads, counted and swept", ""},
	{"S3 ListMultipartUploads", "s3:ListBucketMultipartUploads", "bucket:staging", "what earlier attempts left under a request's prefix", ""},
	{"S3 ListObjectsV2", "s3:ListBucket", "bucket:staging", "markers of earlier attempts, swept", ""},
	{"S3 HeadObject", "s3:GetObject", "object:carpark", "a CAR already pinned, reused", ""},
	{"S3 HeadObject", "s3:ListBucket", "bucket:carpark", "without it a HEAD of a missing CAR answers 403, not 404", ""},
	{"S3 GetObject", "s3:GetObject", "object:carpark", "a CAR read back, to prove or reuse it (or index a reused CAR that has none); an index there already, compared", ""},
	{"S3 GetObjectTagging", "s3:GetObjectTagging", "object:carpark", "a CAR's CAR CID tag", ""},
	{"S3 PutObjectTagging", "s3:PutObjectTagging", "object:carpark", "a validated CAR tagged with its CAR CID", ""},
	{"S3 DeleteObject", "s3:DeleteObject", "object:carpark", "a completed object that does not hold the bytes uploaded", ""},
	{"S3 PutObject", "s3:PutObject", "object:carpark", "a validated CAR's block index and its root's mapping (PutIndex)", ""},
	{"S3 PutObject", "s3:PutObject", "object:staging", "an attempt's marker", ""},
	{"S3 GetObject", "s3:GetObject", "object:staging", "an attempt's marker, read back", ""},
	{"S3 DeleteObject", "s3:DeleteObject", "object:staging", "an attempt's marker, removed", ""},
}

// gatewayUploadCalls are the gateway's calls into the uploads area
// (carupload.S3), made only when it is given PICKUP_UPLOADS_BUCKET. On
// Lambda a CAR upload is at most gateway.LambdaMaxCARBytes (4 MiB), under
// the smallest multipart part S3 takes: the CAR and its index are each
// put whole, once received and checked (nothing is written of a refused
// body); never a multipart upload, never a read.
var gatewayUploadCalls = []Call{
	{"S3 PutObject", "s3:PutObject", "object:uploads", "a CAR upload (<request id>.<nonce>.car) and its section index (.idx), once the body is whole and checked", "PICKUP_UPLOADS_BUCKET"},
	{"S3 DeleteObject", "s3:DeleteObject", "object:uploads", "an upload no pin records (a keyed twin recorded first, a request not recorded), or the index of one whose CAR was not put", "PICKUP_UPLOADS_BUCKET"},
}

// fetcherUploadCalls are the fetcher's calls into the uploads area
// (fetcher/dag/upload reads an upload; the pool deletes it once its pin is
// over and sweeps the area at start), made only when it is given
// PICKUP_UPLOADS_BUCKET.
var fetcherUploadCalls = []Call{
	{"S3 HeadObject", "s3:GetObject", "object:uploads", "an upload opened: its size and ETag", "PICKUP_UPLOADS_BUCKET"},
	{"S3 HeadObject", "s3:ListBucket", "bucket:uploads", "without it a HEAD of an upload gone answers 403, not 404", "PICKUP_UPLOADS_BUCKET"},
	{"S3 GetObject", "s3:GetObject", "object:uploads", "an upload's CAR read by ranges, and its section index", "PICKUP_UPLOADS_BUCKET"},
	{"S3 DeleteObject", "s3:DeleteObject", "object:uploads", "an upload whose pin is over; a stray index, swept", "PICKUP_UPLOADS_BUCKET"},
	{"S3 ListObjectsV2", "s3:ListBucket", "bucket:uploads", "the uploads area swept at start", "PICKUP_UPLOADS_BUCKET"},
	{"S3 ListMultipartUploads", "s3:ListBucketMultipartUploads", "bucket:uploads", "what a gateway killed mid-body left, swept at start", "PICKUP_UPLOADS_BUCKET"},
	{"S3 AbortMultipartUpload", "s3:AbortMultipartUpload", "object:uploads", "what a gateway killed mid-body left, swept once older than 6 hours", "PICKUP_UPLOADS_BUCKET"},
}

// reindexCalls are pickup reindex's calls into the carpark (ListCars,
// ReadRange, Open, PutIndex), made only when the admin task is given
// PICKUP_CARPARK_BUCKET.
var reindexCalls = []Call{
	{"S3 ListObjectsV2", "s3:ListBucket", "bucket:carpark", "pickup reindex lists the carpark's CARs", "PICKUP_CARPARK_BUCKET"},
	{"S3 HeadObject", "s3:GetObject", "object:carpark", "pickup reindex: each CAR's size and metadata", "PICKUP_CARPARK_BUCKET"},
	{"S3 HeadObject", "s3:ListBucket", "bucket:carpark", "without it a HEAD of a missing mapping answers 403, not 404", "PICKUP_CARPARK_BUCKET"},
	{"S3 GetObjectTagging", "s3:GetObjectTagging", "object:carpark", "pickup reindex: the CAR CID tag of a CAR at its root's key", "PICKUP_CARPARK_BUCKET"},
	{"S3 GetObject", "s3:GetObject", "object:carpark", "pickup reindex reads a CAR once, and an index there already", "PICKUP_CARPARK_BUCKET"},
	{"S3 PutObject", "s3:PutObject", "object:carpark", "pickup reindex writes a CAR's index and its root's mapping", "PICKUP_CARPARK_BUCKET"},
}

// roleCalls is the table: each role's calls.
var roleCalls = map[string][]Call{
	RoleGateway: concat(secretCalls, gatewayUploadCalls),
	RoleFetcher: concat(secretCalls, s3Calls, fetcherUploadCalls, []Call{
		{"EC2 DescribeNetworkInterfaces", "ec2:DescribeNetworkInterfaces", "*", "PICKUP_LIBP2P_PUBLIC_IP=ecs: the task's public IPv4, from its private address (EC2 has no resource-level permission for it)", "PICKUP_LIBP2P_PUBLIC_IP"},
	}),
	RoleProjector: concat(secretCalls, []Call{
		{"SNS Publish", "sns:Publish", "setting:PICKUP_NOTIFY_TOPIC_ARN", "a validated CAR told to the topic", ""},
		{"S3 ListObjectsV2", "s3:ListBucket", "bucket:carpark", "the garbage collector finds a released root's CAR, index and mapping (<rootCid>/, <carCid>/)", "PICKUP_CARPARK_BUCKET"},
		{"S3 DeleteObject", "s3:DeleteObject", "object:carpark", "the garbage collector deletes them after the grace period", "PICKUP_CARPARK_BUCKET"},
	}),
	// The serving role reads the carpark and nothing else of S3: range
	// reads of CARs and their indexes, root → CAR mappings listed by
	// prefix; never staging, never a write.
	RoleServe: concat(secretCalls, []Call{
		{"S3 GetObject", "s3:GetObject", "object:carpark", "a range of a CAR (blocks, whole CARs) or a CAR's index, read to serve it", ""},
		{"S3 HeadObject", "s3:GetObject", "object:carpark", "a CAR's size and ETag before its ranges are read", ""},
		{"S3 HeadObject", "s3:ListBucket", "bucket:carpark", "without it a HEAD of a missing object answers 403, not 404", ""},
		{"S3 ListObjectsV2", "s3:ListBucket", "bucket:carpark", "a root's CARs (<rootCid>/<carCid>), and the CARs the lookup is rebuilt from", ""},
	}),
	// The operator's commands open the log and the views as every role
	// does, through the same settings; pickup reindex reads and writes the
	// carpark when the task is given its bucket.
	RoleAdmin: concat(secretCalls, reindexCalls),
	RoleViewsSetup: {
		{"Secrets Manager GetSecretValue", "secretsmanager:GetSecretValue", "setting:PICKUP_VIEWS_ADMIN_SECRET_ARN", "the admin (master) login, when not injected", ""},
		{"Secrets Manager GetSecretValue", "secretsmanager:GetSecretValue", "setting:PICKUP_VIEWS_APP_SECRET_ARN", "the app role's password to set, when not injected", ""},
	},
	RoleEventsSetup: {
		{"Secrets Manager GetSecretValue", "secretsmanager:GetSecretValue", "setting:PICKUP_EVENTLOG_ADMIN_SECRET_ARN", "the event log cluster's admin (master) login, when not injected", ""},
		{"Secrets Manager GetSecretValue", "secretsmanager:GetSecretValue", "setting:PICKUP_EVENTLOG_APP_SECRET_ARN", "the log's app role's password to set, when not injected", ""},
	},
}

func concat(lists ...[]Call) []Call {
	var out []Call
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// Roles lists the roles of the table.
func Roles() []string {
	out := make([]string, 0, len(roleCalls))
	for r := range roleCalls {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// Calls returns a role's calls (a copy), nil for an unknown role.
func Calls(role string) []Call {
	return slices.Clone(roleCalls[role])
}

// Allows tells whether operation ("<service id> <operation>") is one of
// role's calls.
func Allows(role, operation string) bool {
	return slices.ContainsFunc(roleCalls[role], func(c Call) bool { return c.Operation == operation })
}
