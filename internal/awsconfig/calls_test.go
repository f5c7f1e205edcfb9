package awsconfig

import (
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
)

// iamPrefix is the IAM service prefix of each SDK service id the table uses.
var iamPrefix = map[string]string{"S3": "s3", "Secrets Manager": "secretsmanager", "SNS": "sns", "EC2": "ec2"}

// clients are SDK clients whose methods name the operations; EC2's client
// is left out (pickup's own code imports it only in the fetcher's role).
var clients = map[string]reflect.Type{
	"S3":              reflect.TypeOf(&s3.Client{}),
	"Secrets Manager": reflect.TypeOf(&secretsmanager.Client{}),
	"SNS":             reflect.TypeOf(&sns.Client{}),
}

var actionRe = regexp.MustCompile(`^[a-z0-9-]+:[A-Z][A-Za-z0-9]+$`)

// TestCallsTable: every entry names an operation of the SDK (a method of
// its client), an IAM action of that service, a resource the deployment
// test can build, and why the code calls it.
func TestCallsTable(t *testing.T) {
	setting := func(name string) string {
		return map[string]string{"PICKUP_STAGING_BUCKET": "s", "PICKUP_CARPARK_BUCKET": "c", "PICKUP_STAGING_PREFIX": "staging/"}[name]
	}
	if got := Roles(); !reflect.DeepEqual(got, []string{RoleAdmin, RoleEventsSetup, RoleFetcher, RoleGateway, RoleProjector, RoleServe, RoleViewsSetup}) {
		t.Fatalf("roles %q", got)
	}
	for _, role := range Roles() {
		calls := Calls(role)
		if len(calls) == 0 {
			t.Errorf("%s has no calls", role)
		}
		for _, c := range calls {
			// Service ids may hold spaces ("Secrets Manager"); operations never.
			i := strings.LastIndex(c.Operation, " ")
			if i < 0 {
				t.Errorf("%s: %q is not \"<service id> <operation>\"", role, c.Operation)
				continue
			}
			service, op := c.Operation[:i], c.Operation[i+1:]
			prefix, known := iamPrefix[service]
			if !known {
				t.Errorf("%s: %q: unknown service id %q", role, c.Operation, service)
				continue
			}
			if typ, ok := clients[service]; ok {
				if _, ok := typ.MethodByName(op); !ok {
					t.Errorf("%s: %q: the %s client has no method %s", role, c.Operation, service, op)
				}
			}
			if !actionRe.MatchString(c.Action) || !strings.HasPrefix(c.Action, prefix+":") {
				t.Errorf("%s: %q: action %q is not an action of %s", role, c.Operation, c.Action, prefix)
			}
			if _, _, err := c.Resource.ARN(setting, "k"); err != nil {
				t.Errorf("%s: %q: %v", role, c.Operation, err)
			}
			if c.Why == "" {
				t.Errorf("%s: %q: no reason", role, c.Operation)
			}
			if !Allows(role, c.Operation) {
				t.Errorf("%s: Allows(%q) is false", role, c.Operation)
			}
		}
	}
	// The gateway writes to S3 only into the uploads area, and only when
	// it is given one; it never reads there, nor touches the CARs.
	for _, c := range Calls(RoleGateway) {
		if strings.HasPrefix(c.Operation, "S3 ") && (c.Resource != "object:uploads" || c.When != "PICKUP_UPLOADS_BUCKET") {
			t.Errorf("the gateway calls %s on %s (when %q): it writes to S3 only into the uploads area, when given one", c.Operation, c.Resource, c.When)
		}
		if c.Operation == "S3 GetObject" || c.Operation == "S3 CreateMultipartUpload" {
			t.Errorf("the gateway calls %s: on Lambda it only puts a checked upload whole", c.Operation)
		}
	}
}

// TestResourceARN: the ARNs built from a role's settings.
func TestResourceARN(t *testing.T) {
	settings := map[string]string{
		"PICKUP_STAGING_BUCKET": "stage", "PICKUP_STAGING_PREFIX": "staging/", "PICKUP_CARPARK_BUCKET": "park",
		"PICKUP_VIEWS_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:v-abcdef",
	}
	get := func(n string) string { return settings[n] }
	for _, tc := range []struct {
		r    Resource
		want string
		ok   bool
	}{
		{"bucket:staging", "arn:aws:s3:::stage", true},
		{"object:staging", "arn:aws:s3:::stage/staging/k", true},
		{"object:carpark", "arn:aws:s3:::park/k", true},
		{"bucket:uploads", "", false},
		{"setting:PICKUP_VIEWS_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:1:secret:v-abcdef", true},
		{"setting:PICKUP_NOTIFY_TOPIC_ARN", "", false},
		{"*", "*", true},
	} {
		got, ok, err := tc.r.ARN(get, "k")
		if err != nil || got != tc.want || ok != tc.ok {
			t.Errorf("%q: %q %v %v, want %q %v", tc.r, got, ok, err, tc.want, tc.ok)
		}
	}
	settings["PICKUP_UPLOADS_BUCKET"] = "stage"
	if got, ok, err := Resource("object:uploads").ARN(get, "k.car"); got != "arn:aws:s3:::stage/uploads/k.car" || !ok || err != nil {
		t.Errorf("object:uploads with the default prefix: %q %v %v", got, ok, err)
	}
	settings["PICKUP_UPLOADS_PREFIX"] = "in/"
	if got, _, _ := Resource("object:uploads").ARN(get, "k.car"); got != "arn:aws:s3:::stage/in/k.car" {
		t.Errorf("object:uploads with PICKUP_UPLOADS_PREFIX in/: %q", got)
	}
	if _, _, err := Resource("bucket:elsewhere").ARN(get, "k"); err == nil {
		t.Errorf("an unknown area was accepted")
	}
	if _, _, err := Resource("arn:aws:s3:::x").ARN(get, "k"); err == nil {
		t.Errorf("a literal ARN was accepted")
	}
}
