package stubprovider

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"

	"github.com/hashicorp/terraform-plugin-go/tfprotov5"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// The account and region every mocked value names.
const (
	MockAccount = "123456789012"
	MockRegion  = "us-east-1"
)

// NewMock is New in mock mode: the provider configures itself (reaching
// nothing), plans a resource as its configuration says with every computed
// attribute it leaves unset unknown, and applies or reads by filling those
// with deterministic fake values built from the resource type and name:
// ARNs of account MockAccount in MockRegion, ids, endpoints, URLs. So a
// `terraform apply` into a local state followed by `terraform show -json`
// gives every value of a configuration, offline. It never calls AWS.
func NewMock(s *Server) *Server {
	m := *s
	m.mock = true
	return &m
}

// mockConfigure accepts any configuration.
func (s *Server) mockConfigure() *tfprotov5.ConfigureProviderResponse {
	return &tfprotov5.ConfigureProviderResponse{}
}

func (s *Server) mockPlan(req *tfprotov5.PlanResourceChangeRequest) (*tfprotov5.PlanResourceChangeResponse, error) {
	sch, ok := s.schema.ResourceSchemas[req.TypeName]
	if !ok {
		return &tfprotov5.PlanResourceChangeResponse{Diagnostics: unknownType("resource type", req.TypeName)}, nil
	}
	typ := s.resources[req.TypeName]
	proposed, err := req.ProposedNewState.Unmarshal(typ)
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", req.TypeName, err)
	}
	prior, err := req.PriorState.Unmarshal(typ)
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", req.TypeName, err)
	}
	planned := proposed
	if !proposed.IsNull() {
		// A create leaves to the provider every computed attribute the
		// configuration does not set; an update keeps what the prior state
		// holds (Terraform's proposal carries it already).
		planned, err = walkBlock(sch.Block, proposed, func(a *tfprotov5.SchemaAttribute, v tftypes.Value) tftypes.Value {
			if a.WriteOnly {
				return tftypes.NewValue(a.Type, nil)
			}
			if a.Computed && v.IsNull() && prior.IsNull() {
				return tftypes.NewValue(a.Type, tftypes.UnknownValue)
			}
			return v
		})
		if err != nil {
			return nil, fmt.Errorf("plan %s: %w", req.TypeName, err)
		}
	}
	dv, err := tfprotov5.NewDynamicValue(typ, planned)
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", req.TypeName, err)
	}
	return &tfprotov5.PlanResourceChangeResponse{PlannedState: &dv, PlannedPrivate: req.PriorPrivate}, nil
}

func (s *Server) mockApply(req *tfprotov5.ApplyResourceChangeRequest) (*tfprotov5.ApplyResourceChangeResponse, error) {
	sch, ok := s.schema.ResourceSchemas[req.TypeName]
	if !ok {
		return &tfprotov5.ApplyResourceChangeResponse{Diagnostics: unknownType("resource type", req.TypeName)}, nil
	}
	typ := s.resources[req.TypeName]
	planned, err := req.PlannedState.Unmarshal(typ)
	if err != nil {
		return nil, fmt.Errorf("apply %s: %w", req.TypeName, err)
	}
	state := planned
	if !planned.IsNull() {
		state, err = fill(req.TypeName, sch.Block, planned)
		if err != nil {
			return nil, fmt.Errorf("apply %s: %w", req.TypeName, err)
		}
	}
	dv, err := tfprotov5.NewDynamicValue(typ, state)
	if err != nil {
		return nil, fmt.Errorf("apply %s: %w", req.TypeName, err)
	}
	return &tfprotov5.ApplyResourceChangeResponse{NewState: &dv, Private: req.PlannedPrivate}, nil
}

func (s *Server) mockRead(req *tfprotov5.ReadResourceRequest) *tfprotov5.ReadResourceResponse {
	// Nothing changes behind Terraform's back: the state is what it was.
	return &tfprotov5.ReadResourceResponse{NewState: req.CurrentState, Private: req.Private}
}

func (s *Server) mockReadData(req *tfprotov5.ReadDataSourceRequest) (*tfprotov5.ReadDataSourceResponse, error) {
	sch, ok := s.schema.DataSourceSchemas[req.TypeName]
	if !ok {
		return &tfprotov5.ReadDataSourceResponse{Diagnostics: unknownType("data source", req.TypeName)}, nil
	}
	typ := s.dataSources[req.TypeName]
	cfg, err := req.Config.Unmarshal(typ)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", req.TypeName, err)
	}
	unset, err := walkBlock(sch.Block, cfg, func(a *tfprotov5.SchemaAttribute, v tftypes.Value) tftypes.Value {
		if a.Computed && v.IsNull() {
			return tftypes.NewValue(a.Type, tftypes.UnknownValue)
		}
		return v
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", req.TypeName, err)
	}
	state, err := fill("data."+req.TypeName, sch.Block, unset)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", req.TypeName, err)
	}
	dv, err := tfprotov5.NewDynamicValue(typ, state)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", req.TypeName, err)
	}
	return &tfprotov5.ReadDataSourceResponse{State: &dv}, nil
}

