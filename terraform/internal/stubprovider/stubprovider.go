// Package stubprovider is a Terraform provider that knows a provider's
// schema and nothing else. It lets `terraform init`, `validate` and `test`
// (with mock_provider) run where the real provider cannot be downloaded.
//
// It validates configuration against the schema (Terraform core does that
// from the schema it serves) and refuses ConfigureProvider, so it can never
// plan, read or change anything real: every run that is not mocked stops at
// the provider's configuration with an error.
//
// In mock mode (NewMock; command awsstub with AWSSTUB_MOCK=1) it plans,
// applies and reads with fake values instead, still reaching nothing: that
// is how the deployment test gets every value of a plan.
package stubprovider

import (
	"context"
	"fmt"
	"sort"

	"github.com/hashicorp/terraform-plugin-go/tfprotov5"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/pickup-ipfs/pickup/terraform/internal/cdkschema"
)

// ErrNotReal is the summary of the diagnostic every RPC that would need the
// real provider answers with.
const ErrNotReal = "schema-only provider stub"

// Server serves one provider schema over Terraform's plugin protocol 5. It
// is safe for concurrent use: it holds nothing that changes.
type Server struct {
	schema      *tfprotov5.GetProviderSchemaResponse
	resources   map[string]tftypes.Type
	dataSources map[string]tftypes.Type
	// mock is set by NewMock: plan, apply and read with fake values.
	mock bool
}

var _ tfprotov5.ProviderServer = (*Server)(nil)

// New converts s into the protocol's schema.
func New(s *cdkschema.ProviderSchema) (*Server, error) {
	srv := &Server{
		schema: &tfprotov5.GetProviderSchemaResponse{
			ResourceSchemas:          map[string]*tfprotov5.Schema{},
			DataSourceSchemas:        map[string]*tfprotov5.Schema{},
			Functions:                map[string]*tfprotov5.Function{},
			EphemeralResourceSchemas: map[string]*tfprotov5.Schema{},
			ListResourceSchemas:      map[string]*tfprotov5.Schema{},
			ActionSchemas:            map[string]*tfprotov5.ActionSchema{},
		},
		resources:   map[string]tftypes.Type{},
		dataSources: map[string]tftypes.Type{},
	}
	p, err := convertSchema(s.Provider)
	if err != nil {
		return nil, fmt.Errorf("provider: %w", err)
	}
	srv.schema.Provider = p
	for name, rs := range s.ResourceSchemas {
		c, err := convertSchema(rs)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		srv.schema.ResourceSchemas[name] = c
		srv.resources[name] = c.ValueType()
	}
	for name, ds := range s.DataSourceSchemas {
		c, err := convertSchema(ds)
		if err != nil {
			return nil, fmt.Errorf("data source %s: %w", name, err)
		}
		srv.schema.DataSourceSchemas[name] = c
		srv.dataSources[name] = c.ValueType()
	}
	return srv, nil
}

func convertSchema(s *cdkschema.Schema) (*tfprotov5.Schema, error) {
	if s == nil || s.Block == nil {
		return nil, fmt.Errorf("no block")
	}
	b, err := convertBlock(s.Block)
	if err != nil {
		return nil, err
	}
	return &tfprotov5.Schema{Version: s.Version, Block: b}, nil
}

