package stubprovider

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/hashicorp/terraform-plugin-go/tfprotov5"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/pickup-ipfs/pickup/terraform/internal/cdkschema"
)

func schema(t *testing.T) *cdkschema.ProviderSchema {
	t.Helper()
	var s cdkschema.ProviderSchema
	err := json.Unmarshal([]byte(`{
		"version": "6.66.0",
		"provider": {"version": 0, "block": {"attributes": {"region": {"type": "string", "optional": true}}}},
		"resource_schemas": {
			"aws_s3_bucket": {"version": 0, "block": {
				"attributes": {
					"bucket": {"type": "string", "optional": true, "computed": true},
					"arn": {"type": "string", "computed": true},
					"tags": {"type": ["map", "string"], "optional": true}
				},
				"block_types": {
					"versioning": {"nesting_mode": "list", "max_items": 1, "block": {"attributes": {"enabled": {"type": "bool", "optional": true}}}},
					"timeouts": {"nesting_mode": "single", "block": {"attributes": {"create": {"type": "string", "optional": true}}}}
				}
			}}
		},
		"data_source_schemas": {
			"aws_region": {"version": 0, "block": {"attributes": {"region": {"type": "string", "computed": true}}}}
		}
	}`), &s)
	if err != nil {
		t.Fatal(err)
	}
	return &s
}

func TestServesTheSchema(t *testing.T) {
	ctx := context.Background()
	srv, err := New(schema(t))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.GetProviderSchema(ctx, &tfprotov5.GetProviderSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	b := resp.ResourceSchemas["aws_s3_bucket"]
	if b == nil {
		t.Fatalf("no aws_s3_bucket in %v", resp.ResourceSchemas)
	}
	want := tftypes.Object{AttributeTypes: map[string]tftypes.Type{
		"arn":        tftypes.String,
		"bucket":     tftypes.String,
		"tags":       tftypes.Map{ElementType: tftypes.String},
		"timeouts":   tftypes.Object{AttributeTypes: map[string]tftypes.Type{"create": tftypes.String}},
		"versioning": tftypes.List{ElementType: tftypes.Object{AttributeTypes: map[string]tftypes.Type{"enabled": tftypes.Bool}}},
	}}
	if got := b.ValueType(); !got.Equal(want) {
		t.Errorf("aws_s3_bucket is %s, want %s", got, want)
	}
	if resp.DataSourceSchemas["aws_region"] == nil || resp.Provider == nil {
		t.Errorf("data source or provider schema missing")
	}
	for _, bt := range b.Block.BlockTypes {
		if bt.TypeName == "versioning" && (bt.Nesting != tfprotov5.SchemaNestedBlockNestingModeList || bt.MaxItems != 1) {
			t.Errorf("versioning: nesting %v max %d", bt.Nesting, bt.MaxItems)
		}
	}
	meta, err := srv.GetMetadata(ctx, &tfprotov5.GetMetadataRequest{})
	if err != nil || len(meta.Resources) != 1 || len(meta.DataSources) != 1 {
		t.Errorf("metadata: %+v, %v", meta, err)
	}
}

func TestRefusesRealWork(t *testing.T) {
	ctx := context.Background()
	srv, err := New(schema(t))
	if err != nil {
		t.Fatal(err)
	}
	isRefusal := func(name string, diags []*tfprotov5.Diagnostic) {
		t.Helper()
		if len(diags) != 1 || diags[0].Severity != tfprotov5.DiagnosticSeverityError || diags[0].Summary != ErrNotReal {
			t.Errorf("%s: diagnostics %+v, want the stub's refusal", name, diags)
		}
	}
	c, _ := srv.ConfigureProvider(ctx, &tfprotov5.ConfigureProviderRequest{})
	isRefusal("ConfigureProvider", c.Diagnostics)
	p, _ := srv.PlanResourceChange(ctx, &tfprotov5.PlanResourceChangeRequest{TypeName: "aws_s3_bucket"})
	isRefusal("PlanResourceChange", p.Diagnostics)
	a, _ := srv.ApplyResourceChange(ctx, &tfprotov5.ApplyResourceChangeRequest{TypeName: "aws_s3_bucket"})
	isRefusal("ApplyResourceChange", a.Diagnostics)
	r, _ := srv.ReadDataSource(ctx, &tfprotov5.ReadDataSourceRequest{TypeName: "aws_region"})
	isRefusal("ReadDataSource", r.Diagnostics)
}

func TestValidatesTypeNames(t *testing.T) {
	ctx := context.Background()
	srv, err := New(schema(t))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := srv.ValidateResourceTypeConfig(ctx, &tfprotov5.ValidateResourceTypeConfigRequest{TypeName: "aws_s3_bucket"}); len(v.Diagnostics) != 0 {
		t.Errorf("known resource type: %+v", v.Diagnostics)
	}
	if v, _ := srv.ValidateResourceTypeConfig(ctx, &tfprotov5.ValidateResourceTypeConfigRequest{TypeName: "aws_s3_bukket"}); len(v.Diagnostics) != 1 {
		t.Errorf("unknown resource type accepted")
	}
	if v, _ := srv.ValidateDataSourceConfig(ctx, &tfprotov5.ValidateDataSourceConfigRequest{TypeName: "aws_nope"}); len(v.Diagnostics) != 1 {
		t.Errorf("unknown data source accepted")
	}
}

func TestUpgradesStoredState(t *testing.T) {
	ctx := context.Background()
	srv, err := New(schema(t))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.UpgradeResourceState(ctx, &tfprotov5.UpgradeResourceStateRequest{
		TypeName: "aws_s3_bucket",
		RawState: &tfprotov5.RawState{JSON: []byte(`{"bucket":"b","arn":"arn:aws:s3:::b","tags":{"k":"v"},"versioning":[{"enabled":true}],"timeouts":null,"gone":1}`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	typ := srv.resources["aws_s3_bucket"]
	v, err := resp.UpgradedState.Unmarshal(typ)
	if err != nil {
		t.Fatal(err)
	}
	var attrs map[string]tftypes.Value
	if err := v.As(&attrs); err != nil {
		t.Fatal(err)
	}
	var bucket string
	if err := attrs["bucket"].As(&bucket); err != nil || bucket != "b" {
		t.Errorf("bucket = %q, %v", bucket, err)
	}
}