// walkBlock returns v (an object of block b) with each attribute, at every
// depth of nested blocks, replaced by what fn returns for it.
func walkBlock(b *tfprotov5.SchemaBlock, v tftypes.Value, fn func(*tfprotov5.SchemaAttribute, tftypes.Value) tftypes.Value) (tftypes.Value, error) {
	if v.IsNull() || !v.IsKnown() {
		return v, nil
	}
	var m map[string]tftypes.Value
	if err := v.As(&m); err != nil {
		return v, err
	}
	for _, a := range b.Attributes {
		m[a.Name] = fn(a, m[a.Name])
	}
	for _, bt := range b.BlockTypes {
		nested := m[bt.TypeName]
		if nested.IsNull() || !nested.IsKnown() {
			continue
		}
		switch bt.Nesting {
		case tfprotov5.SchemaNestedBlockNestingModeSingle, tfprotov5.SchemaNestedBlockNestingModeGroup:
			w, err := walkBlock(bt.Block, nested, fn)
			if err != nil {
				return v, fmt.Errorf("%s: %w", bt.TypeName, err)
			}
			m[bt.TypeName] = w
		default:
			var elems []tftypes.Value
			if err := nested.As(&elems); err != nil {
				return v, fmt.Errorf("%s: %w", bt.TypeName, err)
			}
			for i, e := range elems {
				w, err := walkBlock(bt.Block, e, fn)
				if err != nil {
					return v, fmt.Errorf("%s: %w", bt.TypeName, err)
				}
				elems[i] = w
			}
			m[bt.TypeName] = tftypes.NewValue(nested.Type(), elems)
		}
	}
	return tftypes.NewValue(v.Type(), m), nil
}

// fill replaces every unknown attribute of v, an object of block b of the
// resource type (or "data." and the data source) kind, with a fake value.
func fill(kind string, b *tfprotov5.SchemaBlock, v tftypes.Value) (tftypes.Value, error) {
	f := faker{kind: kind, known: map[string]string{}}
	var top map[string]tftypes.Value
	if err := v.As(&top); err != nil {
		return v, err
	}
	for name, val := range top {
		var s string
		if val.IsKnown() && !val.IsNull() && val.Type().Is(tftypes.String) && val.As(&s) == nil {
			f.known[name] = s
		}
	}
	f.label = f.firstKnown("name", "function_name", "bucket", "family", "cluster_identifier", "identifier", "name_prefix", "bucket_prefix", "repository", "secret_id", "db_proxy_name", "api_id", "role")
	sum := sha256.Sum256([]byte(kind + "\x00" + v.String()))
	f.hash = hex.EncodeToString(sum[:])[:12]
	if f.label == "" {
		f.label = strings.TrimPrefix(strings.TrimPrefix(kind, "data."), "aws_") + "-" + f.hash[:8]
	}
	return walkBlock(b, v, func(a *tfprotov5.SchemaAttribute, val tftypes.Value) tftypes.Value {
		if val.IsKnown() {
			return val
		}
		return f.value(a.Name, a.Type, !a.Optional)
	})
}

// faker makes the fake values of one resource.
type faker struct {
	kind  string            // resource type, or "data." and the data source
	known map[string]string // its known top-level string attributes
	label string            // its name, or a made-up one
	hash  string            // hex digits that tell it from others
}

func (f *faker) firstKnown(names ...string) string {
	for _, n := range names {
		if v := f.known[n]; v != "" {
			return v
		}
	}
	return ""
}