func convertBlock(b *cdkschema.Block) (*tfprotov5.SchemaBlock, error) {
	out := &tfprotov5.SchemaBlock{}
	for _, name := range sortedKeys(b.Attributes) {
		a := b.Attributes[name]
		t, err := tftypes.ParseJSONType(a.Type) //nolint:staticcheck // the JSON type syntax is what the schema file holds
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out.Attributes = append(out.Attributes, &tfprotov5.SchemaAttribute{
			Name:      name,
			Type:      t,
			Required:  a.Required,
			Optional:  a.Optional,
			Computed:  a.Computed,
			WriteOnly: a.WriteOnly,
		})
	}
	for _, name := range sortedKeys(b.BlockTypes) {
		bt := b.BlockTypes[name]
		inner, err := convertBlock(bt.Block)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		var nesting tfprotov5.SchemaNestedBlockNestingMode
		switch bt.NestingMode {
		case cdkschema.NestingSingle:
			nesting = tfprotov5.SchemaNestedBlockNestingModeSingle
		case cdkschema.NestingList:
			nesting = tfprotov5.SchemaNestedBlockNestingModeList
		case cdkschema.NestingSet:
			nesting = tfprotov5.SchemaNestedBlockNestingModeSet
		default:
			return nil, fmt.Errorf("%s: nesting mode %q", name, bt.NestingMode)
		}
		out.BlockTypes = append(out.BlockTypes, &tfprotov5.SchemaNestedBlock{
			TypeName: name,
			Block:    inner,
			Nesting:  nesting,
			MinItems: bt.MinItems,
			MaxItems: bt.MaxItems,
		})
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// refuse is the diagnostic of every RPC that would need the real provider.
func refuse(what string) []*tfprotov5.Diagnostic {
	return []*tfprotov5.Diagnostic{{
		Severity: tfprotov5.DiagnosticSeverityError,
		Summary:  ErrNotReal,
		Detail:   what + " needs the real provider: this one only serves its schema, for offline validation and for terraform test with mock_provider.",
	}}
}

// unknownType is the diagnostic for a type name the schema does not hold.
func unknownType(kind, name string) []*tfprotov5.Diagnostic {
	return []*tfprotov5.Diagnostic{{
		Severity: tfprotov5.DiagnosticSeverityError,
		Summary:  "unknown " + kind,
		Detail:   fmt.Sprintf("The provider's schema has no %s %q.", kind, name),
	}}
}

// GetMetadata lists the resource types and data sources.
func (s *Server) GetMetadata(context.Context, *tfprotov5.GetMetadataRequest) (*tfprotov5.GetMetadataResponse, error) {
	resp := &tfprotov5.GetMetadataResponse{ServerCapabilities: &tfprotov5.ServerCapabilities{}}
	for _, name := range sortedKeys(s.resources) {
		resp.Resources = append(resp.Resources, tfprotov5.ResourceMetadata{TypeName: name})
	}
	for _, name := range sortedKeys(s.dataSources) {
		resp.DataSources = append(resp.DataSources, tfprotov5.DataSourceMetadata{TypeName: name})
	}
	return resp, nil
}

// GetProviderSchema returns the whole schema.
func (s *Server) GetProviderSchema(context.Context, *tfprotov5.GetProviderSchemaRequest) (*tfprotov5.GetProviderSchemaResponse, error) {
	return s.schema, nil
}

// GetResourceIdentitySchemas returns no identity schemas: the generated
// code the schema comes from does not describe them.
func (s *Server) GetResourceIdentitySchemas(context.Context, *tfprotov5.GetResourceIdentitySchemasRequest) (*tfprotov5.GetResourceIdentitySchemasResponse, error) {
	return &tfprotov5.GetResourceIdentitySchemasResponse{IdentitySchemas: map[string]*tfprotov5.ResourceIdentitySchema{}}, nil
}

// PrepareProviderConfig accepts any configuration that fits the schema.
func (s *Server) PrepareProviderConfig(_ context.Context, req *tfprotov5.PrepareProviderConfigRequest) (*tfprotov5.PrepareProviderConfigResponse, error) {
	return &tfprotov5.PrepareProviderConfigResponse{PreparedConfig: req.Config}, nil
}

// ConfigureProvider fails unless in mock mode: configuring is the first
// step towards reaching a real account.
func (s *Server) ConfigureProvider(context.Context, *tfprotov5.ConfigureProviderRequest) (*tfprotov5.ConfigureProviderResponse, error) {
	if s.mock {
		return s.mockConfigure(), nil
	}
	return &tfprotov5.ConfigureProviderResponse{Diagnostics: refuse("Configuring the provider")}, nil
}

// StopProvider has nothing to stop.
func (s *Server) StopProvider(context.Context, *tfprotov5.StopProviderRequest) (*tfprotov5.StopProviderResponse, error) {
	return &tfprotov5.StopProviderResponse{}, nil
}

// ValidateResourceTypeConfig accepts any configuration of a known type:
// Terraform core has checked it against the schema already.
func (s *Server) ValidateResourceTypeConfig(_ context.Context, req *tfprotov5.ValidateResourceTypeConfigRequest) (*tfprotov5.ValidateResourceTypeConfigResponse, error) {
	if _, ok := s.resources[req.TypeName]; !ok {
		return &tfprotov5.ValidateResourceTypeConfigResponse{Diagnostics: unknownType("resource type", req.TypeName)}, nil
	}
	return &tfprotov5.ValidateResourceTypeConfigResponse{}, nil
}

// UpgradeResourceState decodes stored state with the current schema; there
// is only one schema version.
func (s *Server) UpgradeResourceState(_ context.Context, req *tfprotov5.UpgradeResourceStateRequest) (*tfprotov5.UpgradeResourceStateResponse, error) {
	typ, ok := s.resources[req.TypeName]
	if !ok {
		return &tfprotov5.UpgradeResourceStateResponse{Diagnostics: unknownType("resource type", req.TypeName)}, nil
	}
	if req.RawState == nil {
		return &tfprotov5.UpgradeResourceStateResponse{}, nil
	}
	v, err := req.RawState.UnmarshalWithOpts(typ, tfprotov5.UnmarshalOpts{
		ValueFromJSONOpts: tftypes.ValueFromJSONOpts{IgnoreUndefinedAttributes: true},
	})
	if err != nil {
		return nil, fmt.Errorf("upgrade %s state: %w", req.TypeName, err)
	}
	dv, err := tfprotov5.NewDynamicValue(typ, v)
	if err != nil {
		return nil, fmt.Errorf("upgrade %s state: %w", req.TypeName, err)
	}
	return &tfprotov5.UpgradeResourceStateResponse{UpgradedState: &dv}, nil
}

// ReadResource refuses, unless in mock mode.
func (s *Server) ReadResource(_ context.Context, req *tfprotov5.ReadResourceRequest) (*tfprotov5.ReadResourceResponse, error) {
	if s.mock {
		return s.mockRead(req), nil
	}
	return &tfprotov5.ReadResourceResponse{Diagnostics: refuse("Reading a resource")}, nil
}

// PlanResourceChange refuses, unless in mock mode.
func (s *Server) PlanResourceChange(_ context.Context, req *tfprotov5.PlanResourceChangeRequest) (*tfprotov5.PlanResourceChangeResponse, error) {
	if s.mock {
		return s.mockPlan(req)
	}
	return &tfprotov5.PlanResourceChangeResponse{Diagnostics: refuse("Planning a change")}, nil
}

// ApplyResourceChange refuses, unless in mock mode.
func (s *Server) ApplyResourceChange(_ context.Context, req *tfprotov5.ApplyResourceChangeRequest) (*tfprotov5.ApplyResourceChangeResponse, error) {
	if s.mock {
		return s.mockApply(req)
	}
	return &tfprotov5.ApplyResourceChangeResponse{Diagnostics: refuse("Applying a change")}, nil
}

// ImportResourceState refuses.
func (s *Server) ImportResourceState(context.Context, *tfprotov5.ImportResourceStateRequest) (*tfprotov5.ImportResourceStateResponse, error) {
	return &tfprotov5.ImportResourceStateResponse{Diagnostics: refuse("Importing a resource")}, nil
}

// MoveResourceState refuses.
func (s *Server) MoveResourceState(context.Context, *tfprotov5.MoveResourceStateRequest) (*tfprotov5.MoveResourceStateResponse, error) {
	return &tfprotov5.MoveResourceStateResponse{Diagnostics: refuse("Moving a resource")}, nil
}

// UpgradeResourceIdentity refuses.
func (s *Server) UpgradeResourceIdentity(context.Context, *tfprotov5.UpgradeResourceIdentityRequest) (*tfprotov5.UpgradeResourceIdentityResponse, error) {
	return &tfprotov5.UpgradeResourceIdentityResponse{Diagnostics: refuse("Upgrading a resource identity")}, nil
}

// GenerateResourceConfig refuses.
func (s *Server) GenerateResourceConfig(context.Context, *tfprotov5.GenerateResourceConfigRequest) (*tfprotov5.GenerateResourceConfigResponse, error) {
	return &tfprotov5.GenerateResourceConfigResponse{Diagnostics: refuse("Generating configuration")}, nil
}

// ValidateDataSourceConfig accepts any configuration of a known data source.
func (s *Server) ValidateDataSourceConfig(_ context.Context, req *tfprotov5.ValidateDataSourceConfigRequest) (*tfprotov5.ValidateDataSourceConfigResponse, error) {
	if _, ok := s.dataSources[req.TypeName]; !ok {
		return &tfprotov5.ValidateDataSourceConfigResponse{Diagnostics: unknownType("data source", req.TypeName)}, nil
	}
	return &tfprotov5.ValidateDataSourceConfigResponse{}, nil
}

// ReadDataSource refuses, unless in mock mode.
func (s *Server) ReadDataSource(_ context.Context, req *tfprotov5.ReadDataSourceRequest) (*tfprotov5.ReadDataSourceResponse, error) {
	if s.mock {
		return s.mockReadData(req)
	}
	return &tfprotov5.ReadDataSourceResponse{Diagnostics: refuse("Reading a data source")}, nil
}

// GetFunctions lists no functions.
func (s *Server) GetFunctions(context.Context, *tfprotov5.GetFunctionsRequest) (*tfprotov5.GetFunctionsResponse, error) {
	return &tfprotov5.GetFunctionsResponse{Functions: map[string]*tfprotov5.Function{}}, nil
}

// CallFunction refuses.
func (s *Server) CallFunction(_ context.Context, req *tfprotov5.CallFunctionRequest) (*tfprotov5.CallFunctionResponse, error) {
	return &tfprotov5.CallFunctionResponse{Error: &tfprotov5.FunctionError{Text: ErrNotReal + ": no function " + req.Name}}, nil
}

// ValidateEphemeralResourceConfig rejects every type: the schema has none.
func (s *Server) ValidateEphemeralResourceConfig(_ context.Context, req *tfprotov5.ValidateEphemeralResourceConfigRequest) (*tfprotov5.ValidateEphemeralResourceConfigResponse, error) {
	return &tfprotov5.ValidateEphemeralResourceConfigResponse{Diagnostics: unknownType("ephemeral resource type", req.TypeName)}, nil
}

// OpenEphemeralResource refuses.
func (s *Server) OpenEphemeralResource(context.Context, *tfprotov5.OpenEphemeralResourceRequest) (*tfprotov5.OpenEphemeralResourceResponse, error) {
	return &tfprotov5.OpenEphemeralResourceResponse{Diagnostics: refuse("Opening an ephemeral resource")}, nil
}

// RenewEphemeralResource refuses.
func (s *Server) RenewEphemeralResource(context.Context, *tfprotov5.RenewEphemeralResourceRequest) (*tfprotov5.RenewEphemeralResourceResponse, error) {
	return &tfprotov5.RenewEphemeralResourceResponse{Diagnostics: refuse("Renewing an ephemeral resource")}, nil
}

// CloseEphemeralResource refuses.
func (s *Server) CloseEphemeralResource(context.Context, *tfprotov5.CloseEphemeralResourceRequest) (*tfprotov5.CloseEphemeralResourceResponse, error) {
	return &tfprotov5.CloseEphemeralResourceResponse{Diagnostics: refuse("Closing an ephemeral resource")}, nil
}
