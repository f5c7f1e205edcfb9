package stubprovider

import (
	"context"
	"testing"

	"github.com/hashicorp/terraform-plugin-go/tfprotov5"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// TestMockPlansAndApplies: in mock mode a create plans the configuration's
// values with the computed attributes it leaves unset unknown, and the
// apply fills those (an S3 bucket's ARN as AWS writes it) while keeping
// every planned value; a data source reads with its computed attributes
// filled.
func TestMockPlansAndApplies(t *testing.T) {
	ctx := context.Background()
	base, err := New(schema(t))
	if err != nil {
		t.Fatal(err)
	}
	srv := NewMock(base)
	if c, _ := srv.ConfigureProvider(ctx, &tfprotov5.ConfigureProviderRequest{}); len(c.Diagnostics) != 0 {
		t.Fatalf("ConfigureProvider: %+v", c.Diagnostics)
	}
	if c, _ := base.ConfigureProvider(ctx, &tfprotov5.ConfigureProviderRequest{}); len(c.Diagnostics) != 1 {
		t.Fatalf("NewMock changed the server it was given")
	}
	typ := srv.resources["aws_s3_bucket"].(tftypes.Object)
	obj := func(bucket, arn tftypes.Value) tftypes.Value {
		return tftypes.NewValue(typ, map[string]tftypes.Value{
			"bucket":     bucket,
			"arn":        arn,
			"tags":       tftypes.NewValue(typ.AttributeTypes["tags"], nil),
			"timeouts":   tftypes.NewValue(typ.AttributeTypes["timeouts"], nil),
			"versioning": tftypes.NewValue(typ.AttributeTypes["versioning"], []tftypes.Value{}),
		})
	}
	dyn := func(v tftypes.Value) *tfprotov5.DynamicValue {
		dv, err := tfprotov5.NewDynamicValue(typ, v)
		if err != nil {
			t.Fatal(err)
		}
		return &dv
	}
	proposed := obj(tftypes.NewValue(tftypes.String, "b1"), tftypes.NewValue(tftypes.String, nil))
	plan, err := srv.PlanResourceChange(ctx, &tfprotov5.PlanResourceChangeRequest{
		TypeName: "aws_s3_bucket", PriorState: dyn(tftypes.NewValue(typ, nil)), ProposedNewState: dyn(proposed), Config: dyn(proposed),
	})
	if err != nil || len(plan.Diagnostics) != 0 {
		t.Fatalf("plan: %v %+v", err, plan.Diagnostics)
	}
	planned, err := plan.PlannedState.Unmarshal(typ)
	if err != nil {
		t.Fatal(err)
	}
	want := obj(tftypes.NewValue(tftypes.String, "b1"), tftypes.NewValue(tftypes.String, tftypes.UnknownValue))
	if !planned.Equal(want) {
		t.Fatalf("planned %s, want %s", planned, want)
	}
	applied, err := srv.ApplyResourceChange(ctx, &tfprotov5.ApplyResourceChangeRequest{TypeName: "aws_s3_bucket", PlannedState: plan.PlannedState})
	if err != nil || len(applied.Diagnostics) != 0 {
		t.Fatalf("apply: %v %+v", err, applied.Diagnostics)
	}
	state, err := applied.NewState.Unmarshal(typ)
	if err != nil {
		t.Fatal(err)
	}
	if want := obj(tftypes.NewValue(tftypes.String, "b1"), tftypes.NewValue(tftypes.String, "arn:aws:s3:::b1")); !state.Equal(want) {
		t.Fatalf("applied %s, want %s", state, want)
	}

	rtyp := srv.dataSources["aws_region"]
	cfg, err := tfprotov5.NewDynamicValue(rtyp, tftypes.NewValue(rtyp, map[string]tftypes.Value{"region": tftypes.NewValue(tftypes.String, nil)}))
	if err != nil {
		t.Fatal(err)
	}
	read, err := srv.ReadDataSource(ctx, &tfprotov5.ReadDataSourceRequest{TypeName: "aws_region", Config: &cfg})
	if err != nil || len(read.Diagnostics) != 0 {
		t.Fatalf("read: %v %+v", err, read.Diagnostics)
	}
	region, err := read.State.Unmarshal(rtyp)
	if err != nil {
		t.Fatal(err)
	}
	if want := tftypes.NewValue(rtyp, map[string]tftypes.Value{"region": tftypes.NewValue(tftypes.String, MockRegion)}); !region.Equal(want) {
		t.Fatalf("aws_region read %s, want %s", region, want)
	}
}
