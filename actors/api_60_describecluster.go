package actors

// DescribeCluster v0-v2: this node as the cluster's only broker and
// controller.

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.DescribeCluster, handleDescribeCluster) }

func handleDescribeCluster(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = 1 // brokers
	resp.ClusterID = clusterID
	resp.ControllerID = c.b.cfg.NodeID
	resp.ClusterAuthorizedOperations = -2147483648
	if req.EndpointType > 1 {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code // no controller endpoints here
	}
	resp.Brokers = []kmsg.DescribeClusterResponseBroker{{NodeID: c.b.cfg.NodeID, Host: c.b.host, Port: c.b.port}}
	c.respond(r, resp)
}

// clusterID names the cluster to clients.
const clusterID = "chronik-actor"
