package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/pickup-ipfs/pickup/internal/awsconfig"
)

// publicIPFromECS is PICKUP_LIBP2P_PUBLIC_IP=ecs: a Fargate task with a
// public IP does not see it (its interface has the private address only),
// so it asks. The task metadata endpoint (v4) names the task's private
// IPv4 address; EC2 DescribeNetworkInterfaces of that address names the
// public IPv4 associated with its network interface.
func publicIPFromECS(ctx context.Context, getenv func(string) string) (netip.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	private, err := ecsTaskIPv4(ctx, getenv("ECS_CONTAINER_METADATA_URI_V4"))
	if err != nil {
		return netip.Addr{}, err
	}
	cfg, err := awsconfig.Load(ctx)
	if err != nil {
		return netip.Addr{}, err
	}
	out, err := ec2.NewFromConfig(cfg).DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{
		Filters: []ec2types.Filter{{Name: aws.String("addresses.private-ip-address"), Values: []string{private.String()}}},
	})
	if err != nil {
		return netip.Addr{}, fmt.Errorf("public IP: describe the network interface of %s: %w", private, err)
	}
	for _, ni := range out.NetworkInterfaces {
		if ni.Association == nil || ni.Association.PublicIp == nil {
			continue
		}
		ip, err := netip.ParseAddr(*ni.Association.PublicIp)
		if err != nil || !ip.Is4() {
			return netip.Addr{}, fmt.Errorf("public IP: EC2 answered %q for %s: not an IPv4 address", *ni.Association.PublicIp, private)
		}
		return ip, nil
	}
	return netip.Addr{}, fmt.Errorf("public IP: the network interface of %s has no public IP (a task in a public subnet needs assign_public_ip; private fetchers need PICKUP_DELEGATES on the gateway instead)", private)
}

// ecsTaskIPv4 reads the task's private IPv4 address from the task
// metadata endpoint v4 (<uri>/task).
func ecsTaskIPv4(ctx context.Context, uri string) (netip.Addr, error) {
	if uri == "" {
		return netip.Addr{}, errors.New("public IP: ECS_CONTAINER_METADATA_URI_V4 is not set (PICKUP_LIBP2P_PUBLIC_IP=ecs runs in ECS tasks only)")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(uri, "/")+"/task", nil)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("public IP: task metadata: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("public IP: task metadata: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("public IP: task metadata: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return netip.Addr{}, fmt.Errorf("public IP: task metadata answered %s", resp.Status)
	}
	return taskIPv4(body)
}

// taskIPv4 reads the first IPv4 address of the task's networks from the
// task metadata's JSON.
func taskIPv4(body []byte) (netip.Addr, error) {
	var task struct {
		Containers []struct {
			Networks []struct {
				IPv4Addresses []string `json:"IPv4Addresses"`
			} `json:"Networks"`
		} `json:"Containers"`
	}
	if err := json.Unmarshal(body, &task); err != nil {
		return netip.Addr{}, fmt.Errorf("public IP: task metadata: %w", err)
	}
	for _, c := range task.Containers {
		for _, n := range c.Networks {
			for _, a := range n.IPv4Addresses {
				if ip, err := netip.ParseAddr(a); err == nil && ip.Is4() {
					return ip, nil
				}
			}
		}
	}
	return netip.Addr{}, errors.New("public IP: the task metadata names no IPv4 address")
}