// value is the fake value of an attribute. Only lists and sets of objects
// the provider alone sets (computedOnly) get an element, one, so that
// references such as master_user_secret[0].secret_arn resolve; other
// collections are empty.
func (f *faker) value(name string, t tftypes.Type, computedOnly bool) tftypes.Value {
	switch {
	case t.Is(tftypes.String):
		return tftypes.NewValue(t, f.str(name))
	case t.Is(tftypes.Number):
		n := int64(1)
		if strings.HasSuffix(name, "port") {
			n = 5432
		}
		return tftypes.NewValue(t, new(big.Float).SetInt64(n))
	case t.Is(tftypes.Bool):
		return tftypes.NewValue(t, false)
	case t.Is(tftypes.List{}), t.Is(tftypes.Set{}):
		var elem tftypes.Type
		if l, ok := t.(tftypes.List); ok {
			elem = l.ElementType
		} else {
			elem = t.(tftypes.Set).ElementType
		}
		if list := f.knownList(name); list != nil && elem.Is(tftypes.String) {
			vals := make([]tftypes.Value, len(list))
			for i, s := range list {
				vals[i] = tftypes.NewValue(elem, s)
			}
			return tftypes.NewValue(t, vals)
		}
		if _, ok := elem.(tftypes.Object); ok && computedOnly {
			return tftypes.NewValue(t, []tftypes.Value{f.value(name, elem, true)})
		}
		return tftypes.NewValue(t, []tftypes.Value{})
	case t.Is(tftypes.Map{}):
		return tftypes.NewValue(t, map[string]tftypes.Value{})
	case t.Is(tftypes.Object{}):
		o := t.(tftypes.Object)
		m := map[string]tftypes.Value{}
		for n, at := range o.AttributeTypes {
			m[n] = f.value(n, at, true)
		}
		return tftypes.NewValue(t, m)
	case t.Is(tftypes.Tuple{}):
		tu := t.(tftypes.Tuple)
		vals := make([]tftypes.Value, len(tu.ElementTypes))
		for i, et := range tu.ElementTypes {
			vals[i] = f.value(name, et, true)
		}
		return tftypes.NewValue(t, vals)
	}
	return tftypes.NewValue(t, nil)
}

// knownList holds the lists some data sources answer with, for a
// configuration that indexes them.
func (f *faker) knownList(name string) []string {
	if f.kind != "data.aws_availability_zones" {
		return nil
	}
	switch name {
	case "names":
		return []string{MockRegion + "a", MockRegion + "b", MockRegion + "c", MockRegion + "d", MockRegion + "e", MockRegion + "f"}
	case "zone_ids":
		return []string{"use1-az1", "use1-az2", "use1-az3", "use1-az4", "use1-az5", "use1-az6"}
	}
	return nil
}

// service is the ARN's service of a resource type: aws_<service>_...
func (f *faker) service() string {
	t := strings.TrimPrefix(strings.TrimPrefix(f.kind, "data."), "aws_")
	switch {
	case strings.HasPrefix(t, "cloudwatch_log"):
		return "logs"
	case strings.HasPrefix(t, "db_"), strings.HasPrefix(t, "rds_"):
		return "rds"
	case strings.HasPrefix(t, "apigatewayv2"):
		return "apigateway"
	case strings.HasPrefix(t, "appautoscaling"):
		return "application-autoscaling"
	case strings.HasPrefix(t, "vpc"), strings.HasPrefix(t, "subnet"), strings.HasPrefix(t, "security_group"),
		strings.HasPrefix(t, "route"), strings.HasPrefix(t, "internet_gateway"), strings.HasPrefix(t, "nat_gateway"),
		strings.HasPrefix(t, "eip"), strings.HasPrefix(t, "default_security_group"):
		return "ec2"
	case strings.HasPrefix(t, "secretsmanager"):
		return "secretsmanager"
	case strings.HasPrefix(t, "cloudwatch"):
		return "cloudwatch"
	}
	if i := strings.IndexByte(t, '_'); i > 0 {
		return t[:i]
	}
	return t
}

// resourceARN is the ARN of the resource itself, in the form AWS gives it
// for the types pickup's policies name.
func (f *faker) resourceARN() string {
	kind := strings.TrimPrefix(f.kind, "data.")
	prefix := "arn:aws:" + f.service() + ":" + MockRegion + ":" + MockAccount + ":"
	switch kind {
	case "aws_s3_bucket":
		return "arn:aws:s3:::" + f.label
	case "aws_iam_role":
		return "arn:aws:iam::" + MockAccount + ":role/" + f.label
	case "aws_iam_policy":
		return "arn:aws:iam::" + MockAccount + ":policy/" + f.label
	case "aws_lambda_function":
		return prefix + "function:" + f.label
	case "aws_secretsmanager_secret":
		return prefix + "secret:" + f.label + "-" + f.hash[:6]
	case "aws_secretsmanager_secret_version":
		if id := f.known["secret_id"]; strings.HasPrefix(id, "arn:") {
			return id
		}
		return prefix + "secret:" + f.label + "-" + f.hash[:6]
	case "aws_sns_topic":
		return prefix + f.label
	case "aws_cloudwatch_log_group":
		return prefix + "log-group:" + f.label
	case "aws_ecs_cluster":
		return prefix + "cluster/" + f.label
	case "aws_ecs_task_definition":
		return prefix + "task-definition/" + f.label + ":1"
	case "aws_ecs_service":
		return prefix + "service/" + f.label
	case "aws_ecr_repository":
		return prefix + "repository/" + f.label
	case "aws_rds_cluster":
		return prefix + "cluster:" + f.label
	case "aws_rds_cluster_instance":
		return prefix + "db:" + f.label
	case "aws_db_proxy":
		return prefix + "db-proxy:prx-" + f.hash
	case "aws_caller_identity":
		return "arn:aws:iam::" + MockAccount + ":user/terraform"
	}
	t := strings.TrimPrefix(kind, "aws_")
	return prefix + t + "/" + f.label
}

// idPrefixes are the prefixes of EC2's resource ids.
var idPrefixes = map[string]string{
	"aws_vpc": "vpc-", "aws_subnet": "subnet-", "aws_security_group": "sg-", "aws_default_security_group": "sg-",
	"aws_internet_gateway": "igw-", "aws_nat_gateway": "nat-", "aws_eip": "eipalloc-", "aws_route_table": "rtb-",
	"aws_vpc_endpoint": "vpce-", "aws_route_table_association": "rtbassoc-",
	"aws_vpc_security_group_ingress_rule": "sgr-", "aws_vpc_security_group_egress_rule": "sgr-",
}

// str is the fake value of a string attribute.
func (f *faker) str(name string) string {
	kind := strings.TrimPrefix(f.kind, "data.")
	switch name {
	case "id":
		switch kind {
		case "aws_secretsmanager_secret", "aws_sns_topic", "aws_ecs_cluster", "aws_ecs_service", "aws_secretsmanager_secret_version":
			return f.resourceARN()
		case "aws_caller_identity", "aws_region", "aws_partition":
			return f.str(map[string]string{"aws_caller_identity": "account_id", "aws_region": "region", "aws_partition": "partition"}[kind])
		}
		if p, ok := idPrefixes[kind]; ok {
			return p + f.hash
		}
		if f.firstKnown("name", "function_name", "bucket", "family", "cluster_identifier", "identifier") != "" {
			return f.label
		}
		return f.hash
	case "arn":
		return f.resourceARN()
	case "invoke_arn":
		return "arn:aws:apigateway:" + MockRegion + ":lambda:path/2015-03-31/functions/" + f.resourceARN() + "/invocations"
	case "qualified_arn":
		return f.resourceARN() + ":1"
	case "qualified_invoke_arn":
		return "arn:aws:apigateway:" + MockRegion + ":lambda:path/2015-03-31/functions/" + f.resourceARN() + ":1/invocations"
	case "execution_arn":
		return "arn:aws:execute-api:" + MockRegion + ":" + MockAccount + ":" + f.hash[:10]
	case "secret_arn":
		return "arn:aws:secretsmanager:" + MockRegion + ":" + MockAccount + ":secret:rds!cluster-" + f.hash + "-" + f.hash[:6]
	case "api_endpoint":
		return "https://" + f.hash[:10] + ".execute-api." + MockRegion + ".amazonaws.com"
	case "repository_url":
		return MockAccount + ".dkr.ecr." + MockRegion + ".amazonaws.com/" + f.label
	case "registry_id", "owner_id", "account_id":
		return MockAccount
	case "region":
		return MockRegion
	case "partition":
		return "aws"
	case "dns_suffix":
		return "amazonaws.com"
	case "reverse_dns_prefix":
		return "com.amazonaws"
	case "public_ip":
		return "198.51.100." + fmt.Sprint(1+int(f.hash[0])%200)
	case "private_ip":
		return "10.0.0." + fmt.Sprint(1+int(f.hash[0])%200)
	case "version", "version_id":
		return "1"
	case "endpoint", "reader_endpoint":
		switch kind {
		case "aws_rds_cluster":
			if name == "reader_endpoint" {
				return f.label + ".cluster-ro-" + f.hash + "." + MockRegion + ".rds.amazonaws.com"
			}
			return f.label + ".cluster-" + f.hash + "." + MockRegion + ".rds.amazonaws.com"
		case "aws_db_proxy", "aws_db_proxy_endpoint":
			return f.label + ".proxy-" + f.hash + "." + MockRegion + ".rds.amazonaws.com"
		case "aws_rds_cluster_instance":
			return f.label + "." + f.hash + "." + MockRegion + ".rds.amazonaws.com"
		}
		return f.label + "." + f.service() + "." + MockRegion + ".amazonaws.com"
	}
	if strings.HasSuffix(name, "_arn") {
		return "arn:aws:" + f.service() + ":" + MockRegion + ":" + MockAccount + ":" + strings.TrimSuffix(name, "_arn") + "/" + f.label
	}
	if strings.HasSuffix(name, "_id") {
		return strings.TrimSuffix(name, "_id") + "-" + f.hash
	}
	return f.label + "-" + strings.ReplaceAll(name, "_", "-")
}
